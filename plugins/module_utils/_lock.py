# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One operation at a time on a host: an exclusive ``flock`` per operation domain (``etcd``).

A module keeps running on the host when the controller that started it dies (a lost SSH session,
a killed ``docker exec``): the next run must not start the same change beside it. The modules
that change state hold ``<LOCK_DIR>/<domain>.lock`` while they run; another one waits up to its
timeout for the holder, then fails naming it. The holder writes who it is (PID, operation,
command line, start time) into the file, so that the message can say what to wait for or stop.

The kernel drops a ``flock`` when its holder dies, so a killed run never leaves a stale lock;
the descriptor is not inherited by the programs a module runs (etcdutl), so they cannot keep it.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError

# tmpfs on systemd hosts: emptied at boot, when no holder can be left anyway.
LOCK_DIR = "/run/lock/kubeforge"
DEFAULT_TIMEOUT = 30.0
POLL_SECONDS = 0.2


class LockBusy(KubeforgeError):
    """Another process held the host lock for longer than the wait allowed."""

    def __init__(self, message: str, holder: dict) -> None:
        super().__init__(message)
        self.holder = holder
        self.result = {"lock_holder": holder}


def lock_argument_spec() -> dict:
    """The option of the modules that take the lock (documented by the host_lock doc fragment)."""
    return {"lock_timeout": {"type": "float", "default": DEFAULT_TIMEOUT}}


def lock_path(domain: str, directory: str | None = None) -> str:
    return os.path.join(directory or LOCK_DIR, f"{domain}.lock")


def _command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def read_holder(path: str) -> dict:
    """What the holder wrote into the lock file; {} when nothing (yet) or not readable."""
    try:
        with open(path, encoding="utf-8") as handle:
            holder = json.loads(handle.read() or "{}")
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def describe(holder: dict) -> str:
    """The holder in one phrase for the operator."""
    if not holder.get("pid"):
        return "a process that has not said who it is yet"
    parts = [f"PID {holder['pid']}"]
    if holder.get("operation"):
        parts.append(str(holder["operation"]))
    if holder.get("started"):
        parts.append(f"started {holder['started']}")
    parts.append(f"command line: {holder.get('command') or 'unknown'}")
    return f"{parts[0]} ({'; '.join(parts[1:])})"


def busy_message(domain: str, path: str, holder: dict, waited: float) -> str:
    pid = holder.get("pid") or "<PID>"
    return (f"another {domain} operation holds this host's lock {path}: {describe(holder)}; waited {waited:.0f}s. "
            "A run whose controller was interrupted (a lost SSH session) leaves its module running on the host: wait for it "
            f"to end and run again, or stop it (kill {pid}) and run again; the operations are safe to re-run.")


def _write_holder(fd: int, operation: str) -> None:
    pid = os.getpid()
    record = {"pid": pid, "operation": operation, "command": _command_line(pid),
              "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    data = json.dumps(record).encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


@contextlib.contextmanager
def host_lock(domain: str, operation: str, timeout: float = DEFAULT_TIMEOUT, directory: str | None = None) -> Iterator[str]:
    """Hold ``<directory>/<domain>.lock`` for the body; wait up to ``timeout`` seconds for a holder, then raise LockBusy.

    ``operation`` says what this process does, for the message another one shows. Yields the path.
    """
    directory = directory or LOCK_DIR
    path = lock_path(domain, directory)
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise KubeforgeError(f"cannot open the host lock {path}: {exc.strerror}") from exc
    try:
        started = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise KubeforgeError(f"cannot lock {path}: {exc.strerror}") from exc
            waited = time.monotonic() - started
            if waited >= timeout:
                holder = read_holder(path)
                raise LockBusy(busy_message(domain, path, holder, waited), holder)
            time.sleep(min(POLL_SECONDS, max(timeout - waited, 0.01)))
        _write_holder(fd, operation)
        try:
            yield path
        finally:
            # Emptied before the release: a waiter never names a holder that has gone.
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)

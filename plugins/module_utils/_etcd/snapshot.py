# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""etcd_snapshot's backend: save (etcdctl or the gateway), status and restore (etcdutl).

A snapshot as etcd streams it (and ``etcdctl snapshot save`` writes it) ends with 32 bytes: the
SHA-256 of everything before them. Saving checks that trailer before the file gets its name.
Restoring never deletes: etcdutl restores into a new directory, the existing data directory is
moved aside with a timestamp, and a marker file in the restored directory records which
snapshot it came from, so that running the task again changes nothing.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import INVALID_ARGUMENT, EtcdError

TRAILER_SIZE = 32
MARKER_NAME = "kubeforge-restore.json"
BLOCK = 1 << 20
# etcdctl's default --command-timeout (5s) would cut a large snapshot short.
ETCDCTL_COMMAND_TIMEOUT = "1h"


class TrailerCheck:
    """Running SHA-256 of a snapshot stream, holding back the last 32 bytes to compare at the end.

    One pass: the whole file's SHA-256 is the body's hash state fed the held-back tail.
    """

    def __init__(self) -> None:
        self._body = hashlib.sha256()
        self._tail = b""
        self.size = 0

    def update(self, data: bytes) -> None:
        self.size += len(data)
        if len(data) >= TRAILER_SIZE:
            self._body.update(self._tail)
            self._body.update(memoryview(data)[:-TRAILER_SIZE])
            self._tail = bytes(data[-TRAILER_SIZE:])
            return
        tail = self._tail + data
        if len(tail) > TRAILER_SIZE:
            self._body.update(tail[:-TRAILER_SIZE])
            tail = tail[-TRAILER_SIZE:]
        self._tail = tail

    @property
    def valid(self) -> bool:
        return len(self._tail) == TRAILER_SIZE and self.size > TRAILER_SIZE and self._body.digest() == self._tail

    @property
    def sha256(self) -> str:
        """SHA-256 of the whole file (trailer included), to name a snapshot in markers and results."""
        whole = self._body.copy()
        whole.update(self._tail)
        return whole.hexdigest()


def check_file(path: str) -> TrailerCheck:
    check = TrailerCheck()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            check.update(block)
    return check


def parse_etcdutl_status(output: str) -> dict:
    """``etcdutl snapshot status -w json`` -> revision, total_keys, total_size, hash (and version on 3.6)."""
    for line in reversed(output.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            result = {"hash": int(data.get("hash", 0)), "revision": int(data.get("revision", 0)),
                      "total_keys": int(data.get("totalKey", 0)), "total_size": int(data.get("totalSize", 0))}
            if data.get("version"):
                result["version"] = str(data["version"])
            return result
    raise EtcdError(f"cannot read etcdutl snapshot status output: {output.strip()[:300]!r}")


def find_binary(given: str | None, name: str, extra_dirs: tuple = ("/usr/local/bin",)) -> str | None:
    """The executable given (a path or a name), else name on PATH or in extra_dirs; None if absent."""
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), *extra_dirs])
    return shutil.which(given or name, path=search)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def timestamp(now: datetime.datetime) -> str:
    return now.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def member_db_locked(data_dir: str) -> bool:
    """True when a running etcd holds the data directory (bbolt keeps an flock on member/snap/db)."""
    db = os.path.join(data_dir, "member", "snap", "db")
    try:
        fd = os.open(db, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    return False


def restore_args(etcdutl: str, snapshot: str, data_dir: str, p: dict) -> list:
    """The etcdutl snapshot restore command line for the module's options."""
    args = [etcdutl, "snapshot", "restore", snapshot, "--data-dir", data_dir, "--name", p["name"],
            "--initial-cluster", p["initial_cluster"], "--initial-cluster-token", p["initial_cluster_token"],
            "--initial-advertise-peer-urls", ",".join(p["initial_advertise_peer_urls"])]
    if p.get("bump_revision"):
        args += ["--bump-revision", str(p["bump_revision"])]
    if p.get("mark_compacted") or p.get("bump_revision"):
        args.append("--mark-compacted")  # etcdutl requires it with --bump-revision
    if p.get("skip_hash_check"):
        args.append("--skip-hash-check")
    return args


MARKER_FIELDS = ("snapshot_sha256", "name", "initial_cluster", "initial_cluster_token", "initial_advertise_peer_urls",
                 "bump_revision", "mark_compacted")


def marker_for(p: dict, snapshot_sha256: str) -> dict:
    return {"snapshot_sha256": snapshot_sha256, "name": p["name"], "initial_cluster": p["initial_cluster"],
            "initial_cluster_token": p["initial_cluster_token"],
            "initial_advertise_peer_urls": list(p["initial_advertise_peer_urls"]),
            "bump_revision": int(p.get("bump_revision") or 0),
            "mark_compacted": bool(p.get("mark_compacted") or p.get("bump_revision"))}


def read_marker(data_dir: str) -> dict | None:
    try:
        with open(os.path.join(data_dir, MARKER_NAME), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class EtcdSnapshotBackend:
    """state saved / status / restored.

    runner(args) -> (rc, stdout, stderr) runs etcdctl/etcdutl (AnsibleModule.run_command in the
    module); client_factory() gives an EtcdClient for the gateway path.
    """

    def __init__(self, params: dict, runner: Callable[[list], tuple], client_factory: Callable[[], object] | None = None,
                 clock: Callable[[], float] = time.monotonic, now: Callable[[], datetime.datetime] | None = None) -> None:
        self.params = params
        self.runner = runner
        self.client_factory = client_factory
        self.clock = clock
        self.now = now or (lambda: datetime.datetime.now(datetime.timezone.utc))

    def run(self, check_mode: bool = False) -> dict:
        state = self.params.get("state") or "saved"
        return {"saved": self.save, "status": self.status, "restored": self.restore}[state](check_mode)

    # -- saved -------------------------------------------------------------------------------
    def _method(self) -> tuple[str, str | None]:
        method = self.params.get("method") or "auto"
        etcdctl = None
        if method in ("auto", "etcdctl"):
            etcdctl = find_binary(self.params.get("etcdctl_path"), "etcdctl")
            if etcdctl is None and method == "etcdctl":
                raise EtcdError(f"method=etcdctl but {self.params.get('etcdctl_path') or 'etcdctl'} was not found", code=INVALID_ARGUMENT)
        return ("etcdctl", etcdctl) if etcdctl else ("gateway", None)

    def save(self, check_mode: bool) -> dict:
        path = self.params["path"]
        directory = os.path.dirname(os.path.abspath(path))
        # In check mode the task that would create the directory has not: the save is only reported.
        if not os.path.isdir(directory) and not check_mode:
            raise EtcdError(f"the directory of {path} does not exist", code=INVALID_ARGUMENT)
        if os.path.exists(path) and not self.params.get("force"):
            check = check_file(path)
            if check.valid:
                return {"changed": False, "path": path, "size": check.size, "sha256": check.sha256, "method": None, "seconds": 0.0}
        method, etcdctl = self._method()
        if check_mode:
            return {"changed": True, "path": path, "method": method,
                    "diff": {"before": {"path": path if os.path.exists(path) else None}, "after": {"path": path}}}
        part = path + ".part"
        started = self.clock()
        try:
            if etcdctl:
                check = self._save_etcdctl(etcdctl, part)
            else:
                check = self._save_gateway(part)
            if not check.valid:
                raise EtcdError(f"the snapshot saved by {method} fails its SHA-256 check ({check.size} bytes): not kept")
            os.rename(part, path)
            fsync_dir(directory)
        except BaseException:
            for leftover in (part, part + ".part"):  # etcdctl writes <its target>.part first
                if os.path.exists(leftover):
                    os.unlink(leftover)
            raise
        seconds = self.clock() - started
        return {"changed": True, "path": path, "size": check.size, "sha256": check.sha256, "method": method,
                "seconds": round(seconds, 3), "diff": {"before": {"path": None}, "after": {"path": path, "sha256": check.sha256}}}

    def _save_gateway(self, part: str) -> TrailerCheck:
        check = TrailerCheck()
        client = self.client_factory()
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)
                for blob in client.snapshot():
                    handle.write(blob)
                    check.update(blob)
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            client.close()
        return check

    def _save_etcdctl(self, etcdctl: str, part: str) -> TrailerCheck:
        p = self.params
        failures = []
        for endpoint in p["endpoints"]:  # etcdctl snapshot save takes exactly one endpoint
            args = [etcdctl, f"--endpoints={endpoint}", f"--dial-timeout={int(p.get('timeout') or 10)}s",
                    f"--command-timeout={ETCDCTL_COMMAND_TIMEOUT}"]
            args += [f"--{flag}={p[name]}" for flag, name in (("cacert", "ca_cert"), ("cert", "client_cert"), ("key", "client_key")) if p.get(name)]
            rc, out, err = self.runner(args + ["snapshot", "save", part])
            if rc == 0:
                os.chmod(part, 0o600)
                fd = os.open(part, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                return check_file(part)
            lines = (err or out).strip().splitlines()
            failures.append(f"{endpoint}: {lines[-1] if lines else f'rc {rc}'}")
        raise EtcdError("etcdctl snapshot save failed on every endpoint: " + "; ".join(failures))

    # -- status ------------------------------------------------------------------------------
    def _etcdutl(self) -> str:
        etcdutl = find_binary(self.params.get("etcdutl_path"), "etcdutl")
        if etcdutl is None:
            raise EtcdError(f"{self.params.get('etcdutl_path') or 'etcdutl'} was not found: it is needed for snapshot status and "
                            "restore (etcd 3.6 removed them from etcdctl)", code=INVALID_ARGUMENT)
        return etcdutl

    def _snapshot_status(self, etcdutl: str, path: str) -> dict:
        rc, out, err = self.runner([etcdutl, "snapshot", "status", path, "--write-out", "json"])
        if rc != 0:
            raise EtcdError(f"etcdutl snapshot status {path} failed: {(err or out).strip()[-500:]}")
        return parse_etcdutl_status(out)

    def status(self, check_mode: bool) -> dict:
        path = self.params["path"]
        if not os.path.isfile(path):
            raise EtcdError(f"snapshot {path} does not exist", code=INVALID_ARGUMENT)
        check = check_file(path)
        result = self._snapshot_status(self._etcdutl(), path)
        result.update({"changed": False, "path": path, "size": check.size, "sha256": check.sha256, "trailer_valid": check.valid})
        return result

    # -- restored ----------------------------------------------------------------------------
    def restore(self, check_mode: bool) -> dict:
        p = self.params
        missing = [name for name in ("data_dir", "name", "initial_cluster", "initial_cluster_token", "initial_advertise_peer_urls")
                   if not p.get(name)]
        if missing:
            raise EtcdError(f"state=restored needs {', '.join(missing)}", code=INVALID_ARGUMENT)
        path, data_dir = p["path"], os.path.abspath(p["data_dir"].rstrip("/"))
        if not os.path.isfile(path):
            if check_mode:
                # A check-mode run copied no snapshot to the member: its restore is reported, nothing read.
                return {"changed": True, "path": path, "data_dir": data_dir, "snapshot_missing": True, "moved_to": None}
            raise EtcdError(f"snapshot {path} does not exist", code=INVALID_ARGUMENT)
        check = check_file(path)
        if not check.valid and not p.get("skip_hash_check"):
            raise EtcdError(f"snapshot {path} fails its SHA-256 check: refusing to restore it (skip_hash_check is for a db "
                            "file copied from a data directory, which has no such check)", code=INVALID_ARGUMENT)
        wanted = marker_for(p, check.sha256)
        current = read_marker(data_dir)
        result = {"path": path, "data_dir": data_dir, "snapshot_sha256": check.sha256, "moved_to": None}
        if current is not None and all(current.get(k) == wanted[k] for k in MARKER_FIELDS):
            return dict(result, changed=False, restored_at=current.get("restored_at"))
        # Check mode only plans (a playbook asks which members need the restore before stopping them).
        in_use = member_db_locked(data_dir)
        if in_use and not check_mode:
            raise EtcdError(f"{data_dir} is in use by a running etcd: stop it before restoring", code=INVALID_ARGUMENT)
        result["data_dir_in_use"] = in_use
        etcdutl = self._etcdutl()
        status = self._snapshot_status(etcdutl, path)
        result.update(snapshot_revision=status["revision"], revision_after=status["revision"] + int(p.get("bump_revision") or 0))
        stamp = timestamp(self.now())
        moved = f"{data_dir}.moved-{stamp}" if os.path.lexists(data_dir) else None
        diff = {"before": {"data_dir": data_dir, "restored_from": (current or {}).get("snapshot_sha256")},
                "after": {"data_dir": data_dir, "restored_from": check.sha256, "moved_to": moved}}
        if check_mode:
            return dict(result, changed=True, moved_to=moved, diff=diff)
        parent = os.path.dirname(data_dir)
        os.makedirs(parent, exist_ok=True)
        staging = f"{data_dir}.restore-{stamp}"
        if os.path.lexists(staging) or (moved and os.path.lexists(moved)):
            raise EtcdError(f"{staging} or {moved} already exists: run again in a second", code=INVALID_ARGUMENT)
        rc, out, err = self.runner(restore_args(etcdutl, path, staging, p))
        if rc != 0:
            raise EtcdError(f"etcdutl snapshot restore failed (rc {rc}): {(err or out).strip()[-800:]}")
        wanted["restored_at"] = stamp
        marker = os.path.join(staging, MARKER_NAME)
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(wanted, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(staging, 0o700)
        fsync_dir(staging)
        if moved:
            os.rename(data_dir, moved)
        os.rename(staging, data_dir)
        fsync_dir(parent)
        return dict(result, changed=True, moved_to=moved, restored_at=stamp, diff=diff)

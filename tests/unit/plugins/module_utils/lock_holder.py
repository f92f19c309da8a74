# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A kubeforge host lock held by a process of its own, as a module left running by a killed run holds it.

As a script: ``python lock_holder.py DIRECTORY DOMAIN OPERATION [child]`` takes the DOMAIN lock in
DIRECTORY, prints ``held <child pid>`` and keeps it until its standard input closes. With
``child`` it first starts ``sleep 600`` (a program a module runs, such as etcdutl) with every
inheritable descriptor passed on, then exits at once, leaving the child running.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def held(directory: str, operation: str = "etcd_mirror from https://a:2379 to https://b:2379",
         child: bool = False, domain: str = "etcd") -> Iterator[tuple[subprocess.Popen, int]]:
    """(the holder process, its child's PID or 0) while the holder holds the lock; the holder is killed after."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), directory, domain, operation, *(["child"] if child else [])],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline().split()  # type: ignore[union-attr]
        assert line[:1] == ["held"], f"the holder did not take the lock: {line}"
        yield proc, int(line[1]) if len(line) > 1 else 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]


def _main() -> None:
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.kubeforge.cluster.plugins.module_utils._lock import host_lock
    directory, domain, operation = sys.argv[1:4]
    with host_lock(domain, operation, timeout=5, directory=directory):
        if sys.argv[4:] == ["child"]:
            sleeper = subprocess.Popen(["sleep", "600"], close_fds=False)  # pylint: disable=consider-using-with
            print("held", sleeper.pid, flush=True)
            os._exit(0)  # the holder ends here; its child runs on
        print("held", flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    _main()

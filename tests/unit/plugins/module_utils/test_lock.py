# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host lock (module_utils/_lock.py) against a real lock file held by another process:
refused after a bounded wait with the holder named, taken once the holder ends however it ends,
never kept by a program the holder started."""
from __future__ import annotations

import os
import signal
import stat
import threading
import time

import pytest
from lock_holder import held  # pylint: disable=import-error  # beside this file

from ansible_collections.kubeforge.cluster.plugins.module_utils import _lock
from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError


def test_a_second_run_waits_then_refuses_naming_the_holder(tmp_path):
    directory = str(tmp_path / "lock")
    with held(directory, "etcd_mirror from https://a:2379 to https://b:2379") as (holder, _child):
        started = time.monotonic()
        with pytest.raises(_lock.LockBusy) as refused:
            with _lock.host_lock("etcd", "etcd_mirror again", timeout=0.6, directory=directory):
                pytest.fail("took a lock another process holds")
        waited = time.monotonic() - started
        assert holder.poll() is None
    assert 0.6 <= waited < 5, waited
    message = str(refused.value)
    assert f"PID {holder.pid} (etcd_mirror from https://a:2379 to https://b:2379; started " in message, message
    assert "lock_holder.py" in message and f"kill {holder.pid}" in message and f"{directory}/etcd.lock" in message, message
    assert refused.value.holder["pid"] == holder.pid and refused.value.result == {"lock_holder": refused.value.holder}


def test_a_second_run_waits_for_a_holder_that_ends(tmp_path):
    directory = str(tmp_path / "lock")
    with held(directory) as (holder, _child):
        threading.Timer(0.5, holder.stdin.close).start()  # the holder's operation ends
        started = time.monotonic()
        with _lock.host_lock("etcd", "next", timeout=10, directory=directory) as path:
            assert _lock.read_holder(path)["operation"] == "next"
        assert 0.4 <= time.monotonic() - started < 5


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    directory = str(tmp_path / "lock")
    with held(directory) as (holder, _child):
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        # It never emptied the file, but the kernel dropped its lock.
        assert _lock.read_holder(_lock.lock_path("etcd", directory))["pid"] == holder.pid
        with _lock.host_lock("etcd", "after the kill", timeout=0, directory=directory):
            pass


def test_a_program_the_holder_started_does_not_keep_the_lock(tmp_path):
    directory = str(tmp_path / "lock")
    with held(directory, child=True) as (holder, child):
        try:
            holder.wait(10)
            os.kill(child, 0)  # still running after its parent ended
            with _lock.host_lock("etcd", "after the holder", timeout=0, directory=directory):
                pass
        finally:
            os.kill(child, signal.SIGKILL)


def test_the_lock_file_names_its_holder_and_is_emptied_on_release(tmp_path):
    directory = str(tmp_path / "lock")
    with _lock.host_lock("etcd", "etcd_member present m2", directory=directory) as path:
        holder = _lock.read_holder(path)
        assert holder["pid"] == os.getpid() and holder["operation"] == "etcd_member present m2"
        assert holder["command"] and holder["started"].endswith("Z")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        # Another domain is another lock.
        with _lock.host_lock("other", "unrelated", timeout=0, directory=directory):
            pass
    assert _lock.read_holder(path) == {}
    with _lock.host_lock("etcd", "again", timeout=0, directory=directory):
        pass


def test_a_holder_that_has_not_written_yet_is_still_described():
    assert _lock.describe({}) == "a process that has not said who it is yet"
    message = _lock.busy_message("etcd", "/run/lock/kubeforge/etcd.lock", {}, 30.2)
    assert "waited 30s" in message and "kill <PID>" in message


def test_an_unusable_lock_directory_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(KubeforgeError, match="cannot open the host lock .*/file/lock/etcd.lock"):
        with _lock.host_lock("etcd", "x", directory=str(tmp_path / "file" / "lock")):
            pass

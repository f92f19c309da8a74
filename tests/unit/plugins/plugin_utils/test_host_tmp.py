# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The files an action sends to the host's temporary directory go side by side where each transfer is a process of
its own, one at a time where transfers share a session; every file arrives at its name, and a failure is raised."""
from __future__ import annotations

import threading
from unittest import mock

import pytest

from ansible_collections.kubeforge.cluster.plugins.plugin_utils import _host_tmp

FILES = [(f"/srv/artifacts/file{index}", f"{index}-file{index}") for index in range(6)]


class Sender(_host_tmp.HostTmpCopies):
    """The mixin on a stand-in action: its transfers are recorded. Each waits up to 0.2 s for SIDE_BY_SIDE transfers to be
    in flight, so that transfers sent side by side overlap however slowly their threads start."""

    def __init__(self, transport: str, password: str = "", fail: str = "") -> None:
        self._connection = mock.MagicMock(transport=transport)
        self._connection._shell.tmpdir = "/tmp/ansible-tmp-1"  # pylint: disable=protected-access
        self._connection._shell.join_path = lambda *parts: "/".join(parts)  # pylint: disable=protected-access
        self._connection.get_option = lambda name: {"password": password}[name]
        self._fixup_perms2 = mock.MagicMock()
        self.sent, self.in_flight, self.most_in_flight, self.fail = [], 0, 0, fail
        self.lock = threading.Condition()

    def _transfer_file(self, local: str, remote: str) -> str:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.lock.notify_all()
            self.lock.wait_for(lambda: self.in_flight >= _host_tmp.SIDE_BY_SIDE, timeout=0.2)
        with self.lock:
            self.in_flight -= 1
            self.sent.append((local, remote))
        if local == self.fail:
            raise OSError(f"failed to transfer file {local}")
        return remote


@pytest.mark.parametrize("transport, password, at_once", [
    ("community.docker.docker", "", _host_tmp.SIDE_BY_SIDE),
    ("ssh", "", _host_tmp.SIDE_BY_SIDE),
    ("ssh", "secret", 1),
    ("paramiko", "", 1),
])
def test_files_are_sent_side_by_side_only_where_each_transfer_is_its_own_process(transport, password, at_once):
    sender = Sender(transport, password)
    remote = sender._send_to_host_tmp(FILES)  # pylint: disable=protected-access
    assert remote == [f"/tmp/ansible-tmp-1/{name}" for _local, name in FILES]
    assert sorted(sender.sent) == sorted(zip([local for local, _name in FILES], remote))
    assert sender.most_in_flight == at_once
    sender._fixup_perms2.assert_called_once_with(["/tmp/ansible-tmp-1", *remote], execute=False)  # pylint: disable=protected-access


def test_a_failed_transfer_is_raised_once_the_others_have_ended():
    sender = Sender("community.docker.docker", fail="/srv/artifacts/file1")
    with pytest.raises(OSError, match="file1"):
        sender._send_to_host_tmp(FILES)  # pylint: disable=protected-access
    assert len(sender.sent) == len(FILES) and sender.in_flight == 0
    sender._fixup_perms2.assert_not_called()  # pylint: disable=protected-access

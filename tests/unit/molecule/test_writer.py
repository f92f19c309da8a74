# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The molecule verifiers' Writer (molecule/_shared/kubeforge_verify.py) against fake etcd clients:
after a switch, a failed put is retried on the endpoints after the switch, never on the ones it
started with, so a migration that loses nothing counts no failed put."""
from __future__ import annotations

import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "molecule", "_shared"))
from kubeforge_verify import Writer  # noqa: E402  # pylint: disable=import-error,wrong-import-position

OLD = ["https://old:2379"]
NEW = ["https://new-1:2379", "https://new-2:2379", "https://old:2379"]  # the old host rejoins later


class Cluster:
    """The members that take writes, and the keys, with the member each put landed on."""

    def __init__(self, up):
        self.lock = threading.Lock()
        self.up = set(up)
        self.fail_next = 0  # puts that fail whatever the member (a leader change)
        self.keys: dict[str, tuple[str, str]] = {}
        self.revision = 0
        self.clients: list[tuple[str, ...]] = []

    def client(self, endpoints):
        with self.lock:
            self.clients.append(tuple(endpoints))
        return FakeClient(self, endpoints)


class FakeClient:
    def __init__(self, cluster, endpoints):
        self.cluster, self.endpoints = cluster, list(endpoints)

    def put(self, key, value):
        with self.cluster.lock:
            if self.cluster.fail_next:
                self.cluster.fail_next -= 1
                raise RuntimeError("etcdserver: leader changed")
            member = next((url for url in self.endpoints if url in self.cluster.up), None)
            if member is None:
                raise ConnectionError(f"cannot connect to any etcd endpoint: {self.endpoints}")
            self.cluster.revision += 1
            self.cluster.keys[key] = (value, member)
            return self.cluster.revision

    def close(self):
        pass


def wait(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_after_the_switch_a_failed_put_is_retried_on_the_new_endpoints():
    cluster = Cluster(up=OLD)
    gate = threading.Event()
    gate.set()
    writer = Writer(lambda: cluster.client(OLD), "/w/", gate=gate.is_set, switch=lambda: cluster.client(NEW))
    writer.start()
    try:
        wait(lambda: len(writer.written) >= 5)
        gate.clear()  # the apiservers stopped for the final copy
        wait(lambda: writer.paused >= 1)
        written_before = len(writer.written)
        with cluster.lock:
            cluster.up = {NEW[0], NEW[1]}  # the single etcd is gone, the new cluster answers
            cluster.fail_next = 1  # and the first put after the switch meets a leader change
        gate.set()  # the apiservers started again on the new cluster
        wait(lambda: len(writer.written) >= written_before + 5 or writer.failed)
    finally:
        writer.finish()
    assert writer.switched and writer.paused == 1 and writer.retried == 1
    assert writer.failed == []
    assert all(cluster.keys[key][0] == value for key, value in writer.written.items())
    # Once switched, never a client of the old endpoints again.
    first_new = cluster.clients.index(tuple(NEW))
    assert tuple(OLD) not in cluster.clients[first_new:], cluster.clients


@pytest.mark.parametrize("failures, retry_seconds, failed, retried", [
    (1, 1.0, 0, 1),  # a single failure is retried once
    (2, 1.0, 1, 1),  # by default a put failing twice counts as failed
    (2, 5.0, 0, 2),  # a longer retry window outlasts it
])
def test_a_put_is_retried_within_its_window(failures, retry_seconds, failed, retried):
    cluster = Cluster(up=OLD)
    cluster.fail_next = failures
    writer = Writer(lambda: cluster.client(OLD), "/w/", retry_seconds=retry_seconds)
    writer.start()
    try:
        wait(lambda: len(writer.written) >= 3)
    finally:
        writer.finish()
    assert (len(writer.failed), writer.retried) == (failed, retried), (writer.failed, writer.retried)
    assert "/w/000000" in writer.uncertain and ("/w/000000" in writer.written) == (failed == 0)

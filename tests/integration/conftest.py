# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the integration tests: real etcd processes on loopback with mutual TLS.

The etcd binaries must be there (tests/harness/fetch-etcd.sh, or KUBEFORGE_ETCD_BIN_DIR): when they
are not, every test errors; nothing is skipped.
"""
from __future__ import annotations

import hashlib
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from etcd_harness import Cluster, bin_dir, etcd_binary, make_certs  # noqa: E402  (needs the path above)

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.common import client_from_params  # noqa: E402


@pytest.fixture(scope="session")
def etcd_bin() -> str:
    for name in ("etcd", "etcdctl", "etcdutl"):
        etcd_binary(name)  # raises: a missing binary fails the tests
    return bin_dir()


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certs(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture
def clusters(tmp_path, certs, etcd_bin):
    """make(size=1, start=True, **Cluster options) -> a Cluster, stopped at the end of the test."""
    made = []

    def make(size: int = 1, start: bool = True, **options) -> Cluster:
        options.setdefault("token", f"kubeforge-test-{len(made)}-{os.getpid()}")
        cluster = Cluster(str(tmp_path / f"cluster{len(made)}"), certs, size=size, **options)
        made.append(cluster)
        if start:
            cluster.start()
        return cluster

    yield make
    for cluster in made:
        cluster.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory, certs, etcd_bin):
    """One member shared by the tests of a file; each test works under its own prefix."""
    cluster = Cluster(str(tmp_path_factory.mktemp("shared")), certs, size=1, token=f"kubeforge-shared-{os.getpid()}").start()
    yield cluster
    cluster.stop()


@pytest.fixture
def connect():
    """connect(cluster, **params) -> EtcdClient, closed at the end of the test."""
    clients = []

    def make(cluster: Cluster, **params):
        client = client_from_params(cluster.client_params(**params))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def prefix(request) -> bytes:
    """A key prefix of this test's own."""
    return b"/t/" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12].encode() + b"/"

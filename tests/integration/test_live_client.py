# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The gateway client against real etcd: encodings, etcd's limits, compaction, watch, keep-alive, failover, auth."""
from __future__ import annotations

import hashlib

import pytest
from etcd_harness import Cluster, free_port, make_certs

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.batching import Write, plan_batches
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.client import op_delete, op_put
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.codec import prefix_range
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import EtcdError

pytestmark = pytest.mark.integration


def test_binary_keys_values_and_pages(shared, connect, prefix):
    client = connect(shared)
    keys = [prefix + bytes([i, 0xff, 0]) for i in range(250)]
    for start in range(0, len(keys), 100):
        client.txn([op_put(k, k[::-1]) for k in keys[start:start + 100]])
    pages = list(client.pages(*prefix_range(prefix), page_size=60))
    assert [len(p.kvs) for p in pages] == [60, 60, 60, 60, 10]
    assert len({p.revision for p in pages}) == 1
    assert [kv.key for p in pages for kv in p.kvs] == sorted(keys)
    assert all(kv.value == kv.key[::-1] for p in pages for kv in p.kvs)
    assert client.count(*prefix_range(prefix))[0] == 250
    # etcdctl, an independent reader, sees the same keys
    out = shared.etcdctl("get", "--prefix", "--keys-only", "--print-value-only=false", prefix.decode(), "-w", "json").stdout
    assert '"count":250' in out


def test_txn_over_max_txn_ops_fails_and_batches_pass(shared, connect, prefix):
    client = connect(shared)
    too_many = [op_put(prefix + b"%03d" % i, b"v") for i in range(129)]
    with pytest.raises(EtcdError, match="too many operations in txn request") as caught:
        client.txn(too_many)
    assert caught.value.code == 3 and caught.value.status == 400
    batches = plan_batches([Write(prefix + b"%03d" % i, b"v") for i in range(129)])
    assert [len(b) for b in batches] == [128, 1]
    for batch in batches:
        client.txn([op_put(w.key, w.value) for w in batch])
    assert client.count(*prefix_range(prefix))[0] == 129


def test_duplicate_keys_fail_and_dedupe_passes(shared, connect, prefix):
    client = connect(shared)
    with pytest.raises(EtcdError, match="duplicate key given in txn request"):
        client.txn([op_put(prefix + b"a", b"1"), op_put(prefix + b"a", b"2")])
    with pytest.raises(EtcdError, match="duplicate key given in txn request"):
        client.txn([op_put(prefix + b"a", b"1"), op_delete(prefix + b"a")])
    writes = [Write(prefix + b"a", b"1"), Write(prefix + b"b", b"1"), Write(prefix + b"a", None), Write(prefix + b"a", b"3")]
    (batch,) = plan_batches(writes)
    client.txn([op_put(w.key, w.value) if w.value is not None else op_delete(w.key) for w in batch])
    assert client.get(prefix + b"a").value == b"3" and client.get(prefix + b"b").value == b"1"


def test_request_too_large_fails_and_byte_batches_pass(shared, connect, prefix):
    client = connect(shared)
    writes = [Write(prefix + b"%02d" % i, b"x" * 200_000) for i in range(10)]  # 2 MB, over the 1.5 MiB default
    with pytest.raises(EtcdError, match="request is too large"):
        client.txn([op_put(w.key, w.value) for w in writes])
    batches = plan_batches(writes)
    assert len(batches) == 2
    for batch in batches:
        client.txn([op_put(w.key, w.value) for w in batch])
    assert client.count(*prefix_range(prefix))[0] == 10


def test_compacted_revision(shared, connect, prefix):
    client = connect(shared)
    first = client.put(prefix + b"k", b"1")
    client.put(prefix + b"k", b"2")
    client.compact(first + 1)
    with pytest.raises(EtcdError) as caught:
        client.range(prefix + b"k", revision=first)
    assert caught.value.compacted and caught.value.code == 11
    with pytest.raises(EtcdError) as caught:
        client.watch(*prefix_range(prefix), start_revision=first).next(5)
    assert caught.value.compacted and f"cannot watch from revision {first}" in str(caught.value)


def test_watch_events_and_progress(shared, connect, prefix):
    client = connect(shared)
    start = client.put(prefix + b"a", b"1")
    other = connect(shared)
    with client.watch(*prefix_range(prefix), start_revision=start) as watch:
        other.put(prefix + b"b", b"2")
        other.delete_range(prefix + b"a")
        last = other.put(b"/outside/" + prefix, b"x")  # another prefix moves the revision only
        seen = []
        while len(seen) < 3:
            seen += watch.next(5) or []
        assert [(e.type, e.kv.key) for e in seen] == [("PUT", prefix + b"a"), ("PUT", prefix + b"b"), ("DELETE", prefix + b"a")]
        watch.request_progress()
        while not watch.progress_revision:
            assert watch.next(5) is not None
        assert watch.progress_revision >= last


def test_hash_kv_and_status(shared, connect):
    client = connect(shared)
    status = client.status()
    assert status["version"].startswith("3.5.") and status["leader"] == status["member_id"]
    hash_value, compact_revision, revision = client.hash_kv()
    assert hash_value > 0 and revision >= 1 and compact_revision >= -1


def test_snapshot_stream_has_a_valid_trailer(shared, connect):
    data = b"".join(connect(shared).snapshot())
    assert len(data) > 32 and hashlib.sha256(data[:-32]).digest() == data[-32:]


def test_keep_alive_reconnects_after_a_restart(clusters, connect):
    cluster = clusters()
    client = connect(cluster)
    client.put(b"k", b"1")
    conn = client.transport._conn
    member = cluster.members[0]
    cluster.stop_member(member)
    cluster.start_member(member, state="existing")
    assert client.get(b"k").value == b"1"  # the dropped keep-alive connection was replaced
    assert client.transport._conn is not conn


def test_failover_to_a_live_endpoint(shared, connect):
    dead = f"https://127.0.0.1:{free_port()}"
    client = connect(shared, endpoints=[dead, shared.members[0].client_url])
    assert client.status()["version"]
    assert client.transport.current_endpoint == shared.members[0].client_url


def test_wrong_ca_is_a_clear_error(shared, connect, tmp_path):
    other = make_certs(str(tmp_path / "other-pki"))
    client = connect(shared, ca_cert=other.ca)
    with pytest.raises(EtcdError, match="cannot connect to any etcd endpoint.*CERTIFICATE_VERIFY_FAILED"):
        client.status()


def test_without_client_certificate_etcd_refuses(shared, connect):
    client = connect(shared, client_cert=None, client_key=None)
    with pytest.raises(EtcdError):
        client.status()


def test_etcd_auth_enabled_is_a_clear_failure(etcd_bin, tmp_path, connect):
    root_certs = make_certs(str(tmp_path / "root-pki"), client_cn="root")
    cluster = Cluster(str(tmp_path / "auth"), root_certs, size=1, token="kubeforge-auth").start()
    try:
        cluster.etcdctl("user", "add", "root", "--no-password")
        cluster.etcdctl("auth", "enable")
        with pytest.raises(EtcdError, match=r"authentication \(users and roles\) is enabled"):
            connect(cluster).status()
    finally:
        cluster.stop()

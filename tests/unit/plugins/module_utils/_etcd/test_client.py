# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""EtcdClient: request bodies as the gateway wants them, answers decoded, 3.5/3.6 differences."""
from __future__ import annotations

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.client import EtcdClient, Member, op_delete, op_put
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.codec import b64
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import EtcdError

from .fakes import FakeStream, FakeTransport

HEADER = {"cluster_id": "14841639068965178418", "member_id": "10276657743932975437", "revision": "12", "raft_term": "2"}


def kv(key, value, rev=2, lease=None):
    out = {"key": b64(key), "create_revision": str(rev), "mod_revision": str(rev), "version": "1", "value": b64(value)}
    if lease:
        out["lease"] = str(lease)
    return out


@pytest.mark.parametrize("kwargs, body", [
    ({}, {"key": "YQ=="}),
    ({"range_end": b"b"}, {"key": "YQ==", "range_end": "Yg=="}),
    ({"revision": 5, "limit": 10}, {"key": "YQ==", "revision": "5", "limit": "10"}),
    ({"count_only": True, "serializable": True}, {"key": "YQ==", "count_only": True, "serializable": True}),
    ({"keys_only": True, "revision": 0, "limit": 0}, {"key": "YQ==", "keys_only": True}),
])
def test_range_request_bodies(kwargs, body):
    t = FakeTransport({"/v3/kv/range": {"header": HEADER}})
    result = EtcdClient(t).range(b"a", **kwargs)
    assert t.calls == [("/v3/kv/range", body)]
    # omitted fields: no kvs, no more, no count
    assert (result.kvs, result.more, result.count, result.revision) == ([], False, 0, 12)


def test_range_answer():
    t = FakeTransport({"/v3/kv/range": {"header": HEADER, "kvs": [kv(b"a", b"1", lease=7)], "more": True, "count": "3"}})
    result = EtcdClient(t).range(b"a", b"z", limit=1)
    assert result.more and result.count == 3 and result.kvs[0].key == b"a" and result.kvs[0].lease == 7


def test_pages_pin_the_revision_and_continue_after_the_last_key():
    answers = [
        {"header": dict(HEADER, revision="40"), "kvs": [kv(b"/p/a", b"1"), kv(b"/p/b", b"2")], "more": True, "count": "3"},
        {"header": dict(HEADER, revision="45"), "kvs": [kv(b"/p/c", b"3")], "count": "1"},
    ]
    t = FakeTransport({"/v3/kv/range": answers})
    pages = list(EtcdClient(t).pages(b"/p/", b"/p0", page_size=2))
    assert [[k.key for k in p.kvs] for p in pages] == [[b"/p/a", b"/p/b"], [b"/p/c"]]
    assert [p.revision for p in pages] == [40, 40]
    assert t.calls[1][1] == {"key": b64(b"/p/b\0"), "range_end": b64(b"/p0"), "revision": "40", "limit": "2"}


def test_put_delete_txn():
    t = FakeTransport({"/v3/kv/put": {"header": HEADER}, "/v3/kv/deleterange": {"header": HEADER, "deleted": "2"},
                       "/v3/kv/txn": {"header": HEADER, "succeeded": True}})
    client = EtcdClient(t)
    assert client.put("k", "v", lease=9) == 12
    assert client.delete_range(b"a", b"c") == (2, 12)
    assert client.txn([op_put(b"x", b"y"), op_delete(b"z")]) == (True, 12)
    assert t.calls[0][1] == {"key": b64("k"), "value": b64("v"), "lease": "9"}
    assert t.calls[1][1] == {"key": b64("a"), "range_end": b64("c")}
    assert t.calls[2][1] == {"success": [{"request_put": {"key": b64("x"), "value": b64("y")}},
                                         {"request_delete_range": {"key": b64("z")}}]}


def test_hash_kv_falls_back_to_the_old_path_before_3_5_10():
    t = FakeTransport({"/v3/maintenance/hashkv": EtcdError("Not Found", code=5, status=404),
                       "/v3/maintenance/hash": {"header": HEADER, "hash": 651389927, "compact_revision": "3"}})
    assert EtcdClient(t).hash_kv() == (651389927, 3, 12)
    assert t.paths() == ["/v3/maintenance/hashkv", "/v3/maintenance/hash"]


def test_hash_kv_other_errors_are_not_hidden():
    t = FakeTransport({"/v3/maintenance/hashkv": EtcdError("etcdserver: no leader", code=14, status=503)})
    with pytest.raises(EtcdError, match="no leader"):
        EtcdClient(t).hash_kv()
    assert t.paths() == ["/v3/maintenance/hashkv"]


MEMBERS = {"header": HEADER, "members": [
    {"ID": "10276657743932975437", "name": "m0", "peerURLs": ["https://127.0.0.1:2380"], "clientURLs": ["https://127.0.0.1:2379"]},
    {"ID": "1", "peerURLs": ["https://127.0.0.2:2380"], "isLearner": True},
]}


def test_member_list_decodes_omitted_fields():
    t = FakeTransport({"/v3/cluster/member/list": MEMBERS})
    members, cluster_id = EtcdClient(t).member_list()
    assert t.calls == [("/v3/cluster/member/list", {"linearizable": True})]
    assert cluster_id == 14841639068965178418
    assert members[1] == Member(id=1, name="", peer_urls=["https://127.0.0.2:2380"], client_urls=[], is_learner=True)
    assert not members[1].started and members[0].started
    assert members[0].as_dict()["id"] == format(10276657743932975437, "x")


@pytest.mark.parametrize("header, revision", [(HEADER, 12), ({"cluster_id": "1", "member_id": "2"}, 0), (None, 0)])
def test_member_list_with_revision_reads_the_headers_revision(header, revision):
    answer = {"members": MEMBERS["members"]} if header is None else {**MEMBERS, "header": header}
    t = FakeTransport({"/v3/cluster/member/list": answer})
    members, _cluster_id, got = EtcdClient(t).member_list_with_revision()
    assert got == revision and len(members) == 2 and t.calls == [("/v3/cluster/member/list", {"linearizable": True})]


@pytest.mark.parametrize("learner, body", [
    (True, {"peerURLs": ["https://x:2380"], "isLearner": True}),
    (False, {"peerURLs": ["https://x:2380"]}),
])
def test_member_add_uses_the_exact_field_name(learner, body):
    answer = {"header": HEADER, "member": {"ID": "5", "peerURLs": ["https://x:2380"], "isLearner": learner}}
    t = FakeTransport({"/v3/cluster/member/add": answer})
    member = EtcdClient(t).member_add(["https://x:2380"], is_learner=learner)
    assert t.calls[0][1] == body and member.is_learner is learner and member.id == 5


def test_leases():
    t = FakeTransport({"/v3/lease/grant": {"header": HEADER, "ID": "7587862", "TTL": "60"},
                       "/v3/lease/timetolive": {"header": HEADER, "ID": "7587862", "TTL": "-1"},
                       "/v3/lease/leases": {"header": HEADER, "leases": [{"ID": "1"}, {"ID": "2"}]}})
    client = EtcdClient(t)
    assert client.lease_grant(60, 7587862) == (7587862, 60)
    assert t.calls[0][1] == {"TTL": "60", "ID": "7587862"}
    assert client.lease_time_to_live(7587862) == (-1, 0)
    assert client.lease_ids() == [1, 2]


def test_status_decodes_ints():
    t = FakeTransport({"/v3/maintenance/status": {"header": HEADER, "version": "3.5.30", "dbSize": "28672", "leader": "42",
                                                  "raftIndex": "5", "raftTerm": "2", "raftAppliedIndex": "5", "dbSizeInUse": "16384"}})
    status = EtcdClient(t).status()
    assert status["leader"] == 42 and status["db_size"] == 28672 and status["revision"] == 12 and not status["is_learner"]


def test_snapshot_yields_blobs_skipping_empty_messages():
    stream = FakeStream([{"blob": b64(b"abc"), "remaining_bytes": "3"}, {}, {"blob": b64(b"def")}])
    t = FakeTransport(streams=[stream])
    assert b"".join(EtcdClient(t).snapshot()) == b"abcdef"
    assert stream.closed


def watch_with(messages):
    stream = FakeStream([{"header": HEADER, "created": True, "watch_id": "0"}, *messages])
    t = FakeTransport(streams=[stream])
    return EtcdClient(t).watch(b"/p/", b"/p0", start_revision=10), stream, t


def test_watch_events_and_progress():
    watch, stream, t = watch_with([
        {"header": HEADER, "events": [{"kv": kv(b"/p/a", b"1", rev=10)}, {"type": "DELETE", "kv": {"key": b64(b"/p/b"), "mod_revision": "11"}}]},
        {"header": dict(HEADER, revision="15"), "watch_id": "-1"},
    ])
    assert t.calls[0] == ("/v3/watch", {"create_request": {"key": b64(b"/p/"), "range_end": b64(b"/p0"), "start_revision": "10"}})
    events = watch.next(1)
    assert [(e.type, e.kv.key, e.revision) for e in events] == [("PUT", b"/p/a", 10), ("DELETE", b"/p/b", 11)]
    assert watch.last_revision == 11 and watch.progress_revision == 0
    watch.request_progress()
    assert stream.sent == [{"progress_request": {}}]
    assert watch.next(1) == [] and watch.progress_revision == 15


def test_watch_from_a_compacted_revision():
    watch, stream = watch_with([{"header": HEADER, "canceled": True, "compact_revision": "20"}])[:2]
    with pytest.raises(EtcdError) as caught:
        watch.next(1)
    assert stream.closed and caught.value.compacted and "compacted" in str(caught.value) and "20" in str(caught.value)


def test_watch_closed_by_the_server():
    watch = watch_with([])[0]
    with pytest.raises(EtcdError, match="closed the watch"):
        watch.next(1)


def test_watch_not_created():
    stream = FakeStream([{"header": HEADER}])
    with pytest.raises(EtcdError, match="not created"):
        EtcdClient(FakeTransport(streams=[stream])).watch(b"a")
    assert stream.closed

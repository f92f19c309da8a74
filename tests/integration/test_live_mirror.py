# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""etcd_mirror's backend between two real clusters: copy, leases, follow under writes, verification, refusals, revision bump."""
from __future__ import annotations

import threading
import time
import types

import pytest
import yaml

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.client import EtcdClient, op_put
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.codec import prefix_range
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import EtcdError
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.mirror import EtcdMirrorBackend, settings_from_params
from ansible_collections.kubeforge.cluster.plugins.modules import etcd_mirror

pytestmark = pytest.mark.integration


@pytest.fixture
def pair(clusters, connect):
    """Two clusters (source, dest) and a client of each (src, dst)."""
    source, dest = clusters(), clusters()
    return types.SimpleNamespace(source=source, dest=dest, src=connect(source), dst=connect(dest))


def mirror(src, dst, **params):
    return EtcdMirrorBackend(src, dst, settings_from_params(params))


def load(client, prefix: bytes, count: int, value=b"v" * 64) -> int:
    revision = 0
    for start in range(0, count, 128):
        revision = client.txn([op_put(prefix + b"%06d" % i, value + b"%d" % i) for i in range(start, min(count, start + 128))])[1]
    return revision


def snapshot_of(client, prefix: bytes, revision: int = 0) -> dict:
    """An independent read (one big range, no pages) of every key and value under prefix."""
    result = client.range(*prefix_range(prefix), revision=revision)
    assert not result.more
    return {kv.key: kv.value for kv in result.kvs}


def test_copy_with_leases_and_writes_during_follow(pair, connect):
    source_cluster, src, dst = pair.source, pair.src, pair.dst
    load(src, b"/registry/pods/", 1500)
    lease = src.lease_grant(120)[0]
    for i in range(5):
        src.put(b"/registry/events/e%d" % i, b"event", lease=lease)
    src.put(b"/other/outside", b"not copied")

    writer = connect(source_cluster)
    stop = threading.Event()
    written = []

    def write():
        i = 0
        while not stop.is_set():
            writer.put(b"/registry/live/%d" % (i % 50), b"%d" % i)  # the same keys again and again: duplicates per batch
            if i % 5 == 0:
                writer.delete_range(b"/registry/pods/%06d" % i)
            if i % 20 == 0:
                writer.txn([op_put(b"/registry/bulk/%d-%d" % (i, j), b"b") for j in range(128)])  # a full-size source txn
            i += 1
        written.append(i)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        result = mirror(src, dst, prefix="/registry/", follow_seconds=1.5).run()
    finally:
        stop.set()
        thread.join()
    assert result["changed"] and result["keys_copied"] >= 1505 and result["leases_copied"] == 1
    assert result["events_followed"] > 0 and written[0] > 0
    assert result["caught_up_revision"] > result["source_revision"]
    verification = result["verification"]
    assert verification["equal"] and verification["source_revision"] == result["caught_up_revision"]
    # independently of the module's own hash: the destination equals the source at the caught-up revision
    assert snapshot_of(dst, b"/registry/") == snapshot_of(src, b"/registry/", result["caught_up_revision"])
    assert dst.get(b"/other/outside") is None
    # the leased keys are attached to a lease with at most the source's remaining TTL
    leased = dst.get(b"/registry/events/e0")
    remaining, granted = dst.lease_time_to_live(leased.lease)
    assert leased.lease and 0 < remaining <= 121 and granted <= 121  # the remaining TTL + 1 s
    assert result["keys_per_second"] > 0 and result["transactions"] >= 12
    # every key documented (lock_holder comes only with a failure)
    assert set(result) - {"changed", "diff"} == set(yaml.safe_load(etcd_mirror.RETURN)) - {"lock_holder"}


def test_leased_keys_expire_on_the_destination(pair):
    src, dst = pair.src, pair.dst
    lease = src.lease_grant(4)[0]
    src.put(b"/l/short", b"x", lease=lease)
    src.put(b"/l/kept", b"y")
    result = mirror(src, dst, prefix="/l/").run()
    assert result["verification"]["equal"] and dst.get(b"/l/short") is not None
    deadline = time.monotonic() + 15
    while dst.get(b"/l/short") is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dst.get(b"/l/short") is None and dst.get(b"/l/kept").value == b"y"


@pytest.mark.parametrize("params, dest_key", [
    ({"prefix": "/app/", "dest_prefix": "/copy/"}, b"/copy/a/b"),
    ({"prefix": "/app/", "strip_prefix": True}, b"a/b"),
    ({"prefix": ""}, b"/app/a/b"),
])
def test_destination_prefixes(pair, params, dest_key):
    src, dst = pair.src, pair.dst
    src.put(b"/app/a/b", b"1")
    result = mirror(src, dst, **params).run()
    assert result["verification"]["equal"] and dst.get(dest_key).value == b"1"


def test_non_empty_destination(pair):
    src, dst = pair.src, pair.dst
    load(src, b"/p/", 300)
    dst.put(b"/p/stale", b"old")
    with pytest.raises(EtcdError, match="already holds 1 keys under b'/p/' that differ from the source: set overwrite") as caught:
        mirror(src, dst, prefix="/p/").run()
    assert caught.value.result["verification"]["dest_keys"] == 1
    replaced = mirror(src, dst, prefix="/p/", overwrite=True).run()
    assert replaced["deleted_before_copy"] == 1 and replaced["verification"]["equal"] and dst.get(b"/p/stale") is None
    again = mirror(src, dst, prefix="/p/").run()  # already the source's keys: nothing to do
    assert not again["changed"] and again["keys_copied"] == 0 and again["verification"]["equal"]


def test_check_mode_writes_nothing(pair):
    src, dst = pair.src, pair.dst
    load(src, b"/c/", 200)
    before = dst.count(b"\0", b"\0")[1]
    result = mirror(src, dst, prefix="/c/", min_dest_revision_above_source=True, revision_margin=0).run(check_mode=True)
    assert result["changed"] and result["keys_copied"] == 200 and result["revision_bumps"] > 0
    assert dst.count(b"\0", b"\0") == (0, before)


@pytest.mark.parametrize("kill, follow_seconds", [(True, 3), (False, 8)])  # a crash; a graceful stop (held ~6 s by the watch)
def test_follow_survives_a_source_restart(pair, connect, kill, follow_seconds):
    source_cluster, src, dst = pair.source, pair.src, pair.dst
    load(src, b"/s/", 300)
    member = source_cluster.members[0]

    def restart_and_write():
        time.sleep(0.5)
        source_cluster.stop_member(member, kill=kill)
        source_cluster.start_member(member, state="existing")
        writer = connect(source_cluster)
        for i in range(20):
            writer.put(b"/s/after-restart/%d" % i, b"x")

    thread = threading.Thread(target=restart_and_write)
    thread.start()
    try:
        result = mirror(src, dst, prefix="/s/", follow_seconds=follow_seconds).run()
    finally:
        thread.join()
    assert result["verification"]["equal"] and result["events_followed"] == 20
    assert dst.get(b"/s/after-restart/19").value == b"x"


def test_compacted_revision_during_follow_is_a_clear_error(pair):
    src, dst = pair.src, pair.dst
    revision = load(src, b"/k/", 10)
    src.put(b"/k/000001", b"changed")
    src.put(b"/k/000002", b"changed")
    src.compact(revision + 2)
    backend = mirror(src, dst, prefix="/k/")
    with pytest.raises(EtcdError, match=rf"cannot follow the source from revision {revision + 1}: .*compacted.*overwrite") as caught:
        backend.follow(revision)
    assert caught.value.compacted


class CompactingClient(EtcdClient):
    """The real client, compacting the source right after the first page of the copy."""

    def range(self, *args, **kwargs):
        result = super().range(*args, **kwargs)
        if kwargs.get("limit") and not getattr(self, "compacted", False):
            self.compacted = True
            self.put(b"/elsewhere", b"x")
            self.compact(self.put(b"/elsewhere", b"y"))
        return result


def test_compaction_during_the_copy_is_a_clear_error(pair):
    src, dst = pair.src, pair.dst
    load(src, b"/k/", 50)
    backend = EtcdMirrorBackend(CompactingClient(src.transport), dst, settings_from_params({"prefix": "/k/", "page_size": 10}))
    with pytest.raises(EtcdError, match="compacted revision .* during the copy: copy again with overwrite") as caught:
        backend.run()
    assert caught.value.result["keys_copied"] == 10


def test_destination_revision_ends_above_the_source(pair):
    src, dst = pair.src, pair.dst
    for i in range(300):  # one revision per put: the source's revision grows faster than the batched copy's
        src.put(b"/r/%d" % (i % 7), b"%d" % i)
    result = mirror(src, dst, prefix="/r/", min_dest_revision_above_source=True, revision_margin=10).run()
    source_revision = src.count(b"\0", None)[1]
    assert result["revision_bumps"] > 250 and result["dest_revision"] > source_revision + 10
    assert dst.count(b"\0", None)[1] == result["dest_revision"]
    assert dst.get(b"/kubeforge/mirror-revision-bump") is None and result["verification"]["equal"]
    again = mirror(src, dst, prefix="/r/", min_dest_revision_above_source=True, revision_margin=10).run()
    assert not again["changed"] and again["revision_bumps"] == 0


def test_revision_bump_limit(pair):
    src, dst = pair.src, pair.dst
    for i in range(50):
        src.put(b"/r/x", b"%d" % i)
    with pytest.raises(EtcdError, match="more than revision_bump_limit 10: seed the destination from a snapshot"):
        mirror(src, dst, prefix="/r/", min_dest_revision_above_source=True, revision_margin=0, revision_bump_limit=10).run()


def test_same_cluster_overlapping_ranges_are_refused(clusters, connect):
    cluster = clusters()
    with pytest.raises(EtcdError, match="same cluster and their ranges overlap"):
        mirror(connect(cluster), connect(cluster), prefix="/a/", dest_prefix="/a/b/").run()
    cluster_client = connect(cluster)
    cluster_client.put(b"/a/x", b"1")
    result = mirror(cluster_client, connect(cluster), prefix="/a/", dest_prefix="/b/").run()
    assert result["verification"]["equal"] and cluster_client.get(b"/b/x").value == b"1"

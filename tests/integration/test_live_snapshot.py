# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""etcd_snapshot's backend with real etcd, etcdctl and etcdutl: save, status, restore (one member and three)."""
from __future__ import annotations

import hashlib
import os
import stat
import subprocess

import pytest
import yaml
from etcd_harness import etcd_binary

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.client import op_put
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.codec import prefix_range
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.common import client_from_params
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import EtcdError
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.snapshot import MARKER_NAME, EtcdSnapshotBackend
from ansible_collections.kubeforge.cluster.plugins.modules import etcd_snapshot

DOCUMENTED = set(yaml.safe_load(etcd_snapshot.RETURN)) | {"changed", "diff"}

pytestmark = pytest.mark.integration


def runner(args):
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
    return done.returncode, done.stdout, done.stderr


def backend(cluster, **params):
    params = {**cluster.client_params(), "etcdctl_path": etcd_binary("etcdctl"), "etcdutl_path": etcd_binary("etcdutl"), **params}
    return EtcdSnapshotBackend(params, runner, client_factory=lambda: client_from_params(params))


def write(client, prefix: bytes, count: int, value: bytes) -> int:
    revision = 0
    for start in range(0, count, 100):
        revision = client.txn([op_put(prefix + b"%05d" % i, value) for i in range(start, min(count, start + 100))])[1]
    return revision


def contents(client) -> dict:
    result = client.range(*prefix_range(b""))
    return {kv.key: kv.value for kv in result.kvs}


@pytest.mark.parametrize("method", ["gateway", "etcdctl"])
def test_save_and_status(shared, connect, tmp_path, method):
    client = connect(shared)
    revision = write(client, b"/snap/" + method.encode() + b"/", 500, b"x" * 100)
    path = str(tmp_path / "etcd.db")
    saved = backend(shared, state="saved", path=path, method=method).run()
    assert saved["changed"] and saved["method"] == method and saved["size"] == os.path.getsize(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and not os.path.exists(path + ".part")
    data = open(path, "rb").read()
    assert hashlib.sha256(data[:-32]).digest() == data[-32:] and saved["sha256"] == hashlib.sha256(data).hexdigest()
    status = backend(shared, state="status", path=path).run()
    assert set(saved) <= DOCUMENTED and set(status) <= DOCUMENTED
    assert status["revision"] >= revision and status["total_keys"] >= 500 and status["trailer_valid"]
    kept = backend(shared, state="saved", path=path, method=method).run()
    assert not kept["changed"] and kept["sha256"] == saved["sha256"]
    forced = backend(shared, state="saved", path=path, method=method, force=True).run()
    assert forced["changed"]


def test_auto_uses_etcdctl_when_found_and_the_gateway_otherwise(shared, tmp_path):
    assert backend(shared, state="saved", path=str(tmp_path / "a.db"), method="auto").run()["method"] == "etcdctl"
    missing = backend(shared, state="saved", path=str(tmp_path / "b.db"), method="auto", etcdctl_path=str(tmp_path / "no-etcdctl"))
    assert missing.run()["method"] == "gateway"


def test_status_of_a_file_that_is_no_snapshot(shared, tmp_path):
    (tmp_path / "junk.db").write_bytes(b"junk" * 100)
    with pytest.raises(EtcdError, match="etcdutl snapshot status .* failed"):
        backend(shared, state="status", path=str(tmp_path / "junk.db")).run()


def restore_params(cluster, member, snapshot: str, **extra) -> dict:
    return {"state": "restored", "path": snapshot, "data_dir": member.data_dir, "name": member.name,
            "initial_cluster": cluster.initial_cluster(), "initial_cluster_token": "kubeforge-restored",
            "initial_advertise_peer_urls": [member.peer_url], **extra}


def test_restore_gives_exactly_the_snapshots_data_with_the_revision_bumped(clusters, connect, tmp_path):
    cluster = clusters()
    client = connect(cluster)
    write(client, b"/before/", 300, b"kept")
    snapshot = str(tmp_path / "s.db")
    backend(cluster, state="saved", path=snapshot, method="gateway").run()
    expected = contents(client)
    snapshot_revision = backend(cluster, state="status", path=snapshot).run()["revision"]
    write(client, b"/after/", 50, b"lost")
    client.put(b"/before/00001", b"changed after the snapshot")
    member = cluster.members[0]

    with pytest.raises(EtcdError, match="in use by a running etcd"):
        backend(cluster, **restore_params(cluster, member, snapshot)).run()
    client.close()
    cluster.stop_member(member)
    params = restore_params(cluster, member, snapshot, bump_revision=100000)
    predicted = backend(cluster, **params).run(check_mode=True)
    assert predicted["changed"] and predicted["revision_after"] == snapshot_revision + 100000
    assert not any(name.startswith(os.path.basename(member.data_dir) + ".") for name in os.listdir(os.path.dirname(member.data_dir)))
    restored = backend(cluster, **params).run()
    assert restored["changed"] and os.path.isdir(restored["moved_to"]) and os.path.isfile(os.path.join(member.data_dir, MARKER_NAME))
    assert os.path.isdir(os.path.join(restored["moved_to"], "member", "wal"))  # the old data, kept
    assert not backend(cluster, **params).run()["changed"]
    assert set(restored) <= DOCUMENTED

    cluster.token = "kubeforge-restored"
    cluster.start_member(member)
    after = connect(cluster)
    assert contents(after) == expected  # exactly the snapshot's data
    revision = after.count(b"\0", None)[1]
    assert revision >= snapshot_revision + 100000
    with pytest.raises(EtcdError) as caught:  # the revisions below the bump are marked compacted
        after.range(b"/before/00001", revision=snapshot_revision)
    assert caught.value.compacted
    assert after.put(b"/new", b"1") == revision + 1


def test_restore_three_members_from_one_snapshot(clusters, connect, tmp_path):
    cluster = clusters(size=3)
    client = connect(cluster)
    write(client, b"/three/", 200, b"v")
    snapshot = str(tmp_path / "s.db")
    backend(cluster, state="saved", path=snapshot, method="etcdctl").run()
    expected = contents(client)
    client.put(b"/three/00000", b"changed")
    client.close()
    cluster.stop()
    for member in cluster.members:
        assert backend(cluster, **restore_params(cluster, member, snapshot, bump_revision=1000)).run()["changed"]
    cluster.token = "kubeforge-restored"
    cluster.start()
    cluster_ids = set()
    for member in cluster.members:
        one = connect(cluster, endpoints=[member.client_url])
        result = one.range(*prefix_range(b""), serializable=True)  # this member's own copy
        assert {kv.key: kv.value for kv in result.kvs} == expected
        cluster_ids.add(one.status()["cluster_id"])
    assert len(cluster_ids) == 1
    members = connect(cluster).member_list()[0]
    assert sorted(m.name for m in members) == ["m0", "m1", "m2"] and not any(m.is_learner for m in members)

# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration's next step, from what the hosts and the cluster show (docs/etcd-migration.md)."""
from __future__ import annotations

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.migration import migration_plan, moved_aside_name

HOSTS = ["m1", "m2", "m3"]


def voter(name):
    return {"name": name, "is_learner": False}


def learner(name=""):
    return {"name": name, "is_learner": True}


NEW = "c0ffee"  # the new cluster's ID
MOVED = [moved_aside_name("/var/lib/etcd", NEW, "20250101T000000Z")]
# Left by an older migration, into another cluster: it must not stop a new one.
STALE = [moved_aside_name("/var/lib/etcd", "0ld", "20240101T000000Z")]


@pytest.mark.parametrize("method, members, moved, step", [
    # Before anything: the single etcd answers.
    ("grow", [voter("m1")], [], "grow"),
    ("mirror", [voter("m1")], [], "mirror"),
    # A foreign single etcd does not answer with kubeforge's certificates: nothing answers yet.
    ("mirror", [], [], "mirror"),
    # grow interrupted: a learner added (not started, no name yet), or started and not promoted.
    ("grow", [voter("m1"), learner()], [], "grow"),
    ("grow", [voter("m1"), voter("m2"), learner("m3")], [], "grow"),
    # mirror interrupted before the point of no return: the new cluster (m2, m3) answers first.
    ("mirror", [voter("m2"), voter("m3")], [], "mirror"),
    # mirror interrupted after the single etcd was moved aside: never copy again.
    ("mirror", [voter("m2"), voter("m3")], MOVED, "switch"),
    ("mirror", [voter("m2"), voter("m3"), learner("m1")], MOVED, "switch"),
    ("mirror", [voter("m2"), voter("m3"), learner()], MOVED, "switch"),
    # Finished, by either method, even with data moved aside long ago.
    ("grow", [voter("m1"), voter("m2"), voter("m3")], [], "done"),
    ("mirror", [voter("m3"), voter("m1"), voter("m2")], MOVED, "done"),
    ("mirror", [voter("m1"), voter("m2"), voter("m3")], [], "done"),
    # A single etcd again, next to data an older migration moved aside: a new migration.
    ("mirror", [voter("m1")], STALE, "mirror"),
    ("mirror", [voter("m2"), voter("m3")], STALE, "mirror"),
    ("grow", [voter("m1")], STALE, "grow"),
])
def test_step(method, members, moved, step):
    plan = migration_plan(method, HOSTS, "", members, moved, cluster_id=NEW)
    assert plan["step"] == step
    assert plan["source"] == "m1" and plan["targets"] == ["m2", "m3"]


def test_source_host_chosen():
    plan = migration_plan("mirror", HOSTS, "m2", [voter("m2")], [])
    assert (plan["source"], plan["targets"], plan["step"]) == ("m2", ["m1", "m3"], "mirror")


@pytest.mark.parametrize("method, hosts, source, members, moved, has_data, message", [
    ("shrink", HOSTS, "", [voter("m1")], [], True, "must be one of"),
    ("grow", HOSTS, "m9", [voter("m1")], [], True, "must be in the etcd group"),
    ("grow", ["m1"], "", [voter("m1")], [], True, "has one host"),
    # grow needs the single etcd to answer as a kubeforge member named after its host.
    ("grow", HOSTS, "", [], [], True, "use etcd_migrate_method=mirror"),
    ("grow", HOSTS, "", [voter("etcd0")], [], True, "outside the etcd group"),
    # Past the point of no return, only mirror may finish, and only with the new cluster answering.
    ("grow", HOSTS, "", [voter("m2"), voter("m3")], MOVED, True, "finish it with etcd_migrate_method=mirror"),
    ("mirror", HOSTS, "", [], MOVED, False, "no cluster it was copied to answers"),
    # An interrupted grow is not turned into a mirror (the targets already joined the single etcd).
    ("mirror", HOSTS, "", [voter("m1"), learner("m2")], [], True, "finish it with etcd_migrate_method=grow"),
    # Never copy an empty data directory over the new cluster.
    ("mirror", HOSTS, "", [], [], False, "holds no data"),
])
def test_refusals(method, hosts, source, members, moved, has_data, message):
    with pytest.raises(KubeforgeError, match=message):
        # Nothing answering gives no cluster ID.
        migration_plan(method, hosts, source, members, moved, has_data, cluster_id=NEW if members else "")

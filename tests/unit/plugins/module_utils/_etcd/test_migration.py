# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration's next step, from what the hosts and the cluster show (docs/etcd-migration.md)."""
from __future__ import annotations

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.migration import migration_plan, moved_aside_name, probe_answer

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


# -- the probe of tasks/migrate_state.yml: "no cluster" only when no member with data runs -----------

URLS = {f"https://10.0.0.1{n}:2379": f"m{n}" for n in (1, 2, 3)}


def failed(*errors, msg="cannot connect to any etcd endpoint"):
    """etcd_member's registered result when it could not read the members."""
    result = {"failed": True, "msg": msg}
    if errors:
        result["endpoint_errors"] = [{"endpoint": f"https://10.0.0.1{host[1]}:2379", "kind": kind, "error": f"{kind} error"}
                                     for host, kind in errors]
    return result


ALL_DOWN = [("m1", "refused"), ("m2", "refused"), ("m3", "timeout")]


@pytest.mark.parametrize("case, probe, with_data, foreign, expected", [
    ("a cluster answered", {"failed": False, "members": [voter("m1")], "cluster_id": "c0ffee"}, ["m1"], False,
     {"members": [voter("m1")], "cluster_id": "c0ffee"}),
    ("nothing runs and no host has data", failed(*ALL_DOWN), [], False, {"members": [], "cluster_id": ""}),
    ("unreachable hosts without data", failed(("m1", "unreachable"), ("m2", "unreachable"), ("m3", "refused")), [], False,
     {"members": [], "cluster_id": ""}),
    ("a source kubeforge did not install refuses kubeforge's CA", failed(("m1", "tls"), ("m2", "refused"), ("m3", "refused")), ["m1"], True,
     {"members": [], "cluster_id": ""}),
    ("that source stopped, its data still there", failed(*ALL_DOWN), ["m1"], True, {"members": [], "cluster_id": ""}),
])
def test_probe_answers_no_cluster_only_when_no_member_with_data_runs(case, probe, with_data, foreign, expected):
    assert probe_answer(probe, URLS, with_data, "m1", foreign) == expected, case


@pytest.mark.parametrize("case, probe, with_data, foreign, fragment", [
    # The bug this guards against: a wrong certificate path read as "no members".
    ("TLS files that cannot be read", failed(msg="cannot load the TLS files (ca_cert=/etc/etcd/pki/ca.crt, ...)"), [], False,
     "cannot load the TLS files"),
    ("a member rejects the client certificate", failed(("m1", "tls"), ("m2", "refused"), ("m3", "refused")), ["m1"], False,
     "m1 (https://10.0.0.11:2379) refused the client (tls)"),
    ("TLS fails on a host without data too", failed(("m1", "refused"), ("m2", "tls"), ("m3", "refused")), [], False,
     "m2 (https://10.0.0.12:2379) refused the client (tls)"),
    ("authentication after connecting", failed(msg="etcdserver: user name is empty [code 16]"), ["m1"], False, "user name is empty"),
    ("a kubeforge member with data is stopped", failed(*ALL_DOWN), ["m1"], False, "m1 holds etcd data but does not answer"),
    ("the new cluster has data but is down", failed(*ALL_DOWN), ["m2", "m3"], True, "m2 holds etcd data but does not answer"),
    ("a foreign source excuses the source only", failed(("m1", "tls"), ("m2", "tls"), ("m3", "refused")), ["m1"], True,
     "m2 (https://10.0.0.12:2379) refused the client (tls)"),
    ("an unknown failure kind", failed(("m1", "other"), ("m2", "refused"), ("m3", "refused")), [], False, "refused the client (other)"),
])
def test_probe_failures_that_are_not_an_empty_cluster_fail(case, probe, with_data, foreign, fragment):
    with pytest.raises(KubeforgeError) as caught:
        probe_answer(probe, URLS, with_data, "m1", foreign)
    assert fragment in str(caught.value), (case, str(caught.value))

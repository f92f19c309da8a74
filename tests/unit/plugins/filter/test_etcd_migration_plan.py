# SPDX-License-Identifier: GPL-3.0-or-later
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubeforge.cluster.plugins.filter.etcd_migration_plan import etcd_migration_plan


def test_filter_passes_the_plan_through():
    plan = etcd_migration_plan("grow", ["a", "b", "c"], members=[{"name": "a", "is_learner": False}])
    assert plan["step"] == "grow" and plan["targets"] == ["b", "c"]


def test_filter_turns_refusals_into_filter_errors():
    with pytest.raises(AnsibleFilterError, match="holds no data"):
        etcd_migration_plan("mirror", ["a", "b", "c"], members=[], source_has_data=False)


URLS = {"https://a:2379": "a", "https://b:2379": "b", "https://c:2379": "c"}


def _refused(*hosts, kind="refused"):
    return {"failed": True, "msg": "cannot connect to any etcd endpoint",
            "endpoint_errors": [{"endpoint": f"https://{h}:2379", "kind": kind, "error": kind} for h in hosts]}


def test_filter_reads_the_probe_as_tasks_migrate_state_passes_it():
    # A foreign single etcd on a refuses kubeforge's certificates; b and c run nothing and hold nothing: mirror.
    probe = {"failed": True, "msg": "x", "endpoint_errors": _refused("a", kind="tls")["endpoint_errors"] + _refused("b", "c")["endpoint_errors"]}
    plan = etcd_migration_plan("mirror", ["a", "b", "c"], probe=probe, endpoint_hosts=URLS, hosts_with_data=["a"], foreign_source="True")
    assert plan["step"] == "mirror"
    answered = {"failed": False, "members": [{"name": "a", "is_learner": False}], "cluster_id": "1"}
    assert etcd_migration_plan("grow", ["a", "b", "c"], probe=answered, endpoint_hosts=URLS, hosts_with_data=["a"])["step"] == "grow"


def test_filter_refuses_a_tls_error_as_no_cluster():
    probe = {"failed": True, "msg": "x", "endpoint_errors": _refused("a", kind="tls")["endpoint_errors"] + _refused("b", "c")["endpoint_errors"]}
    with pytest.raises(AnsibleFilterError, match="refused the client"):
        etcd_migration_plan("mirror", ["a", "b", "c"], probe=probe, endpoint_hosts=URLS, hosts_with_data=["a"], foreign_source=False)

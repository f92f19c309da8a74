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

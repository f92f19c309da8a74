# SPDX-License-Identifier: GPL-3.0-or-later
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubeforge.cluster.plugins.filter.phase_hosts import FilterModule, phase_hosts

GROUPS = {"all": ["cp1", "w1"], "etcd": ["cp1"], "k8s_cluster": ["cp1", "w1"]}


def test_the_phase_groups_limited_to_the_playbooks_hosts():
    assert phase_hosts("etcd", "all", GROUPS) == "etcd:&all"
    assert phase_hosts("k8s_cluster:etcd", "kubeforge_adding", GROUPS) == "k8s_cluster:etcd:&kubeforge_adding"


def test_the_hosts_a_check_mode_run_ended_for_are_left_out_once_the_group_exists():
    ended = {**GROUPS, "kubeforge_preview_ended": ["cp1", "w1"]}
    assert phase_hosts("k8s_cluster", "all:!w2", ended) == "k8s_cluster:&all:!w2:!kubeforge_preview_ended"


@pytest.mark.parametrize("arguments", [("", "all", GROUPS), ("etcd", None, GROUPS), (["etcd"], "all", GROUPS), ("etcd", "all", ["all"])])
def test_bad_input_is_an_error(arguments):
    with pytest.raises(AnsibleFilterError):
        phase_hosts(*arguments)


def test_the_filter_is_registered():
    assert FilterModule().filters()["phase_hosts"] is phase_hosts

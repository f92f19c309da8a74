# SPDX-License-Identifier: GPL-3.0-or-later
import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubeforge.cluster.plugins.filter.etcd_cluster_tokens import etcd_cluster_tokens


def test_each_action_passes_through():
    booted = etcd_cluster_tokens("", "bootstrap", initial_cluster=["a=https://a:2380"])
    restored = etcd_cluster_tokens(json.dumps(booted), "restore", token="kubeforge-etcd-restore-1", initial_cluster=["a=https://a:2380"])
    assert [c["how"] for c in restored["clusters"]] == ["bootstrap", "restore"] and restored["current"] == "kubeforge-etcd-restore-1"
    recovered = etcd_cluster_tokens("", "recover", initial_envs={"a": "ETCD_INITIAL_CLUSTER_STATE=new\nETCD_INITIAL_CLUSTER_TOKEN=t\n"},
                                    cluster_id="ab")
    assert recovered["current"] == "t" and recovered["clusters"][0]["cluster_id"] == "ab"


@pytest.mark.parametrize("text, action, match", [
    ("{", "bootstrap", "is not JSON"),
    ("", "restore", "needs its token"),
    ("", "rotate", "action must be bootstrap, restore or recover"),
])
def test_refusals_are_filter_errors(text, action, match):
    with pytest.raises(AnsibleFilterError, match=match):
        etcd_cluster_tokens(text, action, initial_cluster=[])

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The node_facts module: its documentation, and main() reading this machine in check mode."""
from __future__ import annotations

import pytest
import yaml

from ansible_collections.kubeforge.cluster.plugins.module_utils import _node_facts
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import trust
from ansible_collections.kubeforge.cluster.plugins.modules import node_facts, trust_anchor_info
from module_checks import run_main  # pylint: disable=import-error  # beside this file

DOC = yaml.safe_load(node_facts.DOCUMENTATION)
RETURNED = yaml.safe_load(node_facts.RETURN)


def test_documentation():
    assert DOC["module"] == "node_facts" and set(DOC["options"]) == {"bin_dir", "trust_anchors"}
    assert DOC["author"] == ["kubeforge developers (@kubeforge)"]
    assert DOC["attributes"]["check_mode"]["support"] == "full"
    assert all(attribute["description"] for attribute in DOC["attributes"].values())
    for task in yaml.safe_load(node_facts.EXAMPLES):
        if "kubeforge.cluster.node_facts" in task:
            assert set(task["kubeforge.cluster.node_facts"] or {}) <= set(DOC["options"])
    fact = RETURNED["ansible_facts"]["contains"]["kubeforge_node"]["contains"]
    assert fact["ip_vs"]["choices"] == list(_node_facts.IP_VS_STATES)


@pytest.mark.parametrize("check_mode", [False, True])
def test_main_reads_this_machine(check_mode):
    result = run_main(node_facts, {}, check_mode=check_mode)
    assert result["changed"] is False and set(result) == {"changed", "ansible_facts", "invocation"}
    facts = result["ansible_facts"]["kubeforge_node"]
    assert set(facts) == set(RETURNED["ansible_facts"]["contains"]["kubeforge_node"]["contains"])
    assert facts == _node_facts.NodeFactsBackend("/").facts()
    assert facts["cgroup_version"] in (1, 2) and facts["ip_vs"] in _node_facts.IP_VS_STATES


def test_bin_dir_gives_the_versions_linked_there(tmp_path):
    (tmp_path / "etcd").symlink_to("/opt/kubeforge/etcd/v3.5.33/etcd")
    result = run_main(node_facts, {"bin_dir": str(tmp_path)}, check_mode=True)
    assert result["ansible_facts"]["kubeforge_node"]["linked_versions"] == {"etcd": "3.5.33"}


def test_with_trust_anchors_the_same_call_returns_what_trust_anchor_info_returns_without_content():
    result = run_main(node_facts, {"trust_anchors": True}, check_mode=True)
    assert result["ansible_facts"]["kubeforge_node"] == _node_facts.NodeFactsBackend("/").facts()
    anchors = {name: result[name] for name in ("anchors", "encryption_key_names", "errors")}
    assert anchors == {name: value for name, value in trust.TrustAnchorInfoBackend().run().items() if name != "changed"}
    always = {name for name, value in yaml.safe_load(trust_anchor_info.RETURN).items() if value["returned"] == "always"}
    assert set(anchors) == always == {name for name, value in RETURNED.items() if value["returned"] == "with O(trust_anchors)"}

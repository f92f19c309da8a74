# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The node_facts module: its documentation, and main() reading this machine in check mode."""
from __future__ import annotations

import contextlib
import io
import json

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.kubeforge.cluster.plugins.module_utils import _node_facts
from ansible_collections.kubeforge.cluster.plugins.modules import node_facts

DOC = yaml.safe_load(node_facts.DOCUMENTATION)
RETURNED = yaml.safe_load(node_facts.RETURN)


def test_documentation():
    assert DOC["module"] == "node_facts" and DOC["options"] == {}
    assert DOC["author"] == ["kubeforge developers (@kubeforge)"]
    assert DOC["attributes"]["check_mode"]["support"] == "full"
    assert all(attribute["description"] for attribute in DOC["attributes"].values())
    for task in yaml.safe_load(node_facts.EXAMPLES):
        if "kubeforge.cluster.node_facts" in task:
            assert not task["kubeforge.cluster.node_facts"]
    fact = RETURNED["ansible_facts"]["contains"]["kubeforge_node"]["contains"]
    assert fact["ip_vs"]["choices"] == list(_node_facts.IP_VS_STATES)


@pytest.mark.parametrize("check_mode", [False, True])
def test_main_reads_this_machine(check_mode):
    out = io.StringIO()
    with patch_module_args({"_ansible_check_mode": check_mode}), contextlib.redirect_stdout(out):
        with pytest.raises(SystemExit):
            node_facts.main()
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert result["changed"] is False
    facts = result["ansible_facts"]["kubeforge_node"]
    assert set(facts) == set(RETURNED["ansible_facts"]["contains"]["kubeforge_node"]["contains"])
    assert facts == _node_facts.NodeFactsBackend("/").facts()
    assert facts["cgroup_version"] in (1, 2) and facts["ip_vs"] in _node_facts.IP_VS_STATES

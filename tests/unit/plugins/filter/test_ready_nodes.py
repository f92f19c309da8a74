# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ready_nodes: which Node objects report Ready=True."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubeforge.cluster.plugins.filter.ready_nodes import nodes_with_taint, ready_nodes


def node(name: str, *conditions: tuple[str, str]) -> dict:
    status = {"conditions": [{"type": kind, "status": value, "reason": "x"} for kind, value in conditions]} if conditions else {}
    return {"metadata": {"name": name}, "status": status}


def test_only_nodes_whose_ready_condition_is_true_are_ready():
    nodes = [node("a", ("MemoryPressure", "False"), ("Ready", "True")), node("b", ("Ready", "False")),
             node("c", ("Ready", "Unknown")), node("d"), node("e", ("NetworkUnavailable", "True")), node("f", ("Ready", "True"))]
    assert ready_nodes(nodes) == ["a", "f"]


@pytest.mark.parametrize("value", ["a", {"metadata": {}}, None])
def test_anything_but_a_list_of_nodes_is_refused(value):
    with pytest.raises(AnsibleFilterError):
        ready_nodes(value)


def test_nodes_with_the_taint_key_and_effect_are_named():
    def tainted(name, *taints):
        return {"metadata": {"name": name}, "spec": {"taints": [{"key": key, "effect": effect} for key, effect in taints]}}
    key = "node-role.kubernetes.io/control-plane"
    nodes = [tainted("a", (key, "NoSchedule")), tainted("b", (key, "NoExecute")), tainted("c", ("other", "NoSchedule")),
             {"metadata": {"name": "d"}, "spec": {}}, tainted("e", ("node.kubernetes.io/not-ready", "NoSchedule"), (key, "NoSchedule"))]
    assert nodes_with_taint(nodes, key, "NoSchedule") == ["a", "e"]
    with pytest.raises(AnsibleFilterError):
        nodes_with_taint({"metadata": {}}, key, "NoSchedule")

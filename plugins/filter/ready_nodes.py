# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: ready_nodes
short_description: The names of the Nodes whose Ready condition is True
version_added: 0.1.0
description:
  - Reads Node objects, as M(kubernetes.core.k8s_info) returns them in C(resources), and gives the names of those whose
    C(Ready) condition has status C(True). A Node without conditions (not reported yet) is not Ready.
  - One read of every Node then tells which of many hosts are Ready, instead of one read per host.
options:
  _input:
    description: Node objects.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Wait until every host of the play is a Ready node
  kubernetes.core.k8s_info:
    kind: Node
  register: nodes
  until: ansible_play_hosts | reject('in', nodes.resources | kubeforge.cluster.ready_nodes) | list | length == 0
  retries: 60
  delay: 5
"""

RETURN = r"""
_value:
  description: The names of the Ready nodes, in the input's order.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError


def ready_nodes(nodes) -> list[str]:
    if isinstance(nodes, (str, dict)) or not hasattr(nodes, "__iter__"):
        raise AnsibleFilterError(f"ready_nodes: expected a list of Node objects, got {nodes!r}")
    return [node["metadata"]["name"] for node in nodes
            if any(condition.get("type") == "Ready" and condition.get("status") == "True"
                   for condition in (node.get("status") or {}).get("conditions") or [])]


def nodes_with_taint(nodes, key, effect) -> list[str]:
    """The names of the Node objects that carry the taint ``key`` with ``effect`` (documented in nodes_with_taint.yml)."""
    if isinstance(nodes, (str, dict)) or not hasattr(nodes, "__iter__"):
        raise AnsibleFilterError(f"nodes_with_taint: expected a list of Node objects, got {nodes!r}")
    return [node["metadata"]["name"] for node in nodes
            if any(taint.get("key") == key and taint.get("effect") == effect for taint in (node.get("spec") or {}).get("taints") or [])]


class FilterModule:
    def filters(self):
        return {"ready_nodes": ready_nodes, "nodes_with_taint": nodes_with_taint}

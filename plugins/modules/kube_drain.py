#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kube_drain
short_description: Cordon and drain a Kubernetes node, respecting PodDisruptionBudgets, or delete its Node object
version_added: 0.1.0
description:
  - With O(state=drained), cordons the node, then evicts its pods through the Eviction API, so that every
    PodDisruptionBudget is respected, and waits until they are gone, as C(kubectl drain --ignore-daemonsets
    --delete-emptydir-data) does. DaemonSet pods and the kubelet's mirror pods stay; a running pod that no controller
    owns is refused, the node left cordoned, since nothing would start it again elsewhere.
  - An eviction a budget refuses (HTTP 429) is asked again every second until O(timeout); then the module fails
    naming the pods, with the node cordoned and the pods not yet evicted still running.
  - With O(state=absent), deletes the Node object. Stop the node's kubelet first, or it registers the node again.
  - A node the API does not know is left alone in both states.
author:
  - kubeforge developers (@kubeforge)
extends_documentation_fragment:
  - kubeforge.cluster.kube_api
attributes:
  check_mode:
    support: full
    description: Reads the node and its pods, writes nothing, and reports what a run would cordon, evict or delete.
  diff_mode:
    support: none
    description: The pods evicted are returned in RV(evicted).
  idempotent:
    support: full
    description: A drained node has nothing left to evict; a deleted node is not found.
options:
  name:
    description: The node.
    type: str
    required: true
  state:
    description: V(drained) cordons and drains the node; V(absent) deletes its Node object.
    type: str
    choices: [drained, absent]
    default: drained
  timeout:
    description: With O(state=drained), seconds to wait for the evictions budgets refuse and for the evicted pods to end.
    type: int
    default: 300
  refuse_ready:
    description:
      - With O(state=absent), refuse to delete a node that is Ready. For a host gone for good, whose kubelet no longer
        reports; were it still running, it would register the node again.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Cordon and drain the node (evictions respect PodDisruptionBudgets)
  kubeforge.cluster.kube_drain:
    kubeconfig: /etc/kubernetes/admin.kubeconfig
    name: kf-w2
    timeout: 300
  delegate_to: localhost

- name: Delete the Node object, once its kubelet is stopped
  kubeforge.cluster.kube_drain:
    kubeconfig: /etc/kubernetes/admin.kubeconfig
    name: kf-w2
    state: absent
  delegate_to: localhost

- name: Delete the Node object of a host gone for good (refused while the node is Ready)
  kubeforge.cluster.kube_drain:
    kubeconfig: /etc/kubernetes/admin.kubeconfig
    name: kf-w3
    state: absent
    refuse_ready: true
  delegate_to: localhost
"""

RETURN = r"""
found:
  description: Whether the API knew the node.
  returned: always
  type: bool
  sample: true
cordoned:
  description: With O(state=drained), whether the node was cordoned by this run (it was schedulable).
  returned: success and failure
  type: bool
  sample: true
evicted:
  description: With O(state=drained), the pods evicted (in check mode, that would be), as namespace/name.
  returned: success and failure
  type: list
  elements: str
  sample: ["default/web-5d4f8c7b9-x2kq7"]
drained:
  description: With O(state=drained), whether the node has no pod left to evict.
  returned: success and failure
  type: bool
  sample: true
blocked:
  description: The pods whose eviction a disruption budget still refused at O(timeout).
  returned: failure, when a budget blocked the drain
  type: list
  elements: str
  sample: ["default/web-5d4f8c7b9-x2kq7"]
terminating:
  description: The evicted pods still on the node at O(timeout).
  returned: failure, when evicted pods did not end in time
  type: list
  elements: str
  sample: ["default/web-5d4f8c7b9-x2kq7"]
status:
  description: On failure, the HTTP status of the API's answer (0 when it gave none; 429 when a budget blocked the drain).
  returned: failure
  type: int
  sample: 429
reason:
  description: On failure with an HTTP status, its reason as the API names it.
  returned: failure
  type: str
  sample: TooManyRequests
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeforge.cluster.plugins.module_utils._kube_objects import delete_node, drain_node, run_module


def argument_spec() -> dict:
    return {
        "kubeconfig": {"type": "path", "required": True},
        "name": {"type": "str", "required": True},
        "state": {"type": "str", "choices": ["drained", "absent"], "default": "drained"},
        "timeout": {"type": "int", "default": 300},
        "refuse_ready": {"type": "bool", "default": False},
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    if params["state"] == "absent":
        found = run_module(module, lambda client: delete_node(
            client, params["name"], check_mode=module.check_mode, refuse_ready=params["refuse_ready"]), "kube-drain")
        module.exit_json(changed=found, found=found)
    result = run_module(module, lambda client: drain_node(client, params["name"], params["timeout"], check_mode=module.check_mode), "kube-drain")
    module.exit_json(changed=result["cordoned"] or bool(result["evicted"]), **result)


if __name__ == "__main__":
    main()

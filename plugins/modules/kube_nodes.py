#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kube_nodes
short_description: Wait for Kubernetes nodes to register or be Ready, and keep labels and taints on them
version_added: 0.1.0
description:
  - Lists the nodes (one request per attempt, every quarter of a second) until every node of O(names) is registered, or Ready
    with O(ready), and fails after O(timeout) naming those that are not.
  - Then patches each node of O(names) that lacks one of O(labels), whose taints are not as O(taints) and
    O(taints_state) want, or that is not cordoned or uncordoned as O(unschedulable) wants; a node that is as
    wanted is not written. A taint change carries the node's resource version
    and is made again on a fresh read when the node changed meanwhile.
author:
  - kubeforge developers (@kubeforge)
extends_documentation_fragment:
  - kubeforge.cluster.kube_api
attributes:
  check_mode:
    support: full
    description: Reads the nodes once instead of waiting (nothing was started that they could wait for), writes nothing, and
      reports the nodes it would patch and those it would wait for (RV(waiting)).
  diff_mode:
    support: none
    description: The nodes patched are returned in RV(patched).
  idempotent:
    support: full
    description: A node with the labels and taints asked for is left alone.
options:
  names:
    description: The nodes to wait for and to patch.
    type: list
    elements: str
    required: true
  ready:
    description: Wait for each node's Ready condition (and O(conditions)), not only for the node to be registered.
    type: bool
    default: false
  conditions:
    description:
      - With O(ready), more node conditions to wait for, each type with the status it must be reported with. A node is
        Ready once its CNI configuration is written; the pod network may set up its pods a moment later, and says so
        with V(NetworkUnavailable) V(False) (flannel's FlannelIsUp).
    type: dict
    default: {}
  pods_started:
    description:
      - With O(ready), a pod that must run on each node too with all its containers started (past their startup probes),
        such as a DaemonSet's (flannel's, whose startup probe passes once flanneld has written the subnet its CNI plugin
        reads). The kubelet reports a container started as soon as its probe passes, and the pod Ready a pod sync later.
    type: dict
    suboptions:
      namespace:
        description: The pod's namespace.
        type: str
        required: true
      label_selector:
        description: The label selector of the pod, such as V(app=flannel).
        type: str
        required: true
  timeout:
    description: Seconds to wait for the nodes.
    type: int
    default: 180
  labels:
    description: Labels every node of O(names) carries (an empty string is a valid value).
    type: dict
    default: {}
  taints:
    description: Taints every node of O(names) carries, or none of them carries (O(taints_state)).
    type: list
    elements: dict
    default: []
    suboptions:
      key:
        description: The taint's key.
        type: str
        required: true
      value:
        description: The taint's value.
        type: str
      effect:
        description: The taint's effect.
        type: str
        required: true
        choices: [NoSchedule, PreferNoSchedule, NoExecute]
  taints_state:
    description: Whether the nodes carry O(taints) (V(present)) or not (V(absent)); taints are matched on key and effect.
    type: str
    choices: [present, absent]
    default: present
  unschedulable:
    description:
      - V(true) cordons the nodes, V(false) uncordons them (as C(kubectl cordon) and C(kubectl uncordon)).
      - Left as it is when not set.
    type: bool
"""

EXAMPLES = r"""
- name: Wait for every node of the play to be Ready, with the pod network up on it
  kubeforge.cluster.kube_nodes:
    kubeconfig: /etc/kubernetes/admin.kubeconfig
    names: "{{ ansible_play_hosts }}"
    ready: true
    conditions: {NetworkUnavailable: "False"}
    timeout: 300
  delegate_to: localhost
  run_once: true

- name: Uncordon a node once it is Ready again
  kubeforge.cluster.kube_nodes:
    kubeconfig: /etc/kubernetes/admin.kubeconfig
    names: [kf-w1]
    ready: true
    unschedulable: false
  delegate_to: localhost

- name: Label the control-plane nodes, and taint them NoSchedule
  kubeforge.cluster.kube_nodes:
    kubeconfig: /etc/kubernetes/admin.kubeconfig
    names: "{{ groups['kube_control_plane'] }}"
    labels: {node-role.kubernetes.io/control-plane: ""}
    taints:
      - {key: node-role.kubernetes.io/control-plane, effect: NoSchedule}
"""

RETURN = r"""
patched:
  description: The nodes patched (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: ["kf-cp1"]
ready:
  description: The nodes of O(names) that were Ready (with O(conditions)) when last read.
  returned: always
  type: list
  elements: str
  sample: ["kf-cp1", "kf-w1"]
waiting:
  description: In check mode, the nodes of O(names) a run would wait for (not registered, or not Ready with O(ready)); empty otherwise.
  returned: always
  type: list
  elements: str
  sample: ["kf-w2"]
status:
  description: On failure, the HTTP status of the API's answer (0 when it gave none).
  returned: failure
  type: int
  sample: 403
reason:
  description: On failure with an HTTP status, its reason as the API names it.
  returned: failure
  type: str
  sample: Forbidden
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeforge.cluster.plugins.module_utils._kube_objects import reconcile_nodes, run_module


def argument_spec() -> dict:
    return {
        "kubeconfig": {"type": "path", "required": True},
        "names": {"type": "list", "elements": "str", "required": True},
        "ready": {"type": "bool", "default": False},
        "timeout": {"type": "int", "default": 180},
        "labels": {"type": "dict", "default": {}},
        "taints": {"type": "list", "elements": "dict", "default": [], "options": {
            "key": {"type": "str", "required": True, "no_log": False},
            "value": {"type": "str"},
            "effect": {"type": "str", "required": True, "choices": ["NoSchedule", "PreferNoSchedule", "NoExecute"]},
        }},
        "taints_state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "conditions": {"type": "dict", "default": {}},
        "pods_started": {"type": "dict", "options": {
            "namespace": {"type": "str", "required": True},
            "label_selector": {"type": "str", "required": True},
        }},
        "unschedulable": {"type": "bool"},
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    taints = [{key: value for key, value in taint.items() if value is not None} for taint in params["taints"]]
    labels = {key: "" if value is None else str(value) for key, value in params["labels"].items()}
    result = run_module(module, lambda client: reconcile_nodes(
        client, params["names"], labels, taints, taints_state=params["taints_state"], ready=params["ready"],
        timeout=params["timeout"], check_mode=module.check_mode, unschedulable=params["unschedulable"],
        conditions={kind: str(status) for kind, status in params["conditions"].items()}, pods=params["pods_started"]), "kube-nodes")
    module.exit_json(changed=bool(result["patched"]), **result)


if __name__ == "__main__":
    main()

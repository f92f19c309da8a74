#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kube_apply
short_description: Keep Kubernetes objects as given, with server-side apply, and wait for their rollouts
version_added: 0.1.0
description:
  - Applies each object of O(objects), in order, with server-side apply (as O(field_manager), conflicts forced, so
    the fields given are owned by this field manager and edits made to them by hand are overwritten). Lists merge on
    their real keys, as kubectl apply --server-side does.
  - An object counts as changed when it differs after the apply from what was read before it, leaving out what the
    server keeps (managed fields, resource version, generation, status).
  - A run costs a request per object, a discovery request per API group version, and the rollout checks.
author:
  - kubeforge developers (@kubeforge)
extends_documentation_fragment:
  - kubeforge.cluster.kube_api
attributes:
  check_mode:
    support: full
    description: Applies with C(dryRun=All) and reports what would change; nothing is waited for.
  diff_mode:
    support: full
    description: The changed objects before and after, Secret values hidden.
  idempotent:
    support: full
    description: Applying the same objects again changes nothing.
options:
  objects:
    description:
      - The objects, each a complete manifest with C(apiVersion), C(kind) and C(metadata.name) (and
        C(metadata.namespace) for a namespaced kind; C(default) without one). Applied in this order, so a
        Namespace goes before the objects in it.
    type: list
    elements: dict
    required: true
  field_manager:
    description: The field manager that owns the applied fields.
    type: str
    default: kubeforge
  wait:
    description:
      - Which Deployments and DaemonSets of O(objects) to wait for until their current generation runs, updated and
        available, on every replica or node. V(changed) waits only for those this run changed (a workload left as
        it was is not held to be healthy), V(all) for every one, V(none) for none.
    type: str
    choices: [none, changed, all]
    default: none
  wait_timeout:
    description: Seconds to wait for the rollouts before failing, naming those that are not done and why.
    type: int
    default: 120
"""

EXAMPLES = r"""
- name: Apply the CoreDNS objects and wait for its pods
  kubeforge.cluster.kube_apply:
    kubeconfig: "{{ coredns_admin_kubeconfig }}"
    objects: "{{ lookup('ansible.builtin.template', 'coredns.yaml.j2') | ansible.builtin.from_yaml_all | list }}"
    wait: all
    wait_timeout: 300
  delegate_to: localhost
  run_once: true

- name: Bind a group to a ClusterRole
  kubeforge.cluster.kube_apply:
    kubeconfig: /etc/kubernetes/admin.kubeconfig
    objects:
      - apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata: {name: ops-view}
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
        subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: ops}]
"""

RETURN = r"""
objects:
  description: One entry per object of O(objects), in order.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: The object's kind.
      type: str
      sample: Deployment
    namespace:
      description: The object's namespace as given; null for a cluster-scoped object.
      type: str
      sample: kube-system
    name:
      description: The object's name.
      type: str
      sample: coredns
    changed:
      description: Whether the apply changed the object (created it, or changed a field), or would in check mode.
      type: bool
      sample: false
status:
  description: On failure, the HTTP status of the API's answer (0 when it gave none).
  returned: failure
  type: int
  sample: 403
reason:
  description: On failure with an HTTP status, its reason as the API names it (V(Forbidden) for 403).
  returned: failure
  type: str
  sample: Forbidden
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeforge.cluster.plugins.module_utils._kube_objects import (
    FIELD_MANAGER, WAIT_CHOICES, KubeObjectsError, apply, describe, run_module, summary, wait_rollouts)


def argument_spec() -> dict:
    return {
        "kubeconfig": {"type": "path", "required": True},
        "objects": {"type": "list", "elements": "dict", "required": True},
        "field_manager": {"type": "str", "default": FIELD_MANAGER},
        "wait": {"type": "str", "choices": list(WAIT_CHOICES), "default": "none"},
        "wait_timeout": {"type": "int", "default": 120},
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params

    def work(client) -> list:
        applied = apply(client, params["objects"], check_mode=module.check_mode, field_manager=params["field_manager"])
        if not module.check_mode and params["wait"] != "none":
            try:
                wait_rollouts(client, [entry for entry in applied if params["wait"] == "all" or entry["changed"]],
                              timeout=params["wait_timeout"])
            except KubeObjectsError as exc:
                # The apply went through: the failed wait still reports what it changed.
                raise KubeObjectsError(str(exc), exc.status, {**exc.result, "changed": any(entry["changed"] for entry in applied),
                                                              "objects": [summary(entry) for entry in applied]}) from exc
        return applied

    applied = run_module(module, work, "kube-apply")
    changed = [entry for entry in applied if entry["changed"]]
    result = {"changed": bool(changed), "objects": [summary(entry) for entry in applied]}
    if module._diff:
        result["diff"] = {"before": {describe(entry["applied"]): entry["before"] for entry in changed},
                          "after": {describe(entry["applied"]): entry["after"] for entry in changed}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()

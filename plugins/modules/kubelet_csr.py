#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kubelet_csr
short_description: Approve the kubelets' serving-certificate requests that ask for exactly the names the inventory knows
version_added: 0.1.0
description:
  - Kubelets run with C(serverTLSBootstrap=true) submit CertificateSigningRequests (C(certificates.k8s.io/v1)) with
    the signer C(kubernetes.io/kubelet-serving). kube-controller-manager signs them only once approved, and nothing
    in Kubernetes approves them. This module reads all the requests and decides each kubelet-serving one that is
    pending, writing the approval or denial of each request on its own (never in bulk).
  - A request is left alone (ignored) when it is for another signer, is already approved, denied or failed, or
    comes from a requester that is not a node (C(system:node:<name>)).
  - A node's request is denied, with the reason in the condition's message, when the node is not in O(nodes), the
    requester is not in the group C(system:nodes), the request does not parse or its signature does not verify,
    its subject is not exactly C(CN=system:node:<name>), C(O=system:nodes) for the requesting node, its subject
    alternative names are not exactly the node's O(nodes) DNS names and IP addresses (any email or URI name, or
    none at all, denies), or its usages are not C(server auth) with at most C(digital signature) and
    C(key encipherment).
  - Every other node request is approved (condition reason C(KubeforgeApproved)).
  - The same logic runs on the control-plane hosts as a script, C(kubelet_csr.py), from a systemd timer, to approve
    the requests of certificate rotation.
author:
  - kubeforge developers (@kubeforge)
requirements:
  - cryptography (python3-cryptography) on the host the module runs on
  - PyYAML (python3-yaml) when the kubeconfig is YAML
attributes:
  check_mode:
    support: full
    description: Makes one pass that decides every request and writes nothing; O(wait_for) is not waited for.
  diff_mode:
    support: none
    description: The decisions are returned in RV(decisions).
  idempotent:
    support: full
    description: A request decided once is settled and ignored afterwards.
options:
  kubeconfig:
    description:
      - A kubeconfig (on the host the module runs on) of an identity that may list certificate signing requests,
        update their approval, and approve for the signer C(kubernetes.io/kubelet-serving). Its current-context is used;
        the CA, client certificate and key may be given as data or as file paths, or a bearer token.
    type: path
    required: true
  nodes:
    description:
      - The names and addresses each node's serving certificate must have, by node name, as the kubelet asks for them
        from its node's status. V(dns_names) are the node's hostname addresses (its host name); V(ip_addresses) its
        InternalIP addresses (C(--node-ip)), and ExternalIP ones if it has any.
      - 'Each value is a dictionary with two keys: V(dns_names) (list of strings) and V(ip_addresses) (list of strings).'
    type: dict
    required: true
  wait_for:
    description:
      - Node names to wait for; the module repeats its pass (every 0.25 seconds) until each of them has an approved
        kubelet-serving request, and fails after O(timeout) naming the nodes that never submitted one or were denied.
      - A request older than the node's newest kubelet client certificate request does not count, since an earlier
        kubelet of that name made it (a host removed and added again).
      - kube-controller-manager deletes approved requests after an hour, so list only the nodes whose kubelet has just
        been started or asked for a new certificate.
    type: list
    elements: str
    default: []
  timeout:
    description:
      - Seconds to wait for the O(wait_for) nodes.
    type: int
    default: 180
"""

EXAMPLES = r"""
- name: Approve the kubelets' serving certificates that match the inventory
  kubeforge.cluster.kubelet_csr:
    kubeconfig: /etc/kubernetes/kubelet-csr-approver.kubeconfig
    nodes:
      kf-w1:
        dns_names: [kf-w1]
        ip_addresses: [172.30.40.21]
      kf-w2:
        dns_names: [kf-w2]
        ip_addresses: [172.30.40.22]

- name: List each worker's host name and node IP
  ansible.builtin.set_fact:
    kubelet_csr_nodes: >-
      {{ kubelet_csr_nodes | default({}) | combine({item: {"dns_names": [item],
         "ip_addresses": [item | kubeforge.cluster.node_address(hostvars)]}}) }}
  loop: "{{ groups['kube_node'] }}"
  run_once: true

- name: Approve the workers' serving certificates, waiting until each worker has one
  kubeforge.cluster.kubelet_csr:
    kubeconfig: /etc/kubernetes/kubelet-csr-approver.kubeconfig
    nodes: "{{ kubelet_csr_nodes }}"
    wait_for: "{{ groups['kube_node'] }}"
    timeout: 300
  delegate_to: "{{ groups['kube_control_plane'][0] }}"
  run_once: true

- name: Show what would be approved, writing nothing
  kubeforge.cluster.kubelet_csr:
    kubeconfig: /etc/kubernetes/admin.kubeconfig
    nodes:
      kf-cp1:
        dns_names: [kf-cp1]
        ip_addresses: [172.30.40.11]
  check_mode: true
  register: kubelet_csr_plan
"""

RETURN = r"""
decisions:
  description:
    - One entry per kubelet-serving request read (requests for other signers are not listed); with O(wait_for), per
      request the approval or denial made in any pass, else the latest word.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The CertificateSigningRequest's name.
      type: str
      sample: csr-8xq2v
    node:
      description: The requesting node; null when the requester is not a node.
      type: str
      sample: kf-w1
    action:
      description: What was decided (in check mode, what would be).
      type: str
      choices: [approve, deny, ignore]
      sample: approve
    reason:
      description: Why; for an approval or denial, the message written in the condition.
      type: str
      sample: "SAN IP addresses ['10.0.0.99'] are not the inventory's ['172.30.40.21'] for node 'kf-w1'
        (unexpected ['10.0.0.99'], missing ['172.30.40.21'])"
    state:
      description: The request's state after the pass (before it in check mode); V(deleted) when it went away meanwhile.
      type: str
      choices: [pending, approved, denied, failed, deleted]
      sample: approved
approved:
  description: Names of the requests approved (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: ["csr-8xq2v"]
denied:
  description: Names of the requests denied (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: ["csr-zt5km"]
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.kubeforge.cluster.plugins.module_utils._kubelet_csr import (
    CRYPTOGRAPHY_IMPORT_ERROR, HAS_CRYPTOGRAPHY, KubeletCSRApprover, KubeletCSRError, client_from_kubeconfig)


def argument_spec() -> dict:
    return {
        "kubeconfig": {"type": "path", "required": True},
        "nodes": {"type": "dict", "required": True},
        "wait_for": {"type": "list", "elements": "str", "default": []},
        "timeout": {"type": "int", "default": 180},
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    params = module.params
    try:
        client = client_from_kubeconfig(params["kubeconfig"])
        backend = KubeletCSRApprover(client, params["nodes"], wait_for=params["wait_for"], timeout=params["timeout"])
        result = backend.run(check_mode=module.check_mode)
    except KubeletCSRError as exc:
        module.fail_json(msg=str(exc), **exc.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

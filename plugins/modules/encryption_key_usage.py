#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: encryption_key_usage
short_description: Count which encryption-at-rest key each object in etcd is under, rewrite them to the encrypting key, refuse to drop a key in use
version_added: 0.1.0
description:
  - Reads, from etcd, every object of each of O(resources) (the resources of the apiservers' EncryptionConfiguration) and
    counts them per key by the prefix the apiserver gives what it encrypts, C(k8s:enc:<provider>:v1:<key name>:) (for
    example C(k8s:enc:secretbox:v1:key1:)); a value without it was written in plain (C(identity)). Pages of O(page_size)
    values are read at one revision; only the first bytes of each value are looked at, and nothing of a value is returned.
  - With O(rewrite=true), every object not under O(primary) is read and written back unchanged through the API
    (C(kubectl get) by name, then C(kubectl replace), O(batch_size) objects at a time, with the admin O(kubeconfig)), which
    makes the apiserver encrypt it with its first key; then the objects are counted again, and any still not under O(primary)
    is an error. An object changed or deleted meanwhile is not an error (it was written again, or is gone).
  - With O(drop), fails while any object is still under one of those keys (or in plain, for V(identity)), naming the count per
    key and resource. This is the check before a key leaves the EncryptionConfiguration, since an object under a key the apiservers
    no longer have cannot be read again.
  - Resources map to etcd as kube-apiserver stores them, under O(etcd_prefix) - core resources as C(/registry/secrets/),
    C(/registry/configmaps/) (services, endpoints, nodes and replicationcontrollers under their historical prefixes), other
    built-in groups by resource name (V(deployments.apps) as C(/registry/deployments/)), custom resources and the
    C(apiextensions.k8s.io)/C(apiregistration.k8s.io) groups as C(<group>/<resource>) (V(foos.example.com) as
    C(/registry/example.com/foos/)). Wildcards, unknown core resources, groups without a dot that kube-apiserver does not
    serve and C(*.k8s.io) groups it does not serve are refused.
author:
  - kubeforge developers (@kubeforge)
extends_documentation_fragment:
  - kubeforge.cluster.etcd_client
attributes:
  check_mode:
    support: full
    description: Counts, and reports what the rewrite would replace and the counts it would leave; nothing is written.
  diff_mode:
    support: none
    description: The module reports counts, not a file or object to compare.
  idempotent:
    support: full
    description: Once every object is under O(primary), a rewrite replaces nothing and reports no change.
options:
  endpoints:
    description:
      - The apiservers' etcd (their C(--etcd-servers)); give the apiserver's etcd client certificate as O(client_cert).
  resources:
    description:
      - The resources of the EncryptionConfiguration, as it lists them (V(secrets), V(configmaps), V(foos.example.com)).
    type: list
    elements: str
    required: true
  etcd_prefix:
    description:
      - The apiservers' C(--etcd-prefix).
    type: str
    default: /registry
  page_size:
    description:
      - Values read from etcd per request (a Secret can be up to 1 MiB).
    type: int
    default: 100
  drop:
    description:
      - Key names about to leave the EncryptionConfiguration (matching that name under any provider, or V(provider:name)), and
        V(identity) when plain values would no longer be read. The module fails while any object is under one of them.
    type: list
    elements: str
    default: []
  rewrite:
    description:
      - Rewrite every object not under O(primary) through the API before counting for O(drop).
    type: bool
    default: false
  primary:
    description:
      - The key the apiservers encrypt with now (the first of their EncryptionConfiguration). Required with O(rewrite=true).
    type: str
  kubectl_path:
    description:
      - The kubectl the rewrite runs; by default C(kubectl) on E(PATH) or in C(/usr/local/bin).
    type: path
  kubeconfig:
    description:
      - A kubeconfig allowed to get and replace every object of O(resources) (the admin's). Required with O(rewrite=true).
    type: path
  batch_size:
    description:
      - Objects read and replaced per kubectl call in the rewrite.
    type: int
    default: 100
notes:
  - Run it on a host that holds the apiserver's etcd client certificate (a control-plane host), once per cluster.
seealso:
  - module: kubeforge.cluster.etcd_member
"""

EXAMPLES = r"""
- name: Count the secrets under each encryption key
  kubeforge.cluster.encryption_key_usage:
    endpoints: ["https://10.0.0.11:2379", "https://10.0.0.12:2379"]
    ca_cert: /etc/kubernetes/pki/etcd-ca.crt
    client_cert: /etc/kubernetes/pki/apiserver-etcd-client.crt
    client_key: /etc/kubernetes/pki/apiserver-etcd-client.key
    resources: [secrets]
  register: key_usage

- name: Refuse to drop key1 while any secret or config map is still encrypted with it
  kubeforge.cluster.encryption_key_usage:
    endpoints: ["https://10.0.0.11:2379"]
    ca_cert: /etc/kubernetes/pki/etcd-ca.crt
    client_cert: /etc/kubernetes/pki/apiserver-etcd-client.crt
    client_key: /etc/kubernetes/pki/apiserver-etcd-client.key
    resources: [secrets, configmaps]
    drop: [key1]

- name: Rewrite every secret with the encrypting key, then make sure key1 is no longer used
  kubeforge.cluster.encryption_key_usage:
    endpoints: ["https://10.0.0.11:2379"]
    ca_cert: /etc/kubernetes/pki/etcd-ca.crt
    client_cert: /etc/kubernetes/pki/apiserver-etcd-client.crt
    client_key: /etc/kubernetes/pki/apiserver-etcd-client.key
    resources: [secrets]
    rewrite: true
    primary: key2
    kubectl_path: /usr/local/bin/kubectl
    kubeconfig: /etc/kubernetes/admin.kubeconfig
    drop: [key1]
"""

RETURN = r"""
usage:
  description:
    - Objects per resource and per key, after the rewrite (in check mode, as the rewrite would leave them). A key is
      C(<provider>:<key name>), or C(identity) for plain values.
  returned: always, and with a failure
  type: dict
  sample: {"secrets": {"secretbox:key2": 41, "secretbox:key1": 3}}
rewritten:
  description: Objects replaced per resource (in check mode, that would be); empty without O(rewrite).
  returned: always, and with a failure of the rewrite or the drop check
  type: dict
  sample: {"secrets": 3}
revision:
  description: The etcd revision of the last count.
  returned: success
  type: int
  sample: 183204
summary:
  description: One line per resource for the operator.
  returned: always, and with a failure of the drop check
  type: list
  elements: str
  sample: ["secrets: 44 in etcd, 3 under secretbox:key1, 41 under secretbox:key2; 3 rewritten"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeforge.cluster.plugins.module_utils._encryption import EncryptionKeyUsage, Kubectl, settings_from_params
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.common import connection_argument_spec, run_module


def argument_spec() -> dict:
    spec = connection_argument_spec()
    spec.update(
        resources={"type": "list", "elements": "str", "required": True},
        etcd_prefix={"type": "str", "default": "/registry"},
        page_size={"type": "int", "default": 100},
        drop={"type": "list", "elements": "str", "default": []},
        rewrite={"type": "bool", "default": False},
        primary={"type": "str"},
        kubectl_path={"type": "path"},
        kubeconfig={"type": "path"},
        batch_size={"type": "int", "default": 100},
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), required_if=[("rewrite", True, ("primary", "kubeconfig"))],
                           supports_check_mode=True)
    p = module.params

    def run(client) -> dict:
        kubectl = None
        if p["rewrite"]:
            binary = p["kubectl_path"] or module.get_bin_path("kubectl", required=True, opt_dirs=["/usr/local/bin"])
            kubectl = Kubectl(lambda argv, data=None: module.run_command(argv, data=data), binary, p["kubeconfig"])
        return EncryptionKeyUsage(client, settings_from_params(p), kubectl).run(check_mode=module.check_mode)

    run_module(module, run, p)


if __name__ == "__main__":
    main()

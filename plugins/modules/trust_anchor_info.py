#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: trust_anchor_info
short_description: Read which CAs, service-account key and encryption keys a cluster host holds, in one call
version_added: 0.1.0
description:
  - Reads, without changing anything, the trust anchors the pki and control_plane phases put on a host - the cluster CA
    (C(/etc/kubernetes/pki/ca.crt)), the front-proxy CA (C(/etc/kubernetes/pki/front-proxy-ca.crt)), the etcd CA
    (C(/etc/etcd/pki/ca.crt) and C(/etc/kubernetes/pki/etcd-ca.crt)), the service-account public key
    (C(/etc/kubernetes/pki/sa.pub)) - and returns the SHA-256 fingerprint of each, and the names of the keys in the
    encryption configuration (C(/etc/kubernetes/encryption-config.yaml)). Files a host does not have are left out.
  - A fingerprint is the SHA-256 of the DER bytes of the PEM block, as C(openssl x509 -fingerprint -sha256) prints it
    for a certificate (for the public key, of its SubjectPublicKeyInfo); the host needs no crypto library.
  - Without O(include_content), no secret is returned; the preflight play runs it on every control-plane and etcd host
    and M(kubeforge.cluster.trust_anchor_check) compares the results with the controller's credentials.
  - With O(include_content), it also returns the content of every certificate, key and kubeconfig under
    C(/etc/kubernetes/pki), C(/etc/kubernetes) and C(/etc/etcd/pki), the encryption keys with their secrets, and the etcd
    member's first-start settings and restore marker (its cluster token), for C(playbooks/recover_credentials.yml); set
    C(no_log) on such a task.
author:
  - kubeforge developers (@kubeforge)
options:
  include_content:
    description:
      - Also return the files' contents, the encryption keys' secrets and the etcd cluster token (secrets - use C(no_log)).
    type: bool
    default: false
  etcd_data_dir:
    description:
      - The etcd member's data directory, where a restore leaves C(kubeforge-restore.json) (read with O(include_content)).
        The etcd role's C(etcd_data_dir).
    type: path
    default: /var/lib/etcd
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to show.
  idempotent:
    support: full
    description: Reads only.
seealso:
  - module: kubeforge.cluster.trust_anchor_check
  - module: kubeforge.cluster.credentials_recover
"""

EXAMPLES = r"""
- name: Read the CA fingerprints and the encryption key names of the control-plane and etcd hosts
  kubeforge.cluster.trust_anchor_info:
  register: kubeforge_trust_anchors
  when: inventory_hostname in groups['kube_control_plane'] + groups['etcd']

- name: Read everything recover_credentials.yml rebuilds the controller's directory from
  kubeforge.cluster.trust_anchor_info:
    include_content: true
  register: recover_credentials_found
  no_log: true
"""

RETURN = r"""
anchors:
  description: One entry per trust anchor file the host holds.
  returned: always
  type: list
  elements: dict
  contains:
    anchor:
      description: Which anchor.
      type: str
      choices: [cluster-ca, front-proxy-ca, etcd-ca, service-account-key]
    path:
      description: The file.
      type: str
    fingerprint_sha256:
      description: SHA-256 of the DER bytes, colon-separated upper-case hex.
      type: str
  sample:
    - anchor: cluster-ca
      path: /etc/kubernetes/pki/ca.crt
      fingerprint_sha256: "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
encryption_key_names:
  description: Names of the keys in the encryption configuration, in order (the first encrypts); empty without one.
  returned: always
  type: list
  elements: str
  sample: [key-20260301T120000000000Z]
errors:
  description: Files that exist but could not be read as what they should be.
  returned: always
  type: list
  elements: str
  sample: ["/etc/kubernetes/pki/ca.crt: no PEM CERTIFICATE block"]
files:
  description: Path -> content of every certificate, key and kubeconfig read (secrets).
  returned: with O(include_content)
  type: dict
encryption_keys:
  description: The encryption configuration's keys with their secrets, in order.
  returned: with O(include_content)
  type: list
  elements: dict
etcd_initial_env:
  description: The etcd member's first-start settings (C(/etc/etcd/etcd-initial.env)), or null.
  returned: with O(include_content)
  type: str
etcd_restore_marker:
  description: The C(kubeforge-restore.json) a restore left in the member's data directory, or null.
  returned: with O(include_content)
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import exit_with_backend
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.trust import DEFAULT_ETCD_DATA_DIR, TrustAnchorInfoBackend


def main() -> None:
    module = AnsibleModule(argument_spec={"include_content": {"type": "bool", "default": False},
                                          "etcd_data_dir": {"type": "path", "default": DEFAULT_ETCD_DATA_DIR}},
                           supports_check_mode=True)
    exit_with_backend(module, TrustAnchorInfoBackend(module.params["include_content"], module.params["etcd_data_dir"]))


if __name__ == "__main__":
    main()

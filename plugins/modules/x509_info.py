#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: x509_info
short_description: Describe every certificate in a list of files and directories on a host, in one call
version_added: 0.1.0
description:
  - Reads the given files, and the certificate-like files (C(*.crt), C(*.pem), C(*.kubeconfig), C(*.conf)) directly
    inside the given directories, and describes every certificate found - each PEM certificate block, and the certificates
    a kubeconfig embeds (C(certificate-authority-data), C(client-certificate-data)).
  - For each certificate it returns the subject, issuer, subject alternative names, validity and the days left.
  - Uses the C(openssl) command on the host, so the host needs no Python crypto library. Private keys are never read into
    the result.
  - Changes nothing; paths that do not exist are listed in RV(missing).
author:
  - kubeforge developers (@kubeforge)
requirements:
  - the openssl command (1.1.1 or later)
options:
  paths:
    description:
      - Files and directories to read. Directories are not searched recursively.
    type: list
    elements: path
    required: true
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
  - module: kubeforge.cluster.x509_cert
"""

EXAMPLES = r"""
- name: Read every certificate and kubeconfig of the host
  kubeforge.cluster.x509_info:
    paths:
      - /etc/kubernetes/pki
      - /etc/etcd/pki
      - /etc/kubernetes
  register: host_certs

- name: Show what expires within 30 days
  ansible.builtin.debug:
    msg: "{{ host_certs.certificates | selectattr('days_left', 'defined') | selectattr('days_left', '<=', 30) | map(attribute='path') }}"
"""

RETURN = r"""
certificates:
  description: One entry per certificate found, in file order; an entry with RV(certificates[].error) could not be read.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file it was found in.
      type: str
    source:
      description: V(file) for a PEM block, V(kubeconfig client) or V(kubeconfig cluster CA) for a kubeconfig's embedded certificate.
      type: str
    subject:
      description: The subject, RFC 2253.
      type: str
    issuer:
      description: The issuer, RFC 2253.
      type: str
    serial:
      description: Serial number, upper-case hex.
      type: str
    fingerprint_sha256:
      description: SHA-256 fingerprint, colon-separated.
      type: str
    not_before:
      description: Start of validity (UTC).
      type: str
    not_after:
      description: End of validity (UTC).
      type: str
    days_left:
      description: Whole days until V(not_after), by the host's clock; negative when expired.
      type: int
    dns_names:
      description: DNS subject alternative names.
      type: list
      elements: str
    ip_addresses:
      description: IP subject alternative names.
      type: list
      elements: str
    is_ca:
      description: Whether basicConstraints says CA:TRUE.
      type: bool
    self_signed:
      description: Whether subject and issuer are the same.
      type: bool
    error:
      description: Why the certificate could not be described; the other fields are then absent.
      type: str
  sample:
    - path: /etc/kubernetes/pki/apiserver.crt
      source: file
      subject: CN=kube-apiserver
      issuer: CN=kubernetes-ca
      serial: 3F1A9C0D5E7B2A4C6D8E0F1A2B3C4D5E6F708192
      fingerprint_sha256: "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
      not_before: "2026-03-01T11:55:00Z"
      not_after: "2027-03-01T12:00:00Z"
      days_left: 364
      dns_names: [kubernetes, localhost]
      ip_addresses: [10.96.0.1, 127.0.0.1]
      is_ca: false
      self_signed: false
missing:
  description: The given paths that do not exist.
  returned: always
  type: list
  elements: str
  sample: [/etc/etcd/pki]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.info import OPENSSL_X509_ARGS, X509InfoBackend


def main() -> None:
    module = AnsibleModule(argument_spec={"paths": {"type": "list", "elements": "path", "required": True}}, supports_check_mode=True)
    openssl = module.get_bin_path("openssl", required=True)

    def describe(pem: bytes):
        return module.run_command([openssl, *OPENSSL_X509_ARGS], data=pem, binary_data=True, environ_update={"LC_ALL": "C"})

    try:
        result = X509InfoBackend(module.params["paths"], describe).run()
    except KubeforgeError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: credentials_recover
short_description: Rebuild the controller's credentials directory from what the cluster's hosts hold
version_added: 0.1.0
description:
  - Reads what M(kubeforge.cluster.trust_anchor_info) with C(include_content) returned on each host (registered in the
    variable O(results_var)) and writes it back into the controller's credentials directory (C(kubeforge_credentials_dir)),
    at the paths the pki plan (O(plan), the pki role's C(pki_plan)) sends each file from - CA certificates and the CA keys
    the hosts hold, every certificate and key, the kubeconfigs and the client certificates, keys and CA they embed, the
    service-account key pair, the encryption keys (C(encryption-keys.json)) and the etcd cluster token file.
  - "Refuses, writing nothing, when a control-plane or etcd host did not answer, when a host's files cannot be read, when
    the hosts hold different versions of a trust anchor (a CA certificate or key, the service-account key pair) or two
    secrets under one encryption key name, and when no host holds anything. A certificate or kubeconfig the hosts hold in
    different versions is left out with a warning (the pki phase issues it again); encryption key lists that differ
    between hosts (a rotation cut short) are merged, with a warning."
  - An existing directory that already holds the same files only gets what it lacks. One holding a file that differs
    is moved aside as C(<dir>.<YYYYmmddTHHMMSSZ>) and a new one written; nothing is deleted. A CA key the hosts lack
    (the etcd and front-proxy CA keys never leave the controller) is taken from the existing directory when it holds it
    beside the same CA certificate.
  - RV(notes) says what no host could give back and what follows from it; the playbook then runs the pki role's
    controller side, which issues again from the recovered cluster CA key what only the controller held (the
    super-admin certificate, the operator's kubeconfigs).
  - Runs on the controller and returns paths and host names only, never a file's content.
author:
  - kubeforge developers (@kubeforge)
options:
  plan:
    description: The pki plan (the C(pki_plan) fact the pki role's C(plan) tasks set).
    type: dict
    required: true
  results_var:
    description: The variable the trust_anchor_info task (C(include_content=true)) registered on each host.
    type: str
    default: recover_credentials_found
attributes:
  check_mode:
    support: full
    description: Writes and moves nothing; reports what it would write and whether it would move the directory aside.
  diff_mode:
    support: none
    description: The files hold secrets; RV(written) and RV(moved_aside_to) say what changes.
  idempotent:
    support: full
    description: A second run finds every file in place and changes nothing.
  action:
    support: full
    description: Runs on the controller as an action plugin and contacts no host.
seealso:
  - module: kubeforge.cluster.trust_anchor_info
  - module: kubeforge.cluster.trust_anchor_check
"""

EXAMPLES = r"""
- name: Read every certificate, key, kubeconfig and encryption key the hosts hold
  kubeforge.cluster.trust_anchor_info:
    include_content: true
  register: recover_credentials_found
  no_log: true

- name: Rebuild the controller's credentials directory from them
  kubeforge.cluster.credentials_recover:
    plan: "{{ pki_plan }}"
    results_var: recover_credentials_found
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
written:
  description: Files written (or, in check mode, that would be), relative to the credentials directory.
  returned: success
  type: list
  elements: str
  sample: [pki/ca.crt, pki/ca.key, encryption-keys.json]
moved_aside_to:
  description: Where the existing directory was moved because it held files that differ, or null.
  returned: success
  type: str
  sample: /srv/inventory/credentials.20260301T120000Z
conflicts:
  description: The existing directory's files that differed from what the hosts hold.
  returned: success
  type: list
  elements: str
modes_fixed:
  description: Files already in place whose mode was set again.
  returned: success
  type: list
  elements: str
carried_over:
  description: CA keys taken from the existing directory (beside the same CA certificate).
  returned: success
  type: list
  elements: str
recovered:
  description: Each file recovered, relative to the credentials directory, and the hosts it came from.
  returned: success
  type: dict
  sample: {"pki/ca.crt": [cp1, cp2, cp3]}
notes:
  description: What no host could give back, and what follows from it.
  returned: always
  type: list
  elements: str
  sample: ["pki/etcd/ca.key: no host holds this CA key (it never leaves the controller); restore it from a backup ..."]
problems:
  description: Why it refused; empty on success.
  returned: always
  type: list
  elements: str
warnings_found:
  description: What was left out or merged.
  returned: always
  type: list
  elements: str
"""

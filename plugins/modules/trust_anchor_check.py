#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: trust_anchor_check
short_description: Refuse to run from a controller whose credentials are not the ones the cluster's hosts hold
version_added: 0.1.0
description:
  - Compares what M(kubeforge.cluster.trust_anchor_info) read on every control-plane and etcd host (registered in the
    variable O(results_var) on each) with the controller's credentials directory (C(kubeforge_credentials_dir)) - the
    cluster, front-proxy and etcd CA certificates, the service-account public key, and the encryption key names of
    C(encryption-keys.json) - and fails with one message when they do not match.
  - "It fails when a host holds an anchor the controller lacks or a different one, when a host holds an encryption key
    the controller's file does not have (kept or retired), when a host's files cannot be read, and when the controller
    lacks something while a control-plane or etcd host did not answer (unreachable, or left out by C(--limit)): that
    host might hold it. The message names the hosts, both fingerprints and the ways out: C(playbooks/recover_credentials.yml),
    a backup, or re-initialising on purpose."
  - Hosts that hold nothing pass (a new cluster, a node being added), and so does a controller holding material no host
    has yet.
  - Without this check, a controller that lacks the directory (a new laptop, a fresh CI runner, a deleted directory)
    would mint new CAs and a new encryption key and push them to every host - every Secret unreadable, all trust reset.
    The preflight play (C(playbooks/preflight.yml)) runs it, so every entry playbook that starts with it refuses.
author:
  - kubeforge developers (@kubeforge)
options:
  results_var:
    description: The variable the trust_anchor_info task registered on each host.
    type: str
    default: kubeforge_trust_anchors
  reinitialise:
    description:
      - Re-initialise the cluster's trust on purpose - a mismatch is then a warning, and the run goes on to replace what the
        hosts hold with the controller's credentials (new ones where it has none). The preflight play sets it from
        C(kubeforge_reinitialise_cluster_trust_i_understand_all_secrets_become_unreadable), which only C(-e) can set.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Makes no changes in any mode; refuses in check mode as it does otherwise.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to show.
  idempotent:
    support: full
    description: Reads only.
  action:
    support: full
    description: Runs on the controller as an action plugin and contacts no host.
seealso:
  - module: kubeforge.cluster.trust_anchor_info
  - module: kubeforge.cluster.credentials_recover
"""

EXAMPLES = r"""
- name: Read the CA fingerprints and the encryption key names of the control-plane and etcd hosts
  kubeforge.cluster.trust_anchor_info:
  register: kubeforge_trust_anchors
  when: inventory_hostname in groups['kube_control_plane'] + groups['etcd']

- name: Check that the controller's credentials are the ones the hosts hold
  kubeforge.cluster.trust_anchor_check:
    results_var: kubeforge_trust_anchors
    reinitialise: "{{ kubeforge_reinitialise_cluster_trust_i_understand_all_secrets_become_unreadable | bool }}"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
problems:
  description: Every mismatch found; the task fails with them unless O(reinitialise) is set.
  returned: always
  type: list
  elements: str
  sample: ["cluster CA: the controller has none (/srv/credentials/pki/ca.crt); site-cp1, site-cp2 hold SHA256 AB:CD:..."]
hosts_read:
  description: The control-plane and etcd hosts whose result was compared.
  returned: always
  type: list
  elements: str
  sample: [cp1, cp2, cp3]
"""

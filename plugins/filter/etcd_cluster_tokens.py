# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: etcd_cluster_tokens
short_description: The etcd cluster tokens kept on the controller, after a bootstrap, a restore or a recovery
version_added: 0.1.0
description:
  - The controller keeps C(<kubeforge_credentials_dir>/etcd-cluster-token.json) (0600), the token of every etcd cluster it
    created, oldest first, C(current) being the last one's. etcd derives the cluster ID from the peer URLs and the token, so
    a new cluster must never reuse a token, or it would have the ID of an earlier cluster on the same hosts.
  - V(bootstrap) adds a new random token C(kubeforge-<16 hex digits>) (from the controller's C(secrets)), never one listed
    before nor the constant C(kubeforge-etcd) of earlier releases. V(restore) records the token a restore used (unchanged
    when it is already current). V(recover) rebuilds the list for a controller that lost it, from the members' initial
    settings and restore markers; without a token they agree on, it records the cluster ID alone. A file kept is returned
    as it is by V(recover).
  - Fails on a file that is not what kubeforge writes, rather than overwrite it.
positional: action
options:
  _input:
    description: The file's text; empty when there is no file.
    type: str
    required: true
  action:
    description: What happened.
    type: str
    required: true
    choices: [bootstrap, restore, recover]
  initial_cluster:
    description: V(bootstrap), V(restore) - the new cluster's C(name=peer-url) list (or the same joined by commas).
    type: raw
  token:
    description: V(restore) - the token the members were restored with.
    type: str
  initial_envs:
    description: V(recover) - each member's C(/etc/etcd/etcd-initial.env) text, by member name.
    type: dict
  restore_markers:
    description: V(recover) - each member's C(<etcd_data_dir>/kubeforge-restore.json) text, by member name, where it has one.
    type: dict
  cluster_id:
    description: V(recover) - the cluster's ID in hexadecimal (M(kubeforge.cluster.etcd_member)'s RV(kubeforge.cluster.etcd_member#module:cluster_id)).
    type: str
"""

EXAMPLES = r"""
- name: Choose a new cluster's token
  ansible.builtin.set_fact:
    tokens: "{{ lookup('ansible.builtin.file', path) | kubeforge.cluster.etcd_cluster_tokens('bootstrap', initial_cluster=['etcd-1=https://10.0.0.11:2380']) }}"
"""

RETURN = r"""
_value:
  description: The file's content after the action (write it with C(to_nice_json)); C(current) is the token to use.
  type: dict
  sample: {"current": "kubeforge-3f9c0a5d1e2b4c68", "clusters": [{"token": "kubeforge-3f9c0a5d1e2b4c68", "how": "bootstrap",
           "since": "2025-05-01T10:00:00Z", "initial_cluster": "etcd-1=https://10.0.0.11:2380", "cluster_id": ""}]}
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError


def etcd_cluster_tokens(text, action, initial_cluster=None, token="", initial_envs=None, restore_markers=None, cluster_id="") -> dict:
    # Imported when called, not with this file (README, Layout: plugins/filter/).
    from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd import cluster_token
    try:
        if action == "bootstrap":
            return cluster_token.bootstrap(text, initial_cluster)
        if action == "restore":
            return cluster_token.restore(text, str(token or ""), initial_cluster)
        if action == "recover":
            return cluster_token.recover(text, dict(initial_envs or {}), dict(restore_markers or {}), str(cluster_id or ""))
    except KubeforgeError as exc:
        raise AnsibleFilterError(str(exc)) from exc
    raise AnsibleFilterError(f"etcd_cluster_tokens: action must be bootstrap, restore or recover, not {action!r}")


class FilterModule:
    def filters(self):
        return {"etcd_cluster_tokens": etcd_cluster_tokens}

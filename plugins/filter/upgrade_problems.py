# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: upgrade_problems
short_description: Why a rolling upgrade to the inventory's versions is refused, from the versions the hosts run
version_added: 0.1.0
description:
  - Reads the version each host's components print (C(<binary> --version), registered by upgrade.yml) and checks the
    targets against the upgrade policies - Kubernetes' version skew policy (one minor at a time, the apiservers at most
    one minor apart, nothing newer than the newest apiserver, kubelet and kube-proxy at most three minors older) and etcd's
    (one minor at a time, every member on at least the newest patch of the old minor the collection knows first).
  - An upgrade interrupted half way is allowed to finish with the same targets.
  - Given O(nodes), it also checks upgrade.yml's own settings, O(node_batch_size) and O(drain_timeout), which the run
    would otherwise meet only after etcd and the control plane were upgraded.
options:
  _input:
    description: "{host: [registered results of `<binary> --version`, each with C(item) the component, C(rc), C(stdout)]}."
    type: dict
    required: true
  kube_version:
    description: The target Kubernetes version (C(kube_version)).
    type: str
    required: true
  etcd_version:
    description: The target etcd version (C(etcd_version)).
    type: str
    required: true
  node_batch_size:
    description:
      - How many nodes are upgraded at a time (C(upgrade_node_batch_size)), a number or a percentage of the nodes (C(20%)).
      - Refused unless at least 1, and, with more than one node, fewer than all of them (all drained at once would leave
        none to run their pods).
    type: raw
  drain_timeout:
    description: The seconds each node's drain waits for the evictions a budget refuses (C(upgrade_drain_timeout)), at least 1.
    type: raw
  nodes:
    description: How many nodes the cluster has (the hosts of C(k8s_cluster)); without it, the settings are not checked.
    type: int
"""

EXAMPLES = r"""
- name: Check the upgrade
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join('; ') }}"
  vars:
    problems: "{{ reads | kubeforge.cluster.upgrade_problems(kube_version, etcd_version) }}"

- name: Check the upgrade and the run's own settings
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join('; ') }}"
  vars:
    problems: >-
      {{ reads | kubeforge.cluster.upgrade_problems(kube_version, etcd_version, node_batch_size=upgrade_node_batch_size,
                                                    drain_timeout=upgrade_drain_timeout, nodes=groups['k8s_cluster'] | length) }}
"""

RETURN = r"""
_value:
  description: Every problem, each naming the hosts and versions concerned and what to do instead; empty when the upgrade may go ahead.
  type: list
  elements: str
"""


def upgrade_problems(reads, kube_version, etcd_version, node_batch_size=None, drain_timeout=None, nodes=None) -> list[str]:
    """Every problem of upgrading to kube_version and etcd_version, from the hosts' --version outputs; with ``nodes``,
    those of the run's own settings too."""
    # Imported when called, not with this file (README, Layout: plugins/filter/).
    from ansible_collections.kubeforge.cluster.plugins.module_utils import _artifacts, _upgrade
    kubernetes, etcd, problems = _upgrade.read_versions(reads)
    known = {version for arch in (_artifacts.published_checksums().get("etcd") or {}).values() for version in arch}
    problems += _upgrade.kubernetes_upgrade_problems(str(kube_version), kubernetes)
    problems += _upgrade.etcd_upgrade_problems(str(etcd_version), etcd, _upgrade.newest_patches(known))
    if nodes is not None:
        problems += _upgrade.settings_problems(node_batch_size, drain_timeout, int(nodes))
    return problems


class FilterModule:
    """kubeforge.cluster upgrade filter."""

    def filters(self):
        return {"upgrade_problems": upgrade_problems}

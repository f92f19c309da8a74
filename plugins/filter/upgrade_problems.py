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
"""

EXAMPLES = r"""
- name: Check the upgrade
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join('; ') }}"
  vars:
    problems: "{{ reads | kubeforge.cluster.upgrade_problems(kube_version, etcd_version) }}"
"""

RETURN = r"""
_value:
  description: Every problem, each naming the hosts and versions concerned and what to do instead; empty when the upgrade may go ahead.
  type: list
  elements: str
"""


def upgrade_problems(reads, kube_version, etcd_version) -> list[str]:
    """Every problem of upgrading to kube_version and etcd_version, from the hosts' --version outputs."""
    # Imported when called, not with this file (README, Layout: plugins/filter/).
    from ansible_collections.kubeforge.cluster.plugins.module_utils import _artifacts, _upgrade
    kubernetes, etcd, problems = _upgrade.read_versions(reads)
    known = {version for arch in (_artifacts.published_checksums().get("etcd") or {}).values() for version in arch}
    problems += _upgrade.kubernetes_upgrade_problems(str(kube_version), kubernetes)
    problems += _upgrade.etcd_upgrade_problems(str(etcd_version), etcd, _upgrade.newest_patches(known))
    return problems


class FilterModule:
    """kubeforge.cluster upgrade filter."""

    def filters(self):
        return {"upgrade_problems": upgrade_problems}

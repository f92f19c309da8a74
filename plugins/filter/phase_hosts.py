# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: phase_hosts
short_description: The host pattern of a phase's play
version_added: 0.1.0
description:
  - Builds the C(hosts:) pattern of a phase's play. It is the phase's groups, limited to the hosts the calling
    playbook names (C(kubeforge_phase_hosts), C(all) when it names none).
  - It also leaves out the hosts for which a check-mode run ended early. On a cluster whose etcd never ran, a
    check-mode run ends in the etcd phase, because every later phase needs the cluster that the run would start (where
    no apiserver ever ran, in the control_plane phase). The role then puts every host into the group
    C(kubeforge_preview_ended) (C(playbooks/tasks/end_preview.yml)), and the later phases' plays find no host.
    C(etcd_migrate.yml)'s plays use it too, so a mirror migration's preview ends where the new cluster would first
    start.
  - The group is named only once it exists. An inventory pattern that names a missing group makes Ansible warn.
options:
  _input:
    description: The phase's groups, as a host pattern (C(etcd), C(k8s_cluster:etcd)).
    type: str
    required: true
  phase_hosts:
    description: The hosts the calling playbook limits the phase to, as a host pattern.
    type: str
    required: true
  groups:
    description: The C(groups) magic variable.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Etcd - install and run the etcd cluster
  hosts: "{{ 'etcd' | kubeforge.cluster.phase_hosts(kubeforge_phase_hosts | default('all'), groups) }}"
  roles:
    - role: kubeforge.cluster.etcd
  # etcd:&all, or etcd:&all:!kubeforge_preview_ended once a check-mode run ended early
"""

RETURN = r"""
_value:
  description: The play's host pattern.
  type: str
"""

from ansible.errors import AnsibleFilterError

# One name for the group, here and in playbooks/tasks/end_preview.yml.
PREVIEW_ENDED_GROUP = "kubeforge_preview_ended"


def phase_hosts(phase_groups, phase_hosts_pattern, groups) -> str:
    if not isinstance(phase_groups, str) or not phase_groups or not isinstance(phase_hosts_pattern, str) or not phase_hosts_pattern:
        raise AnsibleFilterError(f"phase_hosts: expected two host patterns, got {phase_groups!r} and {phase_hosts_pattern!r}")
    if not hasattr(groups, "keys"):
        raise AnsibleFilterError(f"phase_hosts: expected the groups magic variable, got {groups!r}")
    pattern = f"{phase_groups}:&{phase_hosts_pattern}"
    return f"{pattern}:!{PREVIEW_ENDED_GROUP}" if PREVIEW_ENDED_GROUP in groups else pattern


class FilterModule:
    def filters(self):
        return {"phase_hosts": phase_hosts}

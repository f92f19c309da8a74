# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: etcd_migration_plan
short_description: The step playbooks/etcd_migrate.yml resumes from, read from the hosts and the cluster
version_added: 0.1.0
description:
  - Decides the next step of the single-etcd migration from the cluster answering on the etcd group's URLs, the
    directories an earlier run moved aside and whether the single etcd holds data (docs/etcd-migration.md).
  - V(done), V(grow), V(mirror) or V(switch) (the single etcd was copied and moved aside); fails when going on could lose data.
options:
  _input:
    description: The migration method, V(grow) or V(mirror).
    type: str
    required: true
  etcd_hosts:
    description: The hosts of the etcd group.
    type: list
    elements: str
    required: true
  source:
    description: The host running the single etcd; empty for the first of O(etcd_hosts).
    type: str
    default: ""
  members:
    description: The C(members) that M(kubeforge.cluster.etcd_member) read on the etcd group's URLs; empty when none answered.
    type: list
    elements: dict
    default: []
  moved_aside:
    description: Paths of the single etcd's data directories moved aside by an earlier run.
    type: list
    elements: str
    default: []
  source_has_data:
    description: Whether the single etcd's data directory holds data.
    type: bool
    default: true
  cluster_id:
    description: The ID of the cluster that answered; only data moved aside for it (C(<data_dir>.migrated-to-<id>-<time>)) counts.
    type: str
    default: ""
  probe:
    description:
      - The registered result of M(kubeforge.cluster.etcd_member) reading the etcd group's URLs, failed or not; given, it
        replaces O(members) and O(cluster_id).
      - A failure counts as "no cluster" only when every endpoint is not running (refused, timeout, unreachable) on a host
        without etcd data (O(hosts_with_data)); a TLS or authentication error, or a member with data not answering, fails.
    type: dict
  endpoint_hosts:
    description: With O(probe), the host of each URL it read.
    type: dict
    default: {}
  hosts_with_data:
    description: With O(probe), the hosts whose etcd data directory holds data (C(member/wal)).
    type: list
    elements: str
    default: []
  foreign_source:
    description: With O(probe), whether the single etcd is one kubeforge did not install (it refuses kubeforge's certificates).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Decide the next step
  ansible.builtin.set_fact:
    etcd_migrate_plan: "{{ 'mirror' | kubeforge.cluster.etcd_migration_plan(groups['etcd'], members=probe.members) }}"
"""

RETURN = r"""
_value:
  description: The step, the source host, the target hosts and why.
  type: dict
  sample: {"step": "mirror", "source": "master1", "targets": ["master2", "master3"], "reason": "..."}
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError


def etcd_migration_plan(method, etcd_hosts, source="", members=None, moved_aside=None, source_has_data=True, cluster_id="",
                        probe=None, endpoint_hosts=None, hosts_with_data=None, foreign_source=False) -> dict:
    # Imported when called, not with this file (README, Layout: plugins/filter/).
    from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.migration import migration_plan, probe_answer
    try:
        if probe is not None:
            source = source or (list(etcd_hosts)[0] if etcd_hosts else "")
            answer = probe_answer(dict(probe), dict(endpoint_hosts or {}), list(hosts_with_data or []), source,
                                  boolean(foreign_source, strict=False))
            members, cluster_id = answer["members"], answer["cluster_id"]
        return migration_plan(method, list(etcd_hosts), source, list(members or []), list(moved_aside or []), bool(source_has_data),
                              str(cluster_id or ""))
    except KubeforgeError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {"etcd_migration_plan": etcd_migration_plan}

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: etcd_member
short_description: List, add (as a learner), promote and remove etcd cluster members without losing quorum
version_added: 0.1.0
description:
  - Without O(state), returns the members, the leader and the store revision; changes nothing, except that the learners
    named in O(promote_learners) are promoted.
  - With O(state=present), adds a member with O(peer_urls) when none has them (or O(name)); by default as a learner, which
    does not vote and so cannot cost quorum. With O(promote=true), promotes the learner to a voting member, retrying with
    backoff for up to O(promote_timeout) seconds while etcd answers that the learner is not in sync with the leader yet.
  - With O(state=absent), removes the member found by O(id), O(peer_urls) or O(name).
  - Refuses, before asking etcd, any change that would leave the cluster without quorum. A cluster of N voting members
    needs N // 2 + 1 of them running; a member counts as running when it has started once and answers on its client
    URLs now, from the host the module runs on. Adding a voting member (O(learner=false)) is refused unless the running voters are a quorum of the grown
    cluster (so never to a single-member cluster); removing a voting member is refused when the running ones left would
    not be a quorum, and the last voting member is never removed. Learners can always be added and removed.
  - etcd itself refuses a membership change while a member's peer connection is younger than 5 seconds ("unhealthy
    cluster"); the module retries for 10 seconds before failing.
  - The member list is read linearizably. An added member has no name until it starts; it is found by its peer URLs.
  - A learner answers no membership call. When the endpoint that answers first is one, the first voting member among
    O(endpoints) answers instead.
author:
  - kubeforge developers (@kubeforge)
extends_documentation_fragment:
  - kubeforge.cluster.etcd_client
  - kubeforge.cluster.host_lock
attributes:
  check_mode:
    support: full
    description: Reports the change and the member list it would give; the quorum checks run, the membership is not changed.
  diff_mode:
    support: full
    description: The member lists before and after.
  idempotent:
    support: full
    description: A member already present (or already promoted, or already absent) is left alone.
options:
  state:
    description:
      - V(present) adds (and with O(promote) promotes) a member; V(absent) removes it. Omitted, the module only reads the
        members and the leader.
    type: str
    choices: [present, absent]
  name:
    description:
      - The member's name (etcd's C(--name)). Finds a started member; a member found by O(peer_urls) must have this name
        once it has one.
    type: str
  peer_urls:
    description:
      - The member's peer URLs (its C(--initial-advertise-peer-urls)). Required to add a member.
    type: list
    elements: str
  id:
    description:
      - The member's ID in hexadecimal, as C(etcdctl member list) prints it. Finds the member for O(state=absent).
    type: str
  learner:
    description:
      - Add the member as a learner (non-voting). Set to V(false) only when the running voters make a quorum of the grown
        cluster, and then the new member must start at once.
    type: bool
    default: true
  promote:
    description:
      - Promote the member to a voting member if it is a learner. etcd promotes only a learner whose log is in sync with the
        leader; start it (with C(--initial-cluster-state=existing)) before asking.
    type: bool
    default: false
  promote_timeout:
    description:
      - Seconds to keep retrying the promotion (backoff from 0.5 s to 5 s) while the learner is not in sync.
    type: float
    default: 60.0
  promote_learners:
    description:
      - Without O(state), the names of the members to promote if they are learners (started members that a run which
        stopped before their promotion left learners); the other members are left as they are. Each promotion retries
        as O(promote) does.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Read the etcd members and the leader
  kubeforge.cluster.etcd_member:
    endpoints: ["https://10.0.0.11:2379"]
    ca_cert: /etc/kubernetes/pki/etcd/ca.crt
    client_cert: /etc/kubernetes/pki/etcd/healthcheck-client.crt
    client_key: /etc/kubernetes/pki/etcd/healthcheck-client.key
  register: etcd_members

- name: Add etcd-2 as a learner before starting it
  kubeforge.cluster.etcd_member:
    endpoints: ["https://10.0.0.11:2379"]
    ca_cert: /etc/kubernetes/pki/etcd/ca.crt
    client_cert: /etc/kubernetes/pki/etcd/healthcheck-client.crt
    client_key: /etc/kubernetes/pki/etcd/healthcheck-client.key
    state: present
    name: etcd-2
    peer_urls: ["https://10.0.0.12:2380"]

- name: Promote etcd-2 once it runs
  kubeforge.cluster.etcd_member:
    endpoints: ["https://10.0.0.11:2379"]
    ca_cert: /etc/kubernetes/pki/etcd/ca.crt
    client_cert: /etc/kubernetes/pki/etcd/healthcheck-client.crt
    client_key: /etc/kubernetes/pki/etcd/healthcheck-client.key
    state: present
    name: etcd-2
    peer_urls: ["https://10.0.0.12:2380"]
    promote: true
    promote_timeout: 120

- name: Promote etcd-1, etcd-2 or etcd-3 where a run that stopped half way left it a learner
  kubeforge.cluster.etcd_member:
    endpoints: ["https://10.0.0.11:2379", "https://10.0.0.12:2379", "https://10.0.0.13:2379"]
    ca_cert: /etc/kubernetes/pki/etcd/ca.crt
    client_cert: /etc/kubernetes/pki/etcd/healthcheck-client.crt
    client_key: /etc/kubernetes/pki/etcd/healthcheck-client.key
    promote_learners: [etcd-1, etcd-2, etcd-3]

- name: Remove the member that lost its disk
  kubeforge.cluster.etcd_member:
    endpoints: ["https://10.0.0.11:2379", "https://10.0.0.13:2379"]
    ca_cert: /etc/kubernetes/pki/etcd/ca.crt
    client_cert: /etc/kubernetes/pki/etcd/healthcheck-client.crt
    client_key: /etc/kubernetes/pki/etcd/healthcheck-client.key
    state: absent
    name: etcd-2
"""

RETURN = r"""
members:
  description: The members after the change (in check mode, as they would be), sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Member ID in hexadecimal.
      type: str
      sample: 8e9e05c52164694d
    name:
      description: Member name; empty until the member has started.
      type: str
      sample: etcd-1
    peer_urls:
      description: Peer URLs.
      type: list
      elements: str
      sample: ["https://10.0.0.11:2380"]
    client_urls:
      description: Client URLs; empty until the member has started.
      type: list
      elements: str
      sample: ["https://10.0.0.11:2379"]
    is_learner:
      description: Whether the member is a non-voting learner.
      type: bool
      sample: false
member:
  description: The member asked for (added, promoted, kept or removed), with the keys of RV(members); null when absent.
  returned: when O(state) is given
  type: dict
  sample: {"id": "5e8d3c6f1f2b0a11", "name": "", "peer_urls": ["https://10.0.0.12:2380"], "client_urls": [], "is_learner": true}
leader:
  description: The leader as seen by the member that answered, with the keys of RV(members); null without a leader.
  returned: always
  type: dict
  sample: {"id": "8e9e05c52164694d", "name": "etcd-1", "peer_urls": ["https://10.0.0.11:2380"],
           "client_urls": ["https://10.0.0.11:2379"], "is_learner": false}
cluster_id:
  description: The cluster ID in hexadecimal.
  returned: always
  type: str
  sample: cdf818194e3a8c32
revision:
  description:
    - The store revision of the member that answered, from the header of its member list (of its status where etcd leaves it
      out there), read after the change. With one member's client URL as O(endpoints), that member's revision; the etcd role
      checks that it does not go down across the member's restart.
  returned: always
  type: int
  sample: 48213
lock_holder:
  description: Who held this host's etcd lock when the task stopped waiting for it (O(lock_timeout)); the task failed.
  returned: when another operation held the lock too long
  type: dict
  sample: {"pid": 4242, "operation": "etcd_mirror from https://10.0.0.10:2379 to https://10.0.0.11:2379",
           "command": "/usr/bin/python3 /root/.ansible/tmp/ansible-tmp-1/AnsiballZ_etcd_mirror.py", "started": "2025-05-01T10:00:00Z"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.common import module_argument_spec, run_module
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.member import EtcdMemberBackend


def argument_spec() -> dict:
    spec = module_argument_spec()
    spec.update(
        state={"type": "str", "choices": ["present", "absent"]},
        name={"type": "str"},
        peer_urls={"type": "list", "elements": "str"},
        id={"type": "str"},
        learner={"type": "bool", "default": True},
        promote={"type": "bool", "default": False},
        promote_timeout={"type": "float", "default": 60.0},
        promote_learners={"type": "list", "elements": "str", "default": []},
    )
    return spec


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[("state", "absent", ("name", "peer_urls", "id"), True), ("state", "present", ("name", "peer_urls"), True)],
        mutually_exclusive=[("state", "promote_learners")],
        supports_check_mode=True,
    )
    p = module.params
    target = p["name"] or ",".join(p["peer_urls"] or []) or p["id"]
    operation = f"etcd_member {p['state']} {target} in {','.join(p['endpoints'])}" if p["state"] and not module.check_mode else ""
    if p["promote_learners"] and not module.check_mode:
        operation = f"etcd_member promote the learners among {','.join(p['promote_learners'])} in {','.join(p['endpoints'])}"
    run_module(module, lambda client: EtcdMemberBackend(client, p).run(check_mode=module.check_mode), p, operation=operation)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: etcd_defrag
short_description: Defragment one etcd member when it would give enough space back, and disarm its NOSPACE alarm
version_added: 0.1.0
description:
  - Reads the status of the one member O(endpoints) names. Compaction frees pages inside its database file but never shrinks
    the file; when the file's free pages (its size less the size in use) reach O(min_free_bytes), the member is
    defragmented (its file rewritten without them). The member answers no other request while that runs, so defragment
    one member at a time (the collection's C(playbooks/etcd_defrag.yml) does, the leader last).
  - A member whose file reached the quota raises a NOSPACE alarm, and the cluster then refuses writes. With
    O(disarm_nospace=true), the member's NOSPACE alarm is disarmed once its file is under the quota again.
  - Refuses a learner, and any member while etcd has a CORRUPT alarm (the members' data differ).
author:
  - kubeforge developers (@kubeforge)
extends_documentation_fragment:
  - kubeforge.cluster.etcd_client
  - kubeforge.cluster.host_lock
attributes:
  check_mode:
    support: full
    description: Reads the member's status and alarms; reports whether it would be defragmented, and the sizes it would have.
  diff_mode:
    support: full
    description: The member's database size, size in use and free bytes, before and after.
  idempotent:
    support: full
    description: A member just defragmented has fewer free bytes than any useful O(min_free_bytes), and is left alone.
options:
  min_free_bytes:
    description:
      - Defragment the member when its database file has at least this many free bytes. A member just defragmented keeps
        about two free pages (8 KiB), so a value of that size or less defragments it again at every run.
    type: int
    required: true
  quota_bytes:
    description:
      - The member's C(--quota-backend-bytes), to tell whether its database is under the quota again. etcd 3.6 reports
        its own, which is used instead.
    type: int
    default: 2147483648
  disarm_nospace:
    description:
      - Disarm the member's NOSPACE alarm once its database is under the quota.
    type: bool
    default: true
  defrag_timeout:
    description:
      - Seconds the defragmentation may take; it copies every page in use, so it grows with the database.
    type: float
    default: 600.0
notes:
  - O(endpoints) must name exactly one member, since the defragmentation applies to the member that answers.
"""

EXAMPLES = r"""
- name: Defragment the member when it would give back 64 MiB or more
  kubeforge.cluster.etcd_defrag:
    endpoints: ["https://10.0.0.11:2379"]
    ca_cert: /etc/kubernetes/pki/etcd/ca.crt
    client_cert: /etc/kubernetes/pki/etcd/healthcheck-client.crt
    client_key: /etc/kubernetes/pki/etcd/healthcheck-client.key
    min_free_bytes: 67108864
    quota_bytes: 8589934592
  register: etcd_defrag

- name: Read what a defragmentation would give back, changing nothing
  kubeforge.cluster.etcd_defrag:
    endpoints: ["https://10.0.0.11:2379"]
    ca_cert: /etc/kubernetes/pki/etcd/ca.crt
    client_cert: /etc/kubernetes/pki/etcd/healthcheck-client.crt
    client_key: /etc/kubernetes/pki/etcd/healthcheck-client.key
    min_free_bytes: 67108864
  check_mode: true
  register: etcd_defrag_plan

- name: The cluster refuses writes (NOSPACE) - defragment whatever it gives back, then disarm the alarm
  kubeforge.cluster.etcd_defrag:
    endpoints: ["https://10.0.0.11:2379"]
    ca_cert: /etc/kubernetes/pki/etcd/ca.crt
    client_cert: /etc/kubernetes/pki/etcd/healthcheck-client.crt
    client_key: /etc/kubernetes/pki/etcd/healthcheck-client.key
    min_free_bytes: 1048576
    quota_bytes: 8589934592
    defrag_timeout: 1800
"""

RETURN = r"""
defragmented:
  description: Whether the member was defragmented (in check mode, would be).
  returned: always
  type: bool
  sample: true
member_id:
  description: The member's ID in hexadecimal.
  returned: always
  type: str
  sample: 8e9e05c52164694d
leader:
  description: Whether the member was the leader when the module read its status.
  returned: always
  type: bool
  sample: false
before:
  description: The member's database before.
  returned: always
  type: dict
  contains:
    db_size:
      description: The database file's size in bytes.
      type: int
      sample: 209715200
    db_size_in_use:
      description: The bytes its pages in use take.
      type: int
      sample: 41943040
    free_bytes:
      description: What a defragmentation gives back, RV(before.db_size) less RV(before.db_size_in_use).
      type: int
      sample: 167772160
after:
  description: The member's database after, with the keys of RV(before); in check mode, what a defragmentation would leave.
  returned: always
  type: dict
  sample: {"db_size": 41951232, "db_size_in_use": 41943040, "free_bytes": 8192}
quota_bytes:
  description: The quota the sizes were checked against (etcd 3.6's own report, else O(quota_bytes)).
  returned: always
  type: int
  sample: 8589934592
alarms_disarmed:
  description: The member's alarms disarmed (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: [NOSPACE]
nospace_alarm:
  description: Whether the member keeps a NOSPACE alarm after the run; the task's message then says what to do.
  returned: always
  type: bool
  sample: false
lock_holder:
  description: Who held this host's etcd lock when the task stopped waiting for it (O(lock_timeout)); the task failed.
  returned: when another operation held the lock too long
  type: dict
  sample: {"pid": 4242, "operation": "etcd_member present etcd-2 in https://10.0.0.11:2379",
           "command": "/usr/bin/python3 /root/.ansible/tmp/ansible-tmp-1/AnsiballZ_etcd_member.py", "started": "2025-05-01T10:00:00Z"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.common import module_argument_spec, run_module
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.defrag import EtcdDefragBackend


def argument_spec() -> dict:
    spec = module_argument_spec()
    spec.update(
        min_free_bytes={"type": "int", "required": True},
        quota_bytes={"type": "int", "default": 2147483648},
        disarm_nospace={"type": "bool", "default": True},
        defrag_timeout={"type": "float", "default": 600.0},
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    if len(p["endpoints"]) != 1:
        module.fail_json(msg=f"endpoints must name exactly one member, the one to defragment; got {len(p['endpoints'])}: "
                             f"{', '.join(p['endpoints'])}")
    operation = "" if module.check_mode else f"etcd_defrag {p['endpoints'][0]}"
    run_module(module, lambda client, defrag_client: EtcdDefragBackend(client, defrag_client, p).run(check_mode=module.check_mode),
               p, {**p, "timeout": p["defrag_timeout"]}, operation=operation)


if __name__ == "__main__":
    main()

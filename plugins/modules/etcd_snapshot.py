#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: etcd_snapshot
short_description: Save a verified etcd snapshot, read a snapshot's status, or restore one into a new data directory
version_added: 0.1.0
description:
  - With O(state=saved), saves a snapshot of the member at the first of O(endpoints) that answers to O(path). The snapshot
    goes to C(<path>.part) with mode C(0600), is fsynced, its own SHA-256 trailer (the last 32 bytes are the SHA-256 of
    everything before them) is checked, and only then is it renamed to O(path). With O(method=auto), the host's C(etcdctl)
    is used when present (the fastest path), otherwise etcd's JSON gateway stream.
  - With O(state=status), reads the revision, the number of keys, the size and the hash of the snapshot at O(path) with
    C(etcdutl snapshot status) (etcd 3.6 removed it from etcdctl; before 3.6 the key count includes etcd's internal keys).
  - With O(state=restored), restores the snapshot at O(path) for one member with C(etcdutl snapshot restore) into a new
    directory (with the member's O(name), the shared O(initial_cluster) and a new O(initial_cluster_token); with a revision
    bump and the revisions marked compacted when O(bump_revision) is set), then moves the existing O(data_dir) aside to
    C(<data_dir>.moved-<YYYYmmddTHHMMSSZ>), never deleting it, and puts the new directory in its place. A marker file
    C(kubeforge-restore.json) in the data directory records the snapshot and the options, so a second run with the same
    snapshot and options changes nothing. etcd must be stopped; a data directory held by a running etcd is refused.
  - The recommended recovery restores one snapshot on every member with the same O(initial_cluster) and a new
    O(initial_cluster_token), then starts the members together.
author:
  - kubeforge developers (@kubeforge)
extends_documentation_fragment:
  - kubeforge.cluster.etcd_client
  - kubeforge.cluster.host_lock
attributes:
  check_mode:
    support: full
    description: Reports whether a snapshot would be saved or restored and where the data directory would be moved; writes nothing.
  diff_mode:
    support: partial
    description: The snapshot file, or the snapshot a data directory was restored from, before and after.
  idempotent:
    support: full
    description: A valid snapshot already at O(path) is kept unless O(force); a data directory restored from the same snapshot
      with the same options is left alone.
options:
  state:
    description:
      - V(saved) saves a snapshot to O(path); V(status) reads the snapshot at O(path); V(restored) restores it into O(data_dir).
    type: str
    choices: [saved, status, restored]
    default: saved
  endpoints:
    description:
      - Used by O(state=saved) only; the other states work on local files. The snapshot is taken from the first endpoint that
        answers.
    required: false
  path:
    description:
      - The snapshot file, on the host the module runs on.
    type: path
    required: true
  force:
    description:
      - Save a new snapshot even when a valid one is already at O(path).
    type: bool
    default: false
  method:
    description:
      - How to save. V(etcdctl) runs C(etcdctl snapshot save) (the fastest); V(gateway) streams the snapshot through etcd's
        JSON gateway with the Python standard library; V(auto) uses etcdctl when it is found, the gateway otherwise.
    type: str
    choices: [auto, etcdctl, gateway]
    default: auto
  etcdctl_path:
    description:
      - The etcdctl to use; by default C(etcdctl) on E(PATH) or in C(/usr/local/bin).
    type: path
  etcdutl_path:
    description:
      - The etcdutl to use for O(state=status) and O(state=restored); by default C(etcdutl) on E(PATH) or in C(/usr/local/bin).
    type: path
  data_dir:
    description:
      - The member's data directory (etcd's C(--data-dir)). Required for O(state=restored).
    type: path
  name:
    description:
      - The member's name (etcd's C(--name)). Required for O(state=restored).
    type: str
  initial_cluster:
    description:
      - Every member of the restored cluster as C(name=peer-url,...) (etcd's C(--initial-cluster)), the same on every member.
        Required for O(state=restored).
    type: str
  initial_cluster_token:
    description:
      - The restored cluster's token; use a new one, so that the restored members never join the old cluster. Required for
        O(state=restored).
    type: str
  initial_advertise_peer_urls:
    description:
      - The member's peer URLs (etcd's C(--initial-advertise-peer-urls)). Required for O(state=restored).
    type: list
    elements: str
  bump_revision:
    description:
      - Add this many revisions to the restored store and mark the old ones compacted (etcdutl's C(--bump-revision) and
        C(--mark-compacted), etcd 3.5.10 and later), so that Kubernetes watchers re-list instead of keeping stale caches.
        etcd's documentation uses 1000000000. V(0) restores the revision as it was.
    type: int
    default: 0
  mark_compacted:
    description:
      - Mark the restored revisions compacted (implied by O(bump_revision)).
    type: bool
    default: false
  skip_hash_check:
    description:
      - Restore a file without the SHA-256 trailer (a C(member/snap/db) copied from a data directory).
    type: bool
    default: false
seealso:
  - module: kubeforge.cluster.etcd_member
"""

EXAMPLES = r"""
- name: Save a verified snapshot of etcd
  kubeforge.cluster.etcd_snapshot:
    endpoints: ["https://127.0.0.1:2379"]
    ca_cert: /etc/kubeforge/pki/etcd/ca.crt
    client_cert: /etc/kubeforge/pki/etcd/kubeforge-etcd-client.crt
    client_key: /etc/kubeforge/pki/etcd/kubeforge-etcd-client.key
    path: /var/backups/etcd/etcd-{{ ansible_date_time.iso8601_basic_short }}.db
  register: etcd_backup

- name: Read the snapshot's revision and key count
  kubeforge.cluster.etcd_snapshot:
    state: status
    path: "{{ etcd_backup.path }}"

- name: Restore the snapshot into this member's data directory, revisions bumped
  kubeforge.cluster.etcd_snapshot:
    state: restored
    path: /var/backups/etcd/restore.db
    data_dir: /var/lib/etcd
    name: etcd-1
    initial_cluster: etcd-1=https://10.0.0.11:2380,etcd-2=https://10.0.0.12:2380,etcd-3=https://10.0.0.13:2380
    initial_cluster_token: kubeforge-etcd-restore-20250101
    initial_advertise_peer_urls: ["https://10.0.0.11:2380"]
    bump_revision: 1000000000
"""

RETURN = r"""
path:
  description: The snapshot file.
  returned: always
  type: str
  sample: /var/backups/etcd/etcd-20250101T020000.db
size:
  description: Size of the snapshot in bytes.
  returned: when O(state) is V(saved) (not in check mode) or V(status)
  type: int
  sample: 16818208
sha256:
  description: SHA-256 of the whole snapshot file.
  returned: when O(state) is V(saved) (not in check mode) or V(status)
  type: str
  sample: 3b1f0c4e...
method:
  description: How the snapshot was saved (V(etcdctl) or V(gateway)); null when a valid snapshot was kept.
  returned: when O(state=saved)
  type: str
  sample: etcdctl
seconds:
  description: Seconds the save took.
  returned: when O(state=saved) and a snapshot was saved
  type: float
  sample: 0.21
revision:
  description: The store revision of the snapshot.
  returned: when O(state=status)
  type: int
  sample: 183204
total_keys:
  description: Keys in the snapshot (before etcd 3.6, etcd's internal keys included).
  returned: when O(state=status)
  type: int
  sample: 20116
total_size:
  description: Size of the snapshot's database in bytes.
  returned: when O(state=status)
  type: int
  sample: 16818176
version:
  description: The etcd storage version of the snapshot (etcdutl 3.6 and later).
  returned: when O(state=status) and etcdutl reports it
  type: str
  sample: 3.6.0
hash:
  description: The snapshot database's hash as etcdutl prints it (decimal).
  returned: when O(state=status)
  type: int
  sample: 1233162140
trailer_valid:
  description: Whether the snapshot ends with a correct SHA-256 trailer.
  returned: when O(state=status)
  type: bool
  sample: true
data_dir:
  description: The restored data directory.
  returned: when O(state=restored)
  type: str
  sample: /var/lib/etcd
moved_to:
  description: Where the previous data directory was moved; null when there was none or nothing changed.
  returned: when O(state=restored)
  type: str
  sample: /var/lib/etcd.moved-20250101T020000Z
data_dir_in_use:
  description:
    - Whether a running etcd holds the data directory. In check mode the module reports it (a playbook plans which members
      need the restore before stopping them); otherwise a data directory in use is an error.
  returned: when O(state=restored) and the member is not already restored from this snapshot
  type: bool
  sample: false
snapshot_missing:
  description:
    - In check mode, the snapshot is not at O(path) yet (a check-mode run copied none to the member). The restore is
      reported as a change, and nothing is read. Outside check mode a missing snapshot is an error.
  returned: when O(state=restored), in check mode, and O(path) does not exist
  type: bool
  sample: true
snapshot_sha256:
  description: SHA-256 of the snapshot file restored (recorded in the marker file).
  returned: when O(state=restored)
  type: str
  sample: 3b1f0c4e...
snapshot_revision:
  description: The snapshot's store revision.
  returned: when O(state=restored) and a restore was done (or would be in check mode)
  type: int
  sample: 183204
revision_after:
  description: The store revision of the restored member, O(bump_revision) included.
  returned: when O(state=restored) and a restore was done (or would be in check mode)
  type: int
  sample: 1000183204
restored_at:
  description: When the data directory was restored (UTC, C(YYYYmmddTHHMMSSZ)).
  returned: when O(state=restored), not in check mode
  type: str
  sample: 20250101T020000Z
lock_holder:
  description: Who held this host's etcd lock when the task stopped waiting for it (O(lock_timeout)); the task failed.
  returned: when another operation held the lock too long
  type: dict
  sample: {"pid": 4242, "operation": "etcd_mirror from https://10.0.0.10:2379 to https://10.0.0.11:2379",
           "command": "/usr/bin/python3 /root/.ansible/tmp/ansible-tmp-1/AnsiballZ_etcd_mirror.py", "started": "2025-05-01T10:00:00Z"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.common import client_from_params, module_argument_spec, run_module
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.snapshot import EtcdSnapshotBackend


def argument_spec() -> dict:
    spec = module_argument_spec()
    spec["endpoints"]["required"] = False
    spec.update(
        state={"type": "str", "choices": ["saved", "status", "restored"], "default": "saved"},
        path={"type": "path", "required": True},
        force={"type": "bool", "default": False},
        method={"type": "str", "choices": ["auto", "etcdctl", "gateway"], "default": "auto"},
        etcdctl_path={"type": "path"},
        etcdutl_path={"type": "path"},
        data_dir={"type": "path"},
        name={"type": "str"},
        initial_cluster={"type": "str"},
        initial_cluster_token={"type": "str", "no_log": False},
        initial_advertise_peer_urls={"type": "list", "elements": "str"},
        bump_revision={"type": "int", "default": 0},
        mark_compacted={"type": "bool", "default": False},
        skip_hash_check={"type": "bool", "default": False},
    )
    return spec


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[("state", "saved", ("endpoints",)),
                     ("state", "restored", ("data_dir", "name", "initial_cluster", "initial_cluster_token", "initial_advertise_peer_urls"))],
        supports_check_mode=True,
    )
    p = module.params
    operation = f"etcd_snapshot restore of {p['path']} into {p['data_dir']}" if p["state"] == "restored" and not module.check_mode else ""
    run_module(module, lambda: EtcdSnapshotBackend(p, module.run_command, client_factory=lambda: client_from_params(p)).run(check_mode=module.check_mode),
               operation=operation)


if __name__ == "__main__":
    main()

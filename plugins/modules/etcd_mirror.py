#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: etcd_mirror
short_description: Copy every key under a prefix from one etcd cluster to another, follow the changes, verify, and stop
version_added: 0.1.0
description:
  - Like C(etcdctl make-mirror), but with a defined end, leases carried over, and a verification.
  - "Copy: every key under O(prefix) at one source revision (the first page of the range pins it, the next pages are read at
    it), written to the destination in transactions of up to O(max_txn_ops) operations and O(max_request_bytes) bytes."
  - "Leases: a key attached to a lease on the source is attached on the destination to a lease granted with the source
    lease's remaining TTL plus one second (etcd rounds it down; with the same lease ID where it is free). The destination
    lease is not kept alive: a source lease renewed after the copy is not extended on the destination."
  - "Follow: from the copied revision + 1, the source's puts and deletes are applied in batches (the last write of a key wins
    within a batch, so a large source transaction may be applied in several destination transactions) for O(follow_seconds),
    then until the destination has caught up: etcd's answer to a watch progress request tells the revision up to which every
    change has been sent."
  - "Verify: the number of keys and a SHA-256 over the (key, value) pairs (keys relative to their prefix) of the source at the
    caught-up revision and of the destination must be equal, otherwise the task fails. etcd's HashKV cannot compare two
    clusters, this hash can. When they differ (a leased key expired between the caught-up revision and the reading of the
    destination), the module catches up again and compares again, three times at most."
  - Refuses a destination prefix that holds keys, unless they are already exactly the source's (nothing to do, unchanged)
    or O(overwrite=true) (they are deleted first).
  - Fails with a clear message when a revision it needs was compacted on the source; mirror again with O(overwrite=true).
  - With O(min_dest_revision_above_source=true), the destination revision ends above the source's (so that Kubernetes
    resource versions never go backwards for clients that move over); a scratch key O(revision_bump_key) outside the
    destination prefix is written as often as needed (each write is one revision, about 1,000 a second on a small machine),
    then deleted.
  - Nothing else may write to the destination prefix while the module runs.
author:
  - kubeforge developers (@kubeforge)
extends_documentation_fragment:
  - kubeforge.cluster.etcd_client
  - kubeforge.cluster.host_lock
attributes:
  check_mode:
    support: full
    description: Counts the source keys, checks the destination, and reports what would be copied and how many revision bumps
      are needed; writes nothing.
  diff_mode:
    support: partial
    description: The number of keys under the destination prefix before and after; not the keys themselves.
  idempotent:
    support: partial
    description: A destination that already holds exactly the source's keys is reported unchanged (with a revision already above
      the source's when asked). A destination whose keys differ is refused unless O(overwrite=true), which copies again.
options:
  endpoints:
    description:
      - Client URLs of the B(source) cluster. The other connection options of this section are the source's too.
  destination:
    description:
      - How to reach the destination cluster. Omitted TLS files and timeout are the source's.
    type: dict
    required: true
    suboptions:
      endpoints:
        description: Client URLs of the destination cluster.
        type: list
        elements: str
        required: true
      ca_cert:
        description: CA certificate of the destination's serving certificate.
        type: path
      client_cert:
        description: Client certificate presented to the destination.
        type: path
      client_key:
        description: Private key of O(destination.client_cert).
        type: path
      timeout:
        description: Seconds to wait for a connection and for each answer of the destination.
        type: float
  prefix:
    description:
      - Copy the keys starting with this prefix; the empty prefix copies every key.
    type: str
    default: ""
  dest_prefix:
    description:
      - Write each key with O(prefix) replaced by this prefix. By default keys keep their names.
    type: str
  strip_prefix:
    description:
      - Write each key with O(prefix) removed (as C(etcdctl make-mirror --no-dest-prefix)).
    type: bool
    default: false
  overwrite:
    description:
      - Delete the keys under the destination prefix before the copy when they are not already the source's.
    type: bool
    default: false
  follow_seconds:
    description:
      - Seconds to keep applying the source's changes after the copy, before catching up and verifying.
    type: float
    default: 0.0
  catch_up_timeout:
    description:
      - Seconds allowed, after O(follow_seconds), for the destination to catch up with the source.
    type: float
    default: 60.0
  verify:
    description:
      - Compare key count and content hash of both sides at the caught-up revision, and fail when they differ.
    type: bool
    default: true
  page_size:
    description:
      - Keys read from the source per range request.
    type: int
    default: 1000
  max_txn_ops:
    description:
      - Operations per destination transaction; at most the destination's C(--max-txn-ops).
    type: int
    default: 128
  max_request_bytes:
    description:
      - Upper bound of the encoded size of one destination transaction; at most the destination's C(--max-request-bytes).
    type: int
    default: 1572864
  min_dest_revision_above_source:
    description:
      - End with the destination's revision above the source's current revision plus O(revision_margin), writing the scratch
        key O(revision_bump_key) as many times as needed and then deleting it.
      - Use it when clients (Kubernetes apiservers and their watchers) move from the source to the destination, so that
        resource versions they have seen never go backwards.
    type: bool
    default: false
  revision_margin:
    description:
      - Revisions to add above the source's, for writes the source may still take after the check.
    type: int
    default: 1000
  revision_bump_key:
    description:
      - The scratch key written to raise the destination's revision. It must not exist and must lie outside the destination
        prefix (unless that is the whole keyspace, where it is deleted at the end anyway).
    type: str
    default: /kubeforge/mirror-revision-bump
  revision_bump_limit:
    description:
      - Most scratch-key writes allowed; beyond, the task fails. For a source at a high revision, seed the destination from a
        snapshot of the source restored with a revision bump (M(kubeforge.cluster.etcd_snapshot) O(kubeforge.cluster.etcd_snapshot#module:bump_revision)),
        then mirror with O(overwrite=true).
    type: int
    default: 100000
seealso:
  - module: kubeforge.cluster.etcd_snapshot
"""

EXAMPLES = r"""
- name: Mirror the single etcd into the new cluster and follow it for a minute
  kubeforge.cluster.etcd_mirror:
    endpoints: ["https://10.0.0.10:2379"]
    ca_cert: /etc/kubernetes/pki/etcd/ca.crt
    client_cert: /etc/kubernetes/pki/etcd/healthcheck-client.crt
    client_key: /etc/kubernetes/pki/etcd/healthcheck-client.key
    destination:
      endpoints: ["https://10.0.0.11:2379", "https://10.0.0.12:2379", "https://10.0.0.13:2379"]
      ca_cert: /etc/kubeforge/pki/etcd/ca.crt
      client_cert: /etc/kubeforge/pki/etcd/kubeforge-etcd-client.crt
      client_key: /etc/kubeforge/pki/etcd/kubeforge-etcd-client.key
    prefix: /registry/
    follow_seconds: 60
  register: etcd_mirror

- name: Final catch-up with the apiservers stopped, the destination revision above the source's
  kubeforge.cluster.etcd_mirror:
    endpoints: ["https://10.0.0.10:2379"]
    ca_cert: /etc/kubernetes/pki/etcd/ca.crt
    client_cert: /etc/kubernetes/pki/etcd/healthcheck-client.crt
    client_key: /etc/kubernetes/pki/etcd/healthcheck-client.key
    destination:
      endpoints: ["https://10.0.0.11:2379"]
    prefix: /registry/
    overwrite: true
    min_dest_revision_above_source: true
    revision_margin: 100

- name: Copy one prefix under another name
  kubeforge.cluster.etcd_mirror:
    endpoints: ["https://10.0.0.11:2379"]
    destination:
      endpoints: ["https://10.0.0.21:2379"]
    prefix: /app/config/
    dest_prefix: /app/config-copy/
"""

RETURN = r"""
keys_copied:
  description: Keys written by the copy (in check mode, the keys that would be).
  returned: always
  type: int
  sample: 20000
leases_copied:
  description: Leases granted on the destination for leased source keys.
  returned: always
  type: int
  sample: 12
source_revision:
  description: The source revision the copy was read at.
  returned: always
  type: int
  sample: 183204
caught_up_revision:
  description: The source revision whose state the destination held at the end of the follow.
  returned: always
  type: int
  sample: 183950
events_followed:
  description: Source puts and deletes applied while following.
  returned: always
  type: int
  sample: 746
duration:
  description: Seconds the whole task took.
  returned: always
  type: float
  sample: 64.2
copy_seconds:
  description: Seconds the copy took.
  returned: when keys were copied
  type: float
  sample: 3.1
keys_per_second:
  description: Keys copied per second of the copy.
  returned: when keys were copied
  type: float
  sample: 16000.0
transactions:
  description: Destination transactions written.
  returned: when keys were copied
  type: int
  sample: 163
deleted_before_copy:
  description: Destination keys deleted first because of O(overwrite) (in check mode, that would be).
  returned: always
  type: int
  sample: 0
verification:
  description: The comparison of both sides; null when O(verify=false) or in check mode.
  returned: always
  type: dict
  contains:
    equal:
      description: Key count and content hash are equal.
      type: bool
    source_revision:
      description: The source revision that was hashed.
      type: int
    dest_revision:
      description: The destination revision that was hashed.
      type: int
    source_keys:
      description: Keys under the source prefix.
      type: int
    dest_keys:
      description: Keys under the destination prefix.
      type: int
    source_hash:
      description: SHA-256 over the source's (key, value) pairs, keys relative to O(prefix).
      type: str
    dest_hash:
      description: The same over the destination's pairs, keys relative to the destination prefix.
      type: str
    attempts:
      description: Comparisons made (after the first, each after catching up again).
      type: int
  sample: {"equal": true, "source_revision": 183950, "dest_revision": 1320, "source_keys": 20000, "dest_keys": 20000,
           "source_hash": "9f2c...", "dest_hash": "9f2c...", "attempts": 1}
revision_bumps:
  description: Scratch-key writes made to raise the destination's revision (in check mode, that would be).
  returned: always
  type: int
  sample: 0
dest_revision:
  description: The destination's revision at the end.
  returned: always
  type: int
  sample: 185051
lock_holder:
  description: Who held this host's etcd lock when the task stopped waiting for it (O(lock_timeout)); the task failed.
  returned: when another operation held the lock too long
  type: dict
  sample: {"pid": 4242, "operation": "etcd_mirror from https://10.0.0.10:2379 to https://10.0.0.11:2379",
           "command": "/usr/bin/python3 /root/.ansible/tmp/ansible-tmp-1/AnsiballZ_etcd_mirror.py", "started": "2025-05-01T10:00:00Z"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.common import (CONNECTION_OPTIONS, connection_argument_spec,
                                                                                     module_argument_spec, run_module)
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.mirror import EtcdMirrorBackend, settings_from_params


def argument_spec() -> dict:
    spec = module_argument_spec()
    destination = connection_argument_spec()
    destination["timeout"] = {"type": "float"}
    spec.update(
        destination={"type": "dict", "required": True, "options": destination},
        prefix={"type": "str", "default": ""},
        dest_prefix={"type": "str"},
        strip_prefix={"type": "bool", "default": False},
        overwrite={"type": "bool", "default": False},
        follow_seconds={"type": "float", "default": 0.0},
        catch_up_timeout={"type": "float", "default": 60.0},
        verify={"type": "bool", "default": True},
        page_size={"type": "int", "default": 1000},
        max_txn_ops={"type": "int", "default": 128},
        max_request_bytes={"type": "int", "default": 1572864},
        min_dest_revision_above_source={"type": "bool", "default": False},
        revision_margin={"type": "int", "default": 1000},
        revision_bump_key={"type": "str", "default": "/kubeforge/mirror-revision-bump", "no_log": False},
        revision_bump_limit={"type": "int", "default": 100000},
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), mutually_exclusive=[("dest_prefix", "strip_prefix")], supports_check_mode=True)
    p = module.params
    dest_params = {name: p["destination"].get(name) if p["destination"].get(name) is not None else p[name] for name in CONNECTION_OPTIONS}
    operation = "" if module.check_mode else f"etcd_mirror from {','.join(p['endpoints'])} to {','.join(dest_params['endpoints'])}"
    run_module(module, lambda source, dest: EtcdMirrorBackend(source, dest, settings_from_params(p)).run(check_mode=module.check_mode), p, dest_params,
               operation=operation)


if __name__ == "__main__":
    main()

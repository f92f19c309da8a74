# SPDX-License-Identifier: GPL-3.0-or-later
"""The scenario's data set, and the collection's own client for the verifier.

Run by converge: writes 20,000 keys under /seed/ into the single etcd in batched transactions
(128 puts each), 200 of them attached to 10 leases of an hour, unless they are already there.
"""
from __future__ import annotations

import os
import sys
import time

# Run by converge as a script, so it finds the shared helpers and the collection itself.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "_shared"))
sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], ".cache", "collections"))

# pylint: disable=wrong-import-position
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.client import op_put  # noqa: E402
from kubeforge_verify import etcd_client  # noqa: E402

ADDRESSES = {f"mig-{i}": f"172.30.43.1{i}" for i in range(1, 4)}
KEYS = 20000
LEASED = 200  # the first LEASED keys, 20 per lease
LEASE_TTL = 3600


def endpoints(names):
    return [f"https://{ADDRESSES[name]}:2379" for name in names]


def client(urls, timeout=5.0):
    # The apiserver's etcd client certificate, signed by the etcd CA: what the apiservers use.
    return etcd_client(list(urls), timeout)


def seed_key(number):
    return f"/seed/{number:05d}"


def seed_value(number):
    return f"value-{number}-" + "x" * (number % 97)


def seed(etcd):
    """(keys written, seconds)."""
    if etcd.count("/seed/", "/seed0")[0] == KEYS:
        return 0, 0.0
    started = time.monotonic()
    leases = [etcd.lease_grant(LEASE_TTL)[0] for _lease in range(LEASED // 20)]
    for first in range(0, KEYS, 128):
        etcd.txn([op_put(seed_key(n).encode(), seed_value(n).encode(), leases[n // 20] if n < LEASED else 0)
                  for n in range(first, min(first + 128, KEYS))])
    return KEYS, time.monotonic() - started


if __name__ == "__main__":
    written, seconds = seed(client(sys.argv[1:]))
    print(f"seeded {written} keys in {seconds:.2f}s ({written / seconds:.0f} keys/s)" if written else "present")

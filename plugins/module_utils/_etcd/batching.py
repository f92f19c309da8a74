# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure batching of writes into etcd transactions that etcd accepts.

etcd refuses a txn with more operations than ``--max-txn-ops`` (default 128: "too many
operations in txn request"), a raft request larger than ``--max-request-bytes`` (default
1.5 MiB: "request is too large"), and a txn that puts the same key twice or puts and deletes it
("duplicate key given in txn request"). Writes gathered over several source revisions are
therefore de-duplicated (the last write of a key wins, which is the state the source reached)
and cut by count and by an upper estimate of their encoded size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

DEFAULT_MAX_TXN_OPS = 128
DEFAULT_MAX_REQUEST_BYTES = 1572864
# Protobuf framing of one RequestOp{RequestPut{key, value, lease}} is at most ~25 bytes; round up.
OP_OVERHEAD = 32
# Room for the raft request's own header and the txn framing.
REQUEST_MARGIN = 4096


@dataclasses.dataclass(frozen=True)
class Write:
    """A put (value is bytes) or a delete (value is None) of one key."""

    key: bytes
    value: bytes | None
    lease: int = 0

    @property
    def size(self) -> int:
        return len(self.key) + len(self.value or b"") + OP_OVERHEAD


def dedupe(writes: Iterable[Write]) -> list[Write]:
    """The last write of each key, in the order of those last writes."""
    last: dict = {}
    for write in writes:
        last.pop(write.key, None)
        last[write.key] = write
    return list(last.values())


def plan_batches(writes: Iterable[Write], max_ops: int = DEFAULT_MAX_TXN_OPS,
                 max_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> list[list[Write]]:
    """De-duplicated writes cut into batches of at most max_ops and (estimated) max_bytes each.

    A single write larger than the byte budget gets a batch of its own (etcd then says whether
    it is too large). Keys are unique across all batches, so their order does not matter.
    """
    if max_ops < 1:
        raise ValueError("max_ops must be at least 1")
    budget = max(max_bytes - REQUEST_MARGIN, 1)
    batches: list[list[Write]] = []
    current: list[Write] = []
    size = 0
    for write in dedupe(writes):
        if current and (len(current) >= max_ops or size + write.size > budget):
            batches.append(current)
            current, size = [], 0
        current.append(write)
        size += write.size
    if current:
        batches.append(current)
    return batches

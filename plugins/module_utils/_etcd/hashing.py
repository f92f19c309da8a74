# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A content hash of (key, value) pairs computed by the client, comparable across two clusters.

etcd's own HashKV is a CRC32-C of one member's raw MVCC store (revisions included): it only
compares members of one cluster. This hash covers what a reader sees: each key (relative to a
prefix, so a mirror into another prefix compares equal) and its value, in key order, each
length-prefixed so that no two different sets of pairs feed the same bytes to SHA-256.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable


class ContentHasher:
    def __init__(self, prefix: bytes = b"") -> None:
        self.prefix = prefix
        self.count = 0
        self._sha = hashlib.sha256()
        self._last: bytes | None = None

    def update(self, key: bytes, value: bytes) -> None:
        if not key.startswith(self.prefix):
            raise ValueError(f"key {key[:80]!r} is not under the prefix {self.prefix!r}")
        relative = key[len(self.prefix):]
        if self._last is not None and relative <= self._last:
            raise ValueError("keys must come in strictly increasing order")
        self._last = relative
        self._sha.update(struct.pack(">Q", len(relative)) + relative + struct.pack(">Q", len(value)) + value)
        self.count += 1

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def content_hash(pairs: Iterable[tuple[bytes, bytes]], prefix: bytes = b"") -> tuple[int, str]:
    """(number of pairs, hex SHA-256) of (key, value) pairs in key order, keys relative to prefix."""
    hasher = ContentHasher(prefix)
    for key, value in pairs:
        hasher.update(key, value)
    return hasher.count, hasher.hexdigest()

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Transactions that etcd accepts: within max-txn-ops and the request size, one write per key."""
from __future__ import annotations

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.batching import OP_OVERHEAD, REQUEST_MARGIN, Write, dedupe, plan_batches


def puts(count, size=1, prefix=b"k"):
    return [Write(prefix + b"%06d" % i, b"v" * size) for i in range(count)]


@pytest.mark.parametrize("writes, expected", [
    ([Write(b"a", b"1"), Write(b"b", b"1"), Write(b"a", b"2")], [Write(b"b", b"1"), Write(b"a", b"2")]),
    ([Write(b"a", b"1"), Write(b"a", None)], [Write(b"a", None)]),
    ([Write(b"a", None), Write(b"a", b"3", lease=7)], [Write(b"a", b"3", lease=7)]),
    ([Write(b"a", b"1"), Write(b"b", b"2")], [Write(b"a", b"1"), Write(b"b", b"2")]),
    ([], []),
])
def test_dedupe_keeps_the_last_write_of_each_key(writes, expected):
    assert dedupe(writes) == expected


@pytest.mark.parametrize("count, max_ops, sizes", [
    (0, 128, []), (1, 128, [1]), (128, 128, [128]), (129, 128, [128, 1]), (300, 128, [128, 128, 44]), (5, 1, [1] * 5),
])
def test_batches_by_count(count, max_ops, sizes):
    batches = plan_batches(puts(count), max_ops=max_ops)
    assert [len(b) for b in batches] == sizes
    assert [w for b in batches for w in b] == puts(count)


def test_batches_by_bytes():
    value_size = 100_000
    max_bytes = 1_000_000
    batches = plan_batches(puts(25, size=value_size), max_ops=128, max_bytes=max_bytes)
    assert sum(len(b) for b in batches) == 25
    for batch in batches:
        assert sum(w.size for w in batch) <= max_bytes - REQUEST_MARGIN
    assert len(batches[0]) == (max_bytes - REQUEST_MARGIN) // (value_size + 7 + OP_OVERHEAD)


def test_an_oversized_write_gets_a_batch_of_its_own():
    big = Write(b"big", b"x" * 2_000_000)
    batches = plan_batches([Write(b"a", b"1"), big, Write(b"b", b"2")], max_ops=128, max_bytes=1_000_000)
    assert batches == [[Write(b"a", b"1")], [big], [Write(b"b", b"2")]]


def test_duplicate_keys_never_share_a_batch():
    writes = [Write(b"k%d" % (i % 10), b"%d" % i) for i in range(1000)]
    batches = plan_batches(writes, max_ops=128)
    keys = [w.key for b in batches for w in b]
    assert len(keys) == len(set(keys)) == 10
    assert {w.key: w.value for b in batches for w in b} == {b"k%d" % k: b"%d" % (990 + k) for k in range(10)}


def test_max_ops_must_be_positive():
    with pytest.raises(ValueError):
        plan_batches(puts(1), max_ops=0)

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The client-side content hash that compares two clusters."""
from __future__ import annotations

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.hashing import ContentHasher, content_hash

PAIRS = [(b"/a/1", b"x"), (b"/a/2", b"y"), (b"/a/3", b"")]


def test_same_pairs_under_other_prefixes_hash_equal():
    moved = [(b"/copy" + k[2:], v) for k, v in PAIRS]
    assert content_hash(PAIRS, b"/a") == content_hash(moved, b"/copy")


@pytest.mark.parametrize("other", [
    [(b"/a/1", b"x"), (b"/a/2", b"Y"), (b"/a/3", b"")],  # a value differs
    [(b"/a/1", b"x"), (b"/a/2", b"y")],  # a key is missing
    [(b"/a/1", b"x"), (b"/a/2", b"y"), (b"/a/4", b"")],  # a key differs
])
def test_any_difference_changes_the_hash(other):
    assert content_hash(PAIRS, b"/a")[1] != content_hash(other, b"/a")[1]


def test_pairs_are_length_prefixed():
    assert content_hash([(b"ab", b"c")])[1] != content_hash([(b"a", b"bc")])[1]


def test_count():
    assert content_hash(PAIRS)[0] == 3 and content_hash([])[0] == 0


def test_keys_must_be_under_the_prefix():
    with pytest.raises(ValueError, match="not under the prefix"):
        ContentHasher(b"/b").update(b"/a/1", b"x")


def test_keys_must_come_in_order():
    hasher = ContentHasher()
    hasher.update(b"b", b"")
    with pytest.raises(ValueError, match="increasing"):
        hasher.update(b"a", b"")

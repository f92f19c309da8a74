# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""etcd_mirror's pure parts: settings, key mapping, range overlap, revision bump arithmetic, lease fallbacks."""
from __future__ import annotations

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.batching import Write
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import EtcdError
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.mirror import (
    EtcdMirrorBackend, MirrorSettings, _read_ahead, bump_plan, ranges_overlap, settings_from_params)


@pytest.mark.parametrize("params, source_key, dest_key", [
    ({"prefix": "/registry/"}, b"/registry/pods/a", b"/registry/pods/a"),
    ({"prefix": "/registry/", "dest_prefix": "/copy/"}, b"/registry/pods/a", b"/copy/pods/a"),
    ({"prefix": "/registry/", "strip_prefix": True}, b"/registry/pods/a", b"pods/a"),
    ({"prefix": "", "dest_prefix": "/backup"}, b"/x", b"/backup/x"),
    ({}, b"k", b"k"),
])
def test_dest_key(params, source_key, dest_key):
    assert settings_from_params(params).dest_key(source_key) == dest_key


def test_settings_defaults_match_the_module_defaults():
    settings = settings_from_params({"prefix": "", "revision_margin": 0})
    assert settings.max_txn_ops == 128 and settings.max_request_bytes == 1572864 and settings.verify
    assert settings.revision_margin == 0 and settings.revision_bump_limit == 100000


@pytest.mark.parametrize("name", ["page_size", "max_txn_ops", "max_request_bytes"])
def test_settings_refuse_non_positive_sizes(name):
    with pytest.raises(EtcdError, match=name):
        settings_from_params({name: 0})


@pytest.mark.parametrize("first, second, overlap", [
    ((b"/a/", b"/a0"), (b"/b/", b"/b0"), False),
    ((b"/a/", b"/a0"), (b"/a/x/", b"/a/x0"), True),
    ((b"\0", b"\0"), (b"/b/", b"/b0"), True),   # the whole keyspace overlaps everything
    ((b"/a", b"/b"), (b"/b", b"/c"), False),    # range ends are exclusive
    ((b"/z", b"\0"), (b"/a/", b"/a0"), False),  # "every key >= /z"
    ((b"/z", b"\0"), (b"/zz", b"/zzz"), True),
])
def test_ranges_overlap(first, second, overlap):
    assert ranges_overlap(first, second) == overlap
    assert ranges_overlap(second, first) == overlap  # symmetric


@pytest.mark.parametrize("source, dest, margin, puts", [
    (100, 10, 0, 91), (100, 10, 5, 96), (100, 101, 0, 0), (100, 100, 0, 1), (5, 1000, 1000, 6), (5, 2000, 1000, 0),
])
def test_bump_plan(source, dest, margin, puts):
    assert bump_plan(source, dest, margin) == puts
    assert dest + puts > source + margin or puts == 0


class LeaseDest:
    """A destination whose first txn fails because a lease ran out."""

    def __init__(self):
        self.txns = []

    def txn(self, ops):
        self.txns.append(ops)
        if len(self.txns) == 1:
            raise EtcdError("etcdserver: requested lease not found", code=5, status=404)
        return True, 10

    def lease_time_to_live(self, lease_id):
        return (-1, 0) if lease_id == 70 else (30, 60)


def test_writes_whose_destination_lease_expired_are_kept_without_it():
    dest = LeaseDest()
    mirror = EtcdMirrorBackend(source=None, dest=dest, settings=MirrorSettings(prefix=b"/p/", dest_prefix=b"/p/"))
    mirror.leases = {7: 70, 8: 80}
    mirror._apply([Write(b"/p/a", b"1", 70), Write(b"/p/b", b"2", 80)])
    assert len(dest.txns) == 2
    retried = dest.txns[1]
    assert "lease" not in retried[0]["request_put"] and retried[1]["request_put"]["lease"] == "80"
    assert mirror.leases == {7: 0, 8: 80}


def test_other_write_errors_are_raised():
    class Refusing:
        def txn(self, ops):
            raise EtcdError("etcdserver: request is too large", code=3)
    mirror = EtcdMirrorBackend(source=None, dest=Refusing(), settings=MirrorSettings())
    with pytest.raises(EtcdError, match="too large"):
        mirror._apply([Write(b"a", b"1")])


class Pages:
    """A client whose clones yield pages, or fail after some."""

    def __init__(self, pages, fail_after=None):
        self.pages, self.fail_after, self.closed = pages, fail_after, 0

    def clone(self):
        return self

    def close(self):
        self.closed += 1

    def read(self, reader):
        for index, page in enumerate(self.pages):
            if index == self.fail_after:
                raise EtcdError("etcdserver: mvcc: required revision has been compacted", code=11)
            yield page


def test_read_ahead_yields_every_page_in_order():
    client = Pages(list(range(20)))
    assert list(_read_ahead(client, client.read)) == list(range(20)) and client.closed == 1


def test_read_ahead_hands_over_the_readers_error():
    client = Pages(list(range(20)), fail_after=5)
    seen = []
    with pytest.raises(EtcdError, match="compacted"):
        for page in _read_ahead(client, client.read):
            seen.append(page)
    assert seen == [0, 1, 2, 3, 4]


def test_read_ahead_stops_the_reader_when_the_consumer_fails():
    client = Pages(list(range(1000)))
    with pytest.raises(RuntimeError):
        for page in _read_ahead(client, client.read, depth=1):
            if page == 2:
                raise RuntimeError("the destination refused a write")
    assert client.closed == 1  # the reader thread ended (joined) instead of blocking on a full queue


@pytest.mark.parametrize("outcomes, attempts, equal, caught_up", [
    ([True], 1, True, 10),
    ([False, True], 2, True, 11),          # a leased key expired between revision 10 and the read: caught up again
    ([False, False, False], 3, False, 12),  # still different after three comparisons: reported as such
])
def test_verification_catches_up_again_when_different(outcomes, attempts, equal, caught_up):
    mirror = EtcdMirrorBackend(source=None, dest=None, settings=MirrorSettings())
    results = iter(outcomes)
    followed = []
    mirror.verify = lambda revision: {"equal": next(results), "source_revision": revision}

    def follow(revision, follow_seconds=None):
        followed.append((revision, follow_seconds))
        return revision + 1, 5
    mirror.follow = follow
    verification, revision, events = mirror.verify_caught_up(10)
    assert (verification["attempts"], verification["equal"], revision) == (attempts, equal, caught_up)
    assert followed == [(10 + i, 0) for i in range(attempts - 1)] and events == 5 * (attempts - 1)

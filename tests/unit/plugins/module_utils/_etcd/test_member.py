# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""etcd_member's backend: quorum arithmetic, finding the member, and each state on a fake member list."""
from __future__ import annotations

import pytest
from fake_clock import Clock  # pylint: disable=import-error  # tests/unit/plugins/module_utils

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.client import Member
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import EtcdError
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.member import (
    EtcdMemberBackend, find_member, parse_member_id, quorum, quorum_problem)


@pytest.mark.parametrize("voters, needed", [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (7, 4)])
def test_quorum(voters, needed):
    assert quorum(voters) == needed


@pytest.mark.parametrize("change, voters, running, target_running, refused", [
    ("add", 1, 1, False, True),      # 1 -> 2 voters needs 2 running: the new one has not started
    ("add", 2, 2, False, False),     # 2 -> 3 needs 2
    ("add", 3, 2, False, True),      # 3 -> 4 needs 3, only 2 run
    ("add", 3, 3, False, False),
    ("remove", 1, 1, True, True),    # the last voter
    ("remove", 3, 3, True, False),   # 2 left, 2 running
    ("remove", 3, 2, True, True),    # 2 left, 1 running: needs 2
    ("remove", 3, 2, False, False),  # removing the stopped one: 2 left, 2 running
    ("remove", 2, 1, False, False),  # 2 voters, one dead: removing the dead one leaves 1 of 1
    ("remove", 5, 3, True, True),    # 4 left need 3, only 2 run
])
def test_quorum_problem(change, voters, running, target_running, refused):
    assert (quorum_problem(change, voters, running, target_running) is not None) == refused


def test_quorum_problem_knows_only_add_and_remove():
    with pytest.raises(ValueError):
        quorum_problem("promote", 1, 1)


def test_quorum_problem_says_why():
    assert quorum_problem("add", 1, 1) == "the cluster would have 2 voting members, which need 2 running for quorum, but only 1 would be running"
    assert quorum_problem("remove", 1, 1, True) == "it is the last voting member"


@pytest.mark.parametrize("text, expected", [("8e9e05c52164694d", 0x8e9e05c52164694d), ("0x1F", 31), (42, 42), (None, None), ("", None)])
def test_parse_member_id(text, expected):
    assert parse_member_id(text) == expected


def test_parse_member_id_refuses_decimal_garbage():
    with pytest.raises(EtcdError, match="hexadecimal"):
        parse_member_id("m1")


M0 = Member(1, "m0", ["https://a:2380"], ["https://a:2379"], False)
M1 = Member(2, "m1", ["https://b:2380"], ["https://b:2379"], False)
NEW = Member(3, "", ["https://c:2380"], [], True)  # added, never started


@pytest.mark.parametrize("kwargs, found", [
    ({"name": "m1"}, M1),
    ({"peer_urls": ["https://c:2380"]}, NEW),
    ({"name": "m2", "peer_urls": ["https://c:2380"]}, NEW),  # found by URL before it has a name
    ({"member_id": 2}, M1),
    ({"name": "nope"}, None),
    ({"peer_urls": ["https://z:2380"], "name": "z"}, None),
    ({}, None),
])
def test_find_member(kwargs, found):
    assert find_member([M0, M1, NEW], **kwargs) == found


@pytest.mark.parametrize("kwargs, fragment", [
    ({"name": "m0", "peer_urls": ["https://b:2380"]}, "belong to member 'm1'"),
    ({"name": "m0", "peer_urls": ["https://z:2380"]}, "exists with peer URLs"),
])
def test_find_member_conflicts(kwargs, fragment):
    with pytest.raises(EtcdError, match=fragment):
        find_member([M0, M1, NEW], **kwargs)


class FakeCluster:
    """A member list that member add/remove/promote change; promote fails while not in sync."""

    def __init__(self, members, leader=1, in_sync_after=0, revisions=(7,), status_revision=5):
        self.members = list(members)
        self.leader = leader
        self.revisions = list(revisions)  # the member list headers' revisions, one per call (the last one stays)
        self.status_revision = status_revision
        self.in_sync_after = in_sync_after  # promote attempts refused before success
        self.calls = []
        self.next_id = 100

    def member_list_with_revision(self, linearizable=True):
        revision = self.revisions.pop(0) if len(self.revisions) > 1 else self.revisions[0]
        return list(self.members), 0xabc, revision

    def status(self):
        return {"leader": self.leader, "revision": self.status_revision}

    def member_add(self, peer_urls, is_learner):
        self.calls.append(("add", tuple(peer_urls), is_learner))
        member = Member(self.next_id, "", list(peer_urls), [], is_learner)
        self.members.append(member)
        return member

    def member_remove(self, member_id):
        self.calls.append(("remove", member_id))
        self.members = [m for m in self.members if m.id != member_id]

    def member_promote(self, member_id):
        self.calls.append(("promote", member_id))
        if self.in_sync_after > 0:
            self.in_sync_after -= 1
            raise EtcdError("etcdserver: can only promote a learner member which is in sync with leader", code=9, status=400)
        self.members = [Member(m.id, m.name, m.peer_urls, m.client_urls, False) if m.id == member_id else m for m in self.members]


def backend(cluster, params, running=None, clock=None):
    clock = clock or Clock()
    running = {m.id for m in cluster.members if m.name} if running is None else running
    return EtcdMemberBackend(cluster, params, sleep=clock.sleep, clock=clock, probe=lambda m: m.id in running)


def test_list():
    cluster = FakeCluster([M0, M1])
    result = backend(cluster, {}).run()
    assert not result["changed"] and [m["name"] for m in result["members"]] == ["m0", "m1"]
    assert result["leader"]["name"] == "m0" and result["cluster_id"] == "abc" and result["member"] is None and cluster.calls == []


def test_add_learner_then_idempotent():
    cluster = FakeCluster([M0])
    params = {"state": "present", "name": "m1", "peer_urls": ["https://b:2380"], "learner": True}
    first = backend(cluster, params).run()
    assert first["changed"] and cluster.calls == [("add", ("https://b:2380",), True)]
    assert first["member"]["is_learner"] and first["member"]["id"] == format(100, "x")
    assert len(first["diff"]["after"]["members"]) == 2 and len(first["diff"]["before"]["members"]) == 1
    again = backend(cluster, params).run()
    assert not again["changed"] and len(cluster.calls) == 1


def test_add_in_check_mode_changes_nothing():
    cluster = FakeCluster([M0])
    result = backend(cluster, {"state": "present", "name": "m1", "peer_urls": ["https://b:2380"]}).run(check_mode=True)
    assert result["changed"] and cluster.calls == [] and len(result["members"]) == 2 and result["member"]["is_learner"]


def test_adding_a_voter_to_one_member_is_refused():
    cluster = FakeCluster([M0])
    with pytest.raises(EtcdError, match="refusing to add .* need 2 running .* as a learner"):
        backend(cluster, {"state": "present", "name": "m1", "peer_urls": ["https://b:2380"], "learner": False}).run(check_mode=True)
    assert cluster.calls == []


def test_adding_a_voter_to_two_running_members_is_allowed():
    cluster = FakeCluster([M0, M1])
    result = backend(cluster, {"state": "present", "name": "m2", "peer_urls": ["https://c:2380"], "learner": False}).run()
    assert result["changed"] and cluster.calls == [("add", ("https://c:2380",), False)] and not result["member"]["is_learner"]


def test_add_that_etcd_answers_as_a_voter_fails():
    cluster = FakeCluster([M0])
    cluster.member_add = lambda peer_urls, is_learner: Member(9, "", peer_urls, [], False)
    with pytest.raises(EtcdError, match="is_learner=False"):
        backend(cluster, {"state": "present", "peer_urls": ["https://b:2380"]}).run()


def test_promote_retries_with_backoff_until_in_sync():
    learner = Member(5, "m1", ["https://b:2380"], ["https://b:2379"], True)
    cluster = FakeCluster([M0, learner], in_sync_after=3)
    clock = Clock()
    result = backend(cluster, {"state": "present", "name": "m1", "peer_urls": ["https://b:2380"], "promote": True, "promote_timeout": 60},
                     running={1, 5}, clock=clock).run()
    assert result["changed"] and not result["member"]["is_learner"]
    assert clock.sleeps == [0.5, 1.0, 2.0] and [c[0] for c in cluster.calls] == ["promote"] * 4


def test_promote_gives_up_with_advice():
    learner = Member(5, "", ["https://b:2380"], [], True)
    cluster = FakeCluster([M0, learner], in_sync_after=1000)
    clock = Clock()
    with pytest.raises(EtcdError, match=r"not promoted within 10s: etcdserver: can only promote .* start it"):
        backend(cluster, {"state": "present", "peer_urls": ["https://b:2380"], "promote": True, "promote_timeout": 10},
                running={1, 5}, clock=clock).run()
    assert clock.now == 10 and clock.sleeps == [0.5, 1.0, 2.0, 4.0, 2.5]


def test_other_promote_errors_are_not_retried():
    learner = Member(5, "m1", ["https://b:2380"], ["https://b:2379"], True)
    cluster = FakeCluster([M0, learner])

    def refuse(member_id):
        cluster.calls.append(("promote", member_id))
        raise EtcdError("etcdserver: member not found", code=5)
    cluster.member_promote = refuse
    with pytest.raises(EtcdError, match="member not found"):
        backend(cluster, {"state": "present", "name": "m1", "promote": True}, running={1, 5}).run()
    assert len(cluster.calls) == 1


def test_remove_refused_when_it_breaks_quorum():
    m2 = Member(3, "m2", ["https://c:2380"], ["https://c:2379"], False)
    cluster = FakeCluster([M0, M1, m2])
    with pytest.raises(EtcdError, match="refusing to remove 'm0'"):
        backend(cluster, {"state": "absent", "name": "m0"}, running={1, 2}).run()
    assert cluster.calls == []


def test_remove_a_stopped_member_and_then_idempotent():
    m2 = Member(3, "m2", ["https://c:2380"], ["https://c:2379"], False)
    cluster = FakeCluster([M0, M1, m2])
    result = backend(cluster, {"state": "absent", "name": "m2"}, running={1, 2}).run()
    assert result["changed"] and cluster.calls == [("remove", 3)] and [m["name"] for m in result["members"]] == ["m0", "m1"]
    assert not backend(cluster, {"state": "absent", "name": "m2"}).run()["changed"]


def test_remove_learner_always_allowed_and_check_mode():
    cluster = FakeCluster([M0, NEW])
    result = backend(cluster, {"state": "absent", "peer_urls": ["https://c:2380"]}).run(check_mode=True)
    assert result["changed"] and cluster.calls == [] and [m["id"] for m in result["members"]] == ["1"]
    assert backend(cluster, {"state": "absent", "id": "3"}).run()["changed"] and cluster.calls == [("remove", 3)]


def test_present_without_peer_urls_cannot_add():
    with pytest.raises(EtcdError, match="peer_urls are needed"):
        backend(FakeCluster([M0]), {"state": "present", "name": "m9"}).run()


def test_remove_waits_out_etcds_health_interval():
    m2 = Member(3, "m2", ["https://c:2380"], ["https://c:2379"], False)
    cluster = FakeCluster([M0, M1, m2])
    refusals = [EtcdError("etcdserver: unhealthy cluster", code=14, status=503)] * 2
    remove = cluster.member_remove

    def flaky_remove(member_id):
        if refusals:
            raise refusals.pop()
        remove(member_id)
    cluster.member_remove = flaky_remove
    clock = Clock()
    result = backend(cluster, {"state": "absent", "name": "m2"}, clock=clock).run()
    assert result["changed"] and clock.sleeps == [0.5, 1.0] and [m.name for m in cluster.members] == ["m0", "m1"]


def test_remove_gives_up_when_etcd_stays_unhealthy():
    cluster = FakeCluster([M0, M1, Member(3, "m2", ["https://c:2380"], ["https://c:2379"], False)])

    def refuse(member_id):
        raise EtcdError("etcdserver: unhealthy cluster", code=14, status=503)
    cluster.member_remove = refuse
    clock = Clock()
    with pytest.raises(EtcdError, match=r"etcd refused to remove 'm2' for 10s: etcdserver: unhealthy cluster"):
        backend(cluster, {"state": "absent", "name": "m2"}, clock=clock).run()
    assert clock.now == 10


@pytest.mark.parametrize("revisions, status_revision, expected", [
    ((7,), 5, 7),    # the member list's header
    ((0,), 9, 9),    # an etcd that leaves it out there: the status's
    ((0,), 0, 0),
])
def test_read_returns_the_revision(revisions, status_revision, expected):
    cluster = FakeCluster([M0, M1], revisions=revisions, status_revision=status_revision)
    assert backend(cluster, {}).run()["revision"] == expected


def test_revision_is_read_after_the_change():
    cluster = FakeCluster([M0, M1], revisions=(7, 8))
    result = backend(cluster, {"state": "present", "name": "m2", "peer_urls": ["https://c:2380"]}).run()
    assert result["changed"] and result["revision"] == 8


def test_revision_in_check_mode_is_the_one_read():
    cluster = FakeCluster([M0, M1], revisions=(7, 8))
    result = backend(cluster, {"state": "present", "name": "m2", "peer_urls": ["https://c:2380"]}).run(check_mode=True)
    assert result["changed"] and result["revision"] == 7 and cluster.calls == []


@pytest.mark.parametrize("applied", [True, False], ids=["applied-by-the-new-leader", "dropped"])
def test_remove_through_a_leader_change_checks_the_member_list(applied):
    """Removing the leader hands leadership over: its client can get "leader changed" whether or not the
    removal was applied. Applied: done, without a second removal; dropped: removed on the next try."""
    m2 = Member(3, "m2", ["https://c:2380"], ["https://c:2379"], False)
    cluster = FakeCluster([M0, M1, m2], leader=3)
    remove = cluster.member_remove
    tries = []

    def remove_during_an_election(member_id):
        tries.append(member_id)
        if len(tries) == 1:
            if applied:
                remove(member_id)
            raise EtcdError("etcdserver: leader changed", code=14, status=503)
        remove(member_id)
    cluster.member_remove = remove_during_an_election
    clock = Clock()
    result = backend(cluster, {"state": "absent", "name": "m2"}, clock=clock).run()
    assert result["changed"] and [m.name for m in cluster.members] == ["m0", "m1"]
    assert tries == ([3] if applied else [3, 3]) and clock.sleeps == ([] if applied else [0.5])


def test_the_member_list_after_a_removal_waits_out_the_election_it_started():
    m2 = Member(3, "m2", ["https://c:2380"], ["https://c:2379"], False)
    cluster = FakeCluster([M0, M1, m2], leader=3)
    read = cluster.member_list_with_revision
    answers = [EtcdError("etcdserver: no leader", code=14, status=503)]

    def list_during_an_election(linearizable=True):
        if cluster.calls and answers:  # the first read after the removal
            raise answers.pop()
        return read(linearizable)
    cluster.member_list_with_revision = list_during_an_election
    clock = Clock()
    result = backend(cluster, {"state": "absent", "name": "m2"}, clock=clock).run()
    assert result["changed"] and [m["name"] for m in result["members"]] == ["m0", "m1"] and clock.sleeps == [0.5]


def test_promote_learners_promotes_only_the_learners_named():
    left = Member(5, "m1", ["https://b:2380"], ["https://b:2379"], True)
    added = Member(6, "m2", ["https://c:2380"], ["https://c:2379"], True)  # not named: a host still joining
    cluster = FakeCluster([M0, left, added], in_sync_after=1)
    clock = Clock()
    params = {"promote_learners": ["m0", "m1"], "promote_timeout": 60}
    checked = backend(cluster, params, running={1, 5, 6}, clock=clock).run(check_mode=True)
    assert checked["changed"] and cluster.calls == [] and ("m1", False) in [(m["name"], m["is_learner"]) for m in checked["members"]]
    result = backend(cluster, params, running={1, 5, 6}, clock=clock).run()
    assert result["changed"] and cluster.calls == [("promote", 5), ("promote", 5)] and clock.sleeps == [0.5]
    assert [(m["name"], m["is_learner"]) for m in result["members"]] == [("m0", False), ("m1", False), ("m2", True)]
    again = backend(cluster, params, running={1, 5, 6}).run()
    assert not again["changed"] and len(cluster.calls) == 2


class LearnerEndpoint(FakeCluster):
    """The endpoint answering first is a learner: membership calls are refused there; for_endpoints reaches the others."""

    def __init__(self, members, learner_urls):
        super().__init__(members)
        self.learner_urls = set(learner_urls)
        self.opened, self.closed = [], []

    def member_list_with_revision(self, linearizable=True):
        raise EtcdError("etcdserver: rpc not supported for learner", code=9)

    def for_endpoints(self, endpoints, connect_retry=None):
        (endpoint,) = endpoints
        self.opened.append(endpoint)
        outer = self

        class One(FakeCluster):
            def status(self):
                return {"leader": 1, "revision": 5, "is_learner": endpoint in outer.learner_urls}

            def close(self):
                outer.closed.append(endpoint)

        one = One([])
        one.members = outer.members  # the same cluster, seen from another member
        one.calls = outer.calls
        return one


def test_a_learner_endpoint_hands_over_to_the_first_voting_member():
    learner = Member(5, "m1", ["https://b:2380"], ["https://b:2379"], True)
    cluster = LearnerEndpoint([M0, learner], learner_urls=["https://b:2379"])
    params = {"endpoints": ["https://b:2379", "https://a:2379"], "promote_learners": ["m1"]}
    result = backend(cluster, params, running={1, 5}).run()
    assert result["changed"] and cluster.calls == [("promote", 5)]
    assert cluster.opened == ["https://b:2379", "https://a:2379"] and cluster.closed == ["https://b:2379", "https://a:2379"]


def test_only_learner_endpoints_keep_etcds_refusal():
    learner = Member(5, "m1", ["https://b:2380"], ["https://b:2379"], True)
    cluster = LearnerEndpoint([M0, learner], learner_urls=["https://b:2379"])
    with pytest.raises(EtcdError, match="not supported for learner"):
        backend(cluster, {"endpoints": ["https://b:2379"]}).run()

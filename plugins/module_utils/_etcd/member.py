# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""etcd_member's backend: list, add (as a learner by default), promote, remove; never lose quorum.

Quorum rules (etcd's own, checked here first so that check mode predicts them and the message
says what to do): a cluster of N voters needs N // 2 + 1 of them running. Adding a voter raises
N before the new member runs; removing a running voter lowers the running count; learners do
not vote, so adding or removing one never costs quorum. A member counts as running when it has
published its name (it started once) and answers a status call on its client URLs now.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.client import EtcdClient, Member
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import INVALID_ARGUMENT, EtcdError

NOT_IN_SYNC = "in sync with leader"
UNHEALTHY = "unhealthy cluster"
# A leader election while a change was proposed: the new leader may or may not have applied it.
LEADER_CHANGED = "leader changed"
NO_LEADER = "no leader"
# A learner serves only Status and serializable reads (a run that stopped before promoting one).
LEARNER_ENDPOINT = "not supported for learner"
# etcd counts a member as healthy once its peer connection is 5 s old (HealthInterval); wait a bit longer.
RECONFIG_RETRY_SECONDS = 10.0


def quorum(voters: int) -> int:
    return voters // 2 + 1


def quorum_problem(change: str, voters: int, running_voters: int, target_running: bool = False) -> str | None:
    """Why change ("add" or "remove" of a voter) would leave the cluster without quorum, or None.

    voters and running_voters describe the cluster before the change; target_running tells
    whether the member removed is running. (A promotion needs no such check: etcd promotes only
    a learner that runs and is in sync with the leader.)
    """
    if change == "add":
        after, running_after = voters + 1, running_voters
    elif change == "remove":
        if voters <= 1:
            return "it is the last voting member"
        after, running_after = voters - 1, running_voters - (1 if target_running else 0)
    else:
        raise ValueError(f"unknown change {change!r}")
    if running_after >= quorum(after):
        return None
    return (f"the cluster would have {after} voting members, which need {quorum(after)} running for quorum, "
            f"but only {running_after} would be running")


def parse_member_id(text: str | int | None) -> int | None:
    """A member ID as etcdctl prints it (hexadecimal), or an int."""
    if text is None or text == "":
        return None
    if isinstance(text, int):
        return text
    digits = str(text).lower()
    try:
        return int(digits[2:] if digits.startswith("0x") else digits, 16)
    except ValueError as exc:
        raise EtcdError(f"member id {text!r} is not hexadecimal (as etcdctl member list prints it)", code=INVALID_ARGUMENT) from exc


def find_member(members: list, name: str | None = None, peer_urls: list | None = None, member_id: int | None = None) -> Member | None:
    """The member asked for: by id, else by any of its peer URLs, else by name.

    An added member that has not started yet has no name: the peer URLs find it. A member
    whose name matches but whose peer URLs do not is a conflict the operator must resolve.
    """
    if member_id is not None:
        return next((m for m in members if m.id == member_id), None)
    if peer_urls:
        wanted = set(peer_urls)
        by_url = [m for m in members if wanted & set(m.peer_urls)]
        if len(by_url) > 1:
            raise EtcdError(f"peer URLs {sorted(wanted)} match several members: {[m.as_dict() for m in by_url]}",
                            code=INVALID_ARGUMENT)
        if by_url:
            found = by_url[0]
            if name and found.name and found.name != name:
                raise EtcdError(f"peer URLs {sorted(wanted)} belong to member {found.name!r}, not {name!r}", code=INVALID_ARGUMENT)
            return found
    if name:
        found = next((m for m in members if m.name == name), None)
        if found is not None and peer_urls:
            raise EtcdError(f"member {name!r} exists with peer URLs {found.peer_urls}, not {list(peer_urls)}: remove it first "
                            "(state=absent) to replace it", code=INVALID_ARGUMENT)
        return found
    return None


def describe(members: list) -> list:
    return [m.as_dict() for m in sorted(members, key=lambda m: (m.name, m.id))]


class EtcdMemberBackend:
    """Reads the member list, decides, and changes the membership only when needed (not in check mode)."""

    def __init__(self, client: EtcdClient, params: dict, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, probe: Callable[[Member], bool] | None = None) -> None:
        self.client = client
        self.params = params
        self.sleep = sleep
        self.clock = clock
        self.probe = probe or self._probe

    def _probe(self, member: Member) -> bool:
        if not member.started or not member.client_urls:
            return False
        other = self.client.for_endpoints(member.client_urls, connect_retry=0)  # refused: not running
        try:
            other.status()
            return True
        except EtcdError:
            return False
        finally:
            other.close()

    def _running_voters(self, members: list) -> set:
        return {m.id for m in members if not m.is_learner and self.probe(m)}

    def _refuse_without_quorum(self, change: str, members: list, target: Member | None, label: str) -> None:
        voters = [m for m in members if not m.is_learner]
        running = self._running_voters(members)
        problem = quorum_problem(change, len(voters), len(running), target is not None and target.id in running)
        if problem:
            advice = {"add": " Add it as a learner (learner: true) and promote it once it runs.",
                      "remove": " Start the stopped members first, or replace the member instead of removing it."}[change]
            raise EtcdError(f"refusing to {change} {label}: {problem}.{advice}", code=INVALID_ARGUMENT)

    def _retry(self, action: Callable[[], None], retry_on: tuple, timeout: float, failure: str) -> None:
        """Run action, retrying with backoff (0.5 s doubling to 5 s) while etcd's error contains one of retry_on."""
        deadline = self.clock() + timeout
        delay = 0.5
        while True:
            try:
                action()
                return
            except EtcdError as exc:
                if not any(exc.has(text) for text in retry_on):
                    raise
                remaining = deadline - self.clock()
                if remaining <= 0:
                    raise EtcdError(failure.format(timeout=timeout, error=exc.message), code=exc.code, endpoint=exc.endpoint) from exc
            self.sleep(min(delay, remaining))  # the last try comes at the deadline
            delay = min(delay * 2, 5.0)

    def _promote(self, member: Member, label: str) -> None:
        self._retry(lambda: self.client.member_promote(member.id), (NOT_IN_SYNC,), float(self.params.get("promote_timeout") or 0),
                    f"learner {label} was not promoted within {{timeout:g}}s: {{error}}. etcd promotes a learner only once its log is "
                    "in sync with the leader: start it (with --initial-cluster-state=existing) and let it catch up")

    def _reconfigure(self, action: Callable[[], None], what: str, retry_on: tuple = (UNHEALTHY,)) -> None:
        """etcd refuses a change while a member's peer connection is younger than 5 s ("unhealthy cluster"): wait that out."""
        self._retry(action, retry_on, RECONFIG_RETRY_SECONDS,
                    f"etcd refused to {what} for {{timeout:g}}s: {{error}} (a member is down or has just (re)started)")

    def _remove(self, member: Member, label: str) -> None:
        """Remove member; after a leader change the removal is done once the member list lacks it, else tried again.
        (Removing the leader itself hands leadership over, which its client can see as a leader change.)"""
        def remove() -> None:
            try:
                self.client.member_remove(member.id)
            except EtcdError as exc:
                if exc.has(LEADER_CHANGED) and all(m.id != member.id for m in self.client.member_list_with_revision()[0]):
                    return
                raise
        self._reconfigure(remove, f"remove {label}", retry_on=(UNHEALTHY, LEADER_CHANGED))

    def _read_after_change(self) -> tuple:
        """The member list once the change is applied; a leader election it started is waited out."""
        read = []
        self._retry(lambda: read.append(self.client.member_list_with_revision()), (LEADER_CHANGED, NO_LEADER),
                    RECONFIG_RETRY_SECONDS, "etcd did not list its members for {timeout:g}s after the change: {error}")
        return read[-1]

    def _leader_and_revision(self, members: list, revision: int) -> tuple[dict | None, int]:
        """The leader the answering member sees, and its store revision: revision (the member list's header), else the
        status's (an etcd that leaves it out of the member list's header)."""
        status = self.client.status()
        leader = next((m for m in members if m.id == status["leader"]), None)
        return (leader.as_dict() if leader else None), revision or status["revision"]

    def _list_from_a_voter(self) -> tuple:
        """The member list; when the endpoint that answered is a learner, from the first voting member among the
        endpoints, which then answers every later call of this run."""
        try:
            return self.client.member_list_with_revision()
        except EtcdError as exc:
            if not exc.has(LEARNER_ENDPOINT):
                raise
            refused = exc
        for endpoint in self.params.get("endpoints") or []:
            other = self.client.for_endpoints([endpoint], connect_retry=0)
            try:
                if not other.status()["is_learner"]:
                    listed = other.member_list_with_revision()
                    self._voter, self.client = other, other
                    return listed
            except EtcdError:
                pass
            other.close()
        raise refused

    def run(self, check_mode: bool = False) -> dict:
        self._voter = None
        try:
            return self._run(check_mode)
        finally:
            if self._voter is not None:
                self._voter.close()

    def _run(self, check_mode: bool) -> dict:
        p = self.params
        state = p.get("state")  # None: only read (and with promote_learners, promote those learners)
        members, cluster_id, revision = self._list_from_a_voter()
        before = describe(members)
        peer_urls = list(p.get("peer_urls") or [])
        name = p.get("name")
        target = None
        if state is not None:
            target = find_member(members, name=name, peer_urls=peer_urls, member_id=parse_member_id(p.get("id")))
        label = repr(name or (target.name if target else "") or ",".join(peer_urls) or p.get("id"))
        changed = False
        if state == "present":
            want_voter = bool(p.get("promote")) or not p.get("learner", True)
            if target is None:
                if not peer_urls:
                    raise EtcdError(f"member {label} does not exist: peer_urls are needed to add it", code=INVALID_ARGUMENT)
                as_learner = bool(p.get("learner", True))
                if not as_learner:
                    self._refuse_without_quorum("add", members, None, label)
                changed = True
                if check_mode:
                    target = Member(id=0, name=name or "", peer_urls=peer_urls, client_urls=[], is_learner=as_learner)
                else:
                    added = []
                    self._reconfigure(lambda: added.append(self.client.member_add(peer_urls, is_learner=as_learner)), f"add {label}")
                    target = added[0]
                    if target.is_learner != as_learner:
                        raise EtcdError(f"etcd added {label} with is_learner={target.is_learner}, not {as_learner}", result={"changed": True})
            if target.is_learner and want_voter:
                changed = True
                if not check_mode:
                    self._promote(target, label)
                target = Member(target.id, target.name, target.peer_urls, target.client_urls, is_learner=False)
        elif state == "absent" and target is not None:
            if not target.is_learner:
                self._refuse_without_quorum("remove", members, target, label)
            changed = True
            if not check_mode:
                self._remove(target, label)
        promoted = [m for m in members if state is None and m.is_learner and m.name and m.name in (p.get("promote_learners") or [])]
        for learner in promoted:
            changed = True
            if not check_mode:
                self._promote(learner, repr(learner.name))
        if not changed:
            after = before
        elif not check_mode:
            members, cluster_id, revision = self._read_after_change()
            after = describe(members)
        elif promoted:
            after = describe([Member(m.id, m.name, m.peer_urls, m.client_urls, is_learner=False) if m in promoted else m for m in members])
        else:  # what the change would give
            others = [m for m in members if target is None or m.id != target.id]
            after = describe(others + ([target] if state == "present" else []))
        member = None
        if target is not None:
            member = next((m for m in after if m["id"] == format(target.id, "x")), None) if state == "present" else None
            member = member or target.as_dict()
        leader, revision = self._leader_and_revision(members, revision)
        return {
            "changed": changed,
            "members": after,
            "member": member,
            "leader": leader,
            "cluster_id": format(cluster_id, "x"),
            "revision": revision,
            "diff": {"before": {"members": before}, "after": {"members": after}},
        }

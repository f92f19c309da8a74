# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""etcd_member's backend against real clusters: grow by a learner, promote, quorum refusals, remove."""
from __future__ import annotations

import time

import pytest
import yaml

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import EtcdError
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.member import EtcdMemberBackend
from ansible_collections.kubeforge.cluster.plugins.modules import etcd_member

pytestmark = pytest.mark.integration


def run(client, check_mode=False, **params):
    return EtcdMemberBackend(client, params).run(check_mode=check_mode)


def names(result):
    return sorted((m["name"], m["is_learner"]) for m in result["members"])


def test_grow_by_a_learner_promote_and_remove(clusters, connect):
    cluster = clusters(size=1)
    client = connect(cluster)
    listed = run(client)
    assert names(listed) == [("m0", False)] and listed["leader"]["name"] == "m0" and not listed["changed"]

    new = cluster.new_member("m1")
    add = {"state": "present", "name": "m1", "peer_urls": [new.peer_url]}
    assert run(client, check_mode=True, **add)["changed"] and len(run(client)["members"]) == 1
    added = run(client, **add)
    assert added["changed"] and added["member"]["is_learner"] and added["member"]["name"] == ""
    # every key documented (lock_holder comes only with a failure)
    assert set(added) - {"changed", "diff"} == set(yaml.safe_load(etcd_member.RETURN)) - {"lock_holder"}
    assert not run(client, **add)["changed"]  # found by its peer URL before it has a name

    # A learner that never started is never in sync: the promotion fails cleanly, after retrying.
    started = time.monotonic()
    with pytest.raises(EtcdError, match=r"not promoted within 1.5s: etcdserver: can only promote a learner member which is in sync"):
        run(client, promote=True, promote_timeout=1.5, **add)
    assert 1.5 <= time.monotonic() - started < 5
    assert ("", True) in names(run(client))

    cluster.members.append(new)
    cluster.start_member(new, initial_cluster=cluster.initial_cluster(), state="existing")
    promoted = run(client, promote=True, promote_timeout=30, **add)
    assert promoted["changed"] and not promoted["member"]["is_learner"]
    assert names(promoted) == [("m0", False), ("m1", False)]
    assert not run(client, promote=True, **add)["changed"]

    removed = run(client, state="absent", name="m1")
    assert removed["changed"] and names(removed) == [("m0", False)]
    assert not run(client, state="absent", name="m1")["changed"]


def test_adding_a_voter_to_a_single_member_is_refused(clusters, connect):
    cluster = clusters(size=1)
    client = connect(cluster)
    with pytest.raises(EtcdError, match="refusing to add .* which need 2 running"):
        run(client, state="present", name="m1", peer_urls=["https://127.0.0.1:1"], learner=False)
    assert len(run(client)["members"]) == 1


def test_remove_refused_without_quorum_and_allowed_for_the_stopped_member(clusters, connect):
    cluster = clusters(size=3)
    stopped = cluster.members[2]
    cluster.stop_member(stopped)
    client = connect(cluster)
    with pytest.raises(EtcdError, match="refusing to remove 'm1': the cluster would have 2 voting members, which need 2 running"):
        run(client, state="absent", name="m1")
    assert len(run(client)["members"]) == 3
    # etcd itself agrees: its own check refuses the same removal (strict reconfig check)
    member_id = next(m["id"] for m in run(client)["members"] if m["name"] == "m1")
    with pytest.raises(EtcdError, match="etcdserver: unhealthy cluster"):
        client.member_remove(int(member_id, 16))
    removed = run(client, state="absent", name="m2")
    assert removed["changed"] and names(removed) == [("m0", False), ("m1", False)]
    cluster.members.remove(stopped)


def test_membership_calls_on_a_learner_endpoint_fail_clearly(clusters, connect):
    cluster = clusters(size=1)
    client = connect(cluster)
    new = cluster.new_member("m1")
    run(client, state="present", name="m1", peer_urls=[new.peer_url])
    cluster.members.append(new)
    cluster.start_member(new, initial_cluster=cluster.initial_cluster(), state="existing")
    learner_client = connect(cluster, endpoints=[new.client_url])
    with pytest.raises(EtcdError, match="not supported for learner"):
        run(learner_client, state="present", name="m2", peer_urls=["https://127.0.0.1:1"])


def test_promote_learners_answered_by_a_voter_when_a_learner_is_listed_first(clusters, connect):
    cluster = clusters(size=1)
    voter = cluster.members[0]
    client = connect(cluster)
    new = cluster.new_member("m1")
    run(client, state="present", name="m1", peer_urls=[new.peer_url])
    cluster.members.append(new)
    cluster.start_member(new, initial_cluster=cluster.initial_cluster(), state="existing")
    deadline = time.monotonic() + 30
    while ("m1", True) not in names(run(client)) and time.monotonic() < deadline:  # its name, once it published it
        time.sleep(0.2)
    # The role lists every member; here the learner comes first, as a run that stopped may leave it.
    endpoints = [new.client_url, voter.client_url]
    both = connect(cluster, endpoints=endpoints)
    checked = run(both, check_mode=True, endpoints=endpoints, promote_learners=["m0", "m1"])
    assert checked["changed"] and ("m1", True) in names(run(client))
    promoted = run(both, endpoints=endpoints, promote_learners=["m0", "m1"], promote_timeout=30)
    assert promoted["changed"] and names(promoted) == [("m0", False), ("m1", False)]
    assert not run(connect(cluster, endpoints=endpoints), endpoints=endpoints, promote_learners=["m0", "m1"])["changed"]

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""When the etcd role waits for a healthy cluster: the promotion's read of the members is the health check of a
run where no host joins; a bootstrap or a join is followed by tasks/health.yml. The role's own expressions,
templated by Ansible's Templar as a run would."""
from __future__ import annotations

import os

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

pytestmark = pytest.mark.usefixtures("ansible_plugin_loader")
ROLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))), "roles", "etcd")
MEMBERS = ["e1", "e2", "e3"]


def load(*parts: str):
    return DataLoader().load_from_file(os.path.join(ROLE, *parts), cache="none", trusted_as_template=True) or {}


def task(tasks_file: str, name_start: str) -> dict:
    return next(task for task in load("tasks", tasks_file) if task["name"].startswith(name_start))


def holds(condition: str, health: dict, **variables) -> bool:
    variables = {**load("vars", "main.yml"), "etcd_cluster_group": "etcd", "groups": {"etcd": MEMBERS}, "etcd_health": health, **variables}
    return Templar(loader=DataLoader(), variables=variables).evaluate_conditional(condition)


def read(*members, leader=True) -> dict:
    """An etcd_member read: members as (name, is_learner)."""
    found = [{"name": name, "is_learner": learner} for name, learner in members]
    return {"members": found, "leader": found[0] if leader and found else None}


HEALTHY = read(("e1", False), ("e2", False), ("e3", False))


@pytest.mark.parametrize("health, complete", [
    (HEALTHY, True),
    (read(("e1", False), ("e2", False), ("e3", True)), False),  # a learner
    (read(("e1", False), ("e2", False), ("", False)), False),  # added, not started yet
    (read(("e1", False), ("e2", False)), False),  # a member missing
    (read(("e1", False), ("e2", False), ("e3", False), leader=False), False),
])
def test_the_promotion_waits_like_the_health_check_when_no_host_joins(health, complete):
    promote = task("cluster.yml", "Promote the members")
    (check,) = load("tasks", "health.yml")
    assert promote["register"] == check["register"] == "etcd_health"
    assert (promote["retries"], promote["delay"]) == (check["retries"], check["delay"])
    assert holds(check["until"], health) is complete
    assert holds(promote["until"], health, etcd_joining_hosts=[]) is complete
    # Hosts to join: the promotion of the existing members does not wait for them (join.yml adds them).
    assert holds(promote["until"], health, etcd_joining_hosts=["e3"])


@pytest.mark.parametrize("bootstrap, joining, checked", [(True, [], True), (False, ["e3"], True), (False, [], False)])
def test_the_health_check_runs_after_a_bootstrap_or_a_join(bootstrap, joining, checked):
    wait = task("cluster.yml", "Wait for every member and a leader")
    assert wait["ansible.builtin.import_tasks"] == "health.yml"
    assert holds(wait["when"], {}, etcd_bootstrap=bootstrap, etcd_joining_hosts=joining, ansible_check_mode=False) is checked
    # Check mode started and added nothing: waiting for the members would fail.
    assert holds(wait["when"], {}, etcd_bootstrap=bootstrap, etcd_joining_hosts=joining, ansible_check_mode=True) is False
    # A bootstrap skips the promotion: it is then the only wait.
    assert holds(task("cluster.yml", "Promote the members")["when"], {}, etcd_bootstrap=bootstrap) is not bootstrap


@pytest.mark.parametrize("check_mode, client_host", [(False, "e3"), (True, "e1")])
def test_a_join_talks_to_the_members_from_the_new_host_and_in_check_mode_from_one_that_stays(check_mode, client_host):
    # In check mode the pki phase sent the new host no client certificate.
    read = task("join.yml", "Read the members before a host joins")
    variables = {**load("vars", "main.yml"), "etcd_cluster_group": "etcd", "groups": {"etcd": MEMBERS}, "etcd_joining_host": "e3",
                 "etcd_joining_hosts": ["e3"], "ansible_check_mode": check_mode, **read["vars"]}
    templar = Templar(loader=DataLoader(), variables=variables)
    assert templar.template(read["delegate_to"]) == client_host
    for name in ("Remove the old member", "Add a learner", "Promote the learner"):
        assert task("join.yml", name)["delegate_to"] == read["delegate_to"], name
    start = task("join.yml", "Start etcd on the joining host")
    assert start["delegate_to"] == "{{ etcd_joining_host }}" and start["when"] == "not ansible_check_mode"

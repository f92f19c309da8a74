# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Before a member stops on purpose (the handler's rolling restart, reboot.yml, etcd_defrag.yml): the other members
that answer with a leader must make a quorum without it (tasks/quorum_kept.yml), or the run ends for every host, the
message naming the members that do not answer and the caller's setting that accepts the outage. The role's own
expressions, templated by Ansible's Templar as a run would."""
from __future__ import annotations

import os

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

pytestmark = pytest.mark.usefixtures("ansible_plugin_loader")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def load(*parts: str):
    return DataLoader().load_from_file(os.path.join(REPO, *parts), cache="none", trusted_as_template=True) or {}


def templar(members: list[str], **variables) -> Templar:
    return Templar(loader=DataLoader(), variables={**load("roles", "etcd", "defaults", "main.yml"), **load("roles", "etcd", "vars", "main.yml"),
                                                   "etcd_cluster_group": "etcd", "groups": {"etcd": members}, **variables})


def reads(answers: dict) -> dict:
    """quorum_kept.yml's registered reads: {member: its leader's name, or None for one without a leader, or False for one
    that did not answer}."""
    results = []
    for name, leader in answers.items():
        result = {"item": name, "failed": leader is False}
        if leader is not False:
            result["leader"] = {"name": leader} if leader else None
        results.append(result)
    return {"results": results}


@pytest.mark.parametrize("members, answers, kept, not_answering", [
    (["e1", "e2", "e3"], {"e2": "e2", "e3": "e2"}, True, "none"),
    (["e1", "e2", "e3"], {"e2": "e2", "e3": False}, False, "e3"),
    (["e1", "e2", "e3"], {"e2": None, "e3": None}, False, "e2, e3"),  # running, cut off from a leader
    (["e1", "e2", "e3", "e4", "e5"], {"e2": "e2", "e3": "e2", "e4": "e2", "e5": False}, True, "e5"),
    (["e1", "e2", "e3", "e4", "e5"], {"e2": "e2", "e3": False, "e4": False, "e5": "e2"}, False, "e3, e4"),
])
def test_a_member_stops_only_while_the_others_that_answer_with_a_leader_make_a_quorum(members, answers, kept, not_answering):
    read, refuse = load("roles", "etcd", "tasks", "quorum_kept.yml")
    variables = {"etcd_restart_host": "e1", "etcd_quorum_reads": reads(answers), "etcd_quorum_outage_setting": "the_setting",
                 **refuse["vars"]}
    # Every other member is read, from the member that would stop.
    assert templar(members, **variables).template(read["loop"]) == members[1:]
    assert read["delegate_to"] == "{{ etcd_restart_host }}"
    assert templar(members, **variables).evaluate_conditional(refuse["ansible.builtin.assert"]["that"]) is kept
    message = " ".join(templar(members, **variables).template(refuse["ansible.builtin.assert"]["fail_msg"]).split())
    assert f"(not answering: {not_answering})" in message
    assert message.endswith("Bring them back first, or accept the outage with -e the_setting=true.")
    # A refusal ends the run for every host: the callers run the file once for the play.
    assert refuse["any_errors_fatal"] is True


def test_the_hosts_a_run_adds_are_no_members_the_quorum_counts():
    """A cluster of three growing to five restarts its members before the new hosts join: the check reads the other two
    members only, and a quorum is two of the three."""
    read, refuse = load("roles", "etcd", "tasks", "quorum_kept.yml")
    members, joining = ["e1", "e2", "e3", "e4", "e5"], ["e4", "e5"]
    variables = {"etcd_restart_host": "e1", "etcd_joining_hosts": joining, "etcd_quorum_reads": reads({"e2": "e2", "e3": "e2"}),
                 **refuse["vars"]}
    assert templar(members, **variables).template(read["loop"]) == ["e2", "e3"]
    assert templar(members, **variables).evaluate_conditional(trust_as_template("etcd_quorum_size | int == 2"))
    assert templar(members, **variables).evaluate_conditional(refuse["ansible.builtin.assert"]["that"])


@pytest.mark.parametrize("members, joining, accepted, checked", [
    (["e1"], [], False, False), (["e1", "e2"], [], False, False),  # every restart stops them: not checked
    (["e1", "e2", "e3"], [], False, True), (["e1", "e2", "e3"], [], True, False),
    (["e1", "e2", "e3", "e4", "e5"], [], False, True),
    (["e1", "e2", "e3"], ["e2", "e3"], False, False),  # one member growing to three: one member now
])
def test_the_rolling_restart_checks_the_quorum_before_each_member_with_three_members_or_more(members, joining, accepted, checked):
    check = load("roles", "etcd", "tasks", "restart_member.yml")[0]
    assert os.path.basename(check["ansible.builtin.include_tasks"]) == "quorum_kept.yml"
    assert check["vars"]["etcd_quorum_outage_setting"] == "etcd_restart_outage_accepted"
    variables = {"etcd_restart_outage_accepted": accepted, "etcd_joining_hosts": joining}
    assert templar(members, **variables).evaluate_conditional(check["when"]) is checked


def test_the_default_restarts_no_member_without_a_quorum():
    assert load("roles", "etcd", "defaults", "main.yml")["etcd_restart_outage_accepted"] is False
    spec = load("roles", "etcd", "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]["etcd_restart_outage_accepted"]
    assert (spec["type"], spec["default"]) == ("bool", False)


@pytest.mark.parametrize("path, find, settings", [
    ("playbooks/reboot.yml", "Check the other etcd members keep a quorum", "playbooks/vars/reboot.yml"),
    ("roles/etcd/tasks/defrag_member.yml", "Check the other etcd members keep a quorum", "playbooks/vars/etcd_defrag.yml"),
    ("roles/etcd/tasks/restart_member.yml", "Check the other etcd members keep a quorum", "roles/etcd/defaults/main.yml"),
])
def test_each_refusal_names_the_setting_that_skips_its_check(path, find, settings):
    """The setting the message names is the caller's own: it exists, false by default, and true skips the check."""
    plays = load(*path.split("/"))
    tasks = [task for play in plays for task in play.get("tasks", [])] if path.startswith("playbooks/") else plays
    [check] = [task for task in tasks if task.get("name", "").startswith(find)]
    setting = check["vars"]["etcd_quorum_outage_setting"]
    assert load(*settings.split("/"))[setting] is False
    assert f"not {setting} | bool" in check["when"]

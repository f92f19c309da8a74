# SPDX-License-Identifier: GPL-3.0-or-later
"""etcd_defrag.yml: what it refuses before any member changes (every problem in one message), the order of the members
(the leader last; only those with something to give back), and each member's steps: the others keep a quorum without
it, and it is back with its revision kept going up before the next. The runs against real etcd are the molecule etcd
scenario's; the module's own tests are in tests/unit/plugins/module_utils/_etcd/test_defrag.py and tests/integration."""
from __future__ import annotations

import os

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from play_checks import REPO, load_plays, run_check, small_cluster  # pylint: disable=import-error  # tests/unit/playbooks

DEFRAG = "playbooks/etcd_defrag.yml"
OUTAGE_ACCEPTED = "(-e etcd_defrag_outage_accepted=true defragments it all the same)"


def test_every_problem_is_named_in_one_message(tmp_path):
    out = run_check(DEFRAG, small_cluster(tmp_path, ["cp1", "cp2"], ["cp1", "cp2"], ["w1"]), {"etcd_defrag_min_free_bytes": "lots"})
    assert out == ("etcd_defrag.yml: etcd_defrag_min_free_bytes lots is not a number of bytes; etcd has 2 member(s): etcd, and the API, "
                   f"stall while one defragments {OUTAGE_ACCEPTED}"), out


@pytest.mark.parametrize("etcd, extra_vars", [
    (["cp1", "cp2", "cp3"], {}),
    (["cp1"], {"etcd_defrag_outage_accepted": True}),
    (["cp1", "cp2", "cp3"], {"etcd_defrag_min_free_bytes": 1048576}),
])
def test_a_cluster_that_keeps_serving_or_an_outage_accepted_passes(tmp_path, etcd, extra_vars):
    assert run_check(DEFRAG, small_cluster(tmp_path, etcd, etcd, ["w1"]), extra_vars) == ""


def preview(defragmented=False, disarmed=(), leader=False):
    return {"defragmented": defragmented, "alarms_disarmed": list(disarmed), "leader": leader}


@pytest.mark.parametrize("previews, order", [
    ({"cp1": preview(True, leader=True), "cp2": preview(True), "cp3": preview(True)}, ["cp2", "cp3", "cp1"]),
    ({"cp1": preview(), "cp2": preview(True, leader=True), "cp3": preview(True)}, ["cp3", "cp2"]),
    # A member over the quota again only after another's defragmentation: its alarm alone is disarmed.
    ({"cp1": preview(disarmed=["NOSPACE"]), "cp2": preview(leader=True), "cp3": preview()}, ["cp1"]),
    ({"cp1": preview(), "cp2": preview(leader=True), "cp3": preview()}, []),
])
def test_only_the_members_with_something_to_do_are_defragmented_the_leader_last(previews, order):
    [play] = [play for play in load_plays(DEFRAG) if "tasks" in play]
    variables = {name: trust_as_template(value) if isinstance(value, str) else value for name, value in play["vars"].items()}
    variables.update(ansible_play_hosts=list(previews),
                     hostvars={name: {"inventory_hostname": name, "etcd_defrag": read} for name, read in previews.items()})
    assert Templar(loader=DataLoader(), variables=variables).template(trust_as_template("{{ etcd_defrag_order }}")) == order


def test_a_snapshot_first_then_one_member_at_a_time():
    [play] = [play for play in load_plays(DEFRAG) if "tasks" in play]
    steps = [task.get("ansible.builtin.include_role", {}).get("tasks_from") or next(key for key in task if key.startswith("ansible."))
             for task in play["tasks"]]
    assert steps == ["ansible.builtin.assert", "defrag", "ansible.builtin.debug", "snapshot_to_controller", "defrag_member"]
    preview_task, snapshot, rolling = play["tasks"][1], play["tasks"][3], play["tasks"][4]
    assert preview_task["vars"]["etcd_defrag_preview"] is True and play["any_errors_fatal"] is True
    assert snapshot["when"] == "etcd_defrag_order | length > 0"
    assert rolling["loop"] == "{{ etcd_defrag_order }}" and rolling["loop_control"] == {"loop_var": "etcd_restart_host"}
    assert rolling["run_once"] is True


def test_each_member_keeps_the_quorum_and_comes_back_before_the_next():
    with open(os.path.join(REPO, "roles", "etcd", "tasks", "defrag_member.yml"), encoding="utf-8") as handle:
        tasks = yaml.safe_load(handle)
    steps = [os.path.basename(task["ansible.builtin.include_tasks"]) if "ansible.builtin.include_tasks" in task
             else next(key for key in task if key.startswith("ansible.")) for task in tasks]
    assert steps == ["quorum_kept.yml", "member_revision.yml", "defrag.yml", "member_back.yml", "ansible.builtin.assert"]
    assert tasks[0]["when"] == "not etcd_defrag_outage_accepted | bool"
    assert tasks[-1]["ansible.builtin.assert"]["that"] == "not etcd_defrag.nospace_alarm"

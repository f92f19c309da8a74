# SPDX-License-Identifier: GPL-3.0-or-later
"""reboot.yml: what it refuses before any host changes (every problem in one message), and the order of each host's
steps: nothing stops before the checks that can refuse, the node is drained and its apiserver out of the load balancers
before the reboot, and each is back (etcd, the control plane, the node uncordoned once Ready) before the next host."""
from __future__ import annotations

import os
import subprocess

import pytest
import yaml
from play_checks import REPO, load_plays, run_check, small_cluster  # pylint: disable=import-error  # tests/unit/playbooks

REBOOT = "playbooks/reboot.yml"
OUTAGE_ACCEPTED = "(-e reboot_outage_accepted=true reboots it all the same)"


def test_the_hosts_must_be_named():
    out = run_check(REBOOT, "inventory/sample", {})
    assert "-e reboot_hosts=HOST[,HOST...] (hosts of the cluster (k8s_cluster, etcd))" in out


def test_every_problem_is_named_in_one_message():
    out = run_check(REBOOT, "inventory/sample", {"reboot_hosts": "all", "reboot_drain_timeout": "soon", "reboot_timeout": 0}, "--limit", "worker1")
    for problem in ("run without --limit", "reboot_drain_timeout soon is not a number of seconds above 0",
                    "reboot_timeout 0 is not a number of seconds above 0"):
        assert problem in out
    # Three control-plane hosts and three etcd members keep serving while one reboots.
    assert OUTAGE_ACCEPTED not in out


def test_the_whole_sample_cluster_passes_the_check():
    assert run_check(REBOOT, "inventory/sample", {"reboot_hosts": "all"}) == ""


@pytest.mark.parametrize("etcd, control_plane, named, refused", [
    (["solo"], ["solo"], "solo",
     [f"solo is the only control-plane host: the API stops while it reboots {OUTAGE_ACCEPTED}",
      f"etcd has 1 member(s): rebooting solo leaves it without a quorum, and the API stops, while it reboots {OUTAGE_ACCEPTED}"]),
    (["cp1", "cp2"], ["cp1", "cp2"], "cp2,w1",
     [f"etcd has 2 member(s): rebooting cp2 leaves it without a quorum, and the API stops, while it reboots {OUTAGE_ACCEPTED}"]),
    (["cp1", "cp2", "cp3"], ["cp1"], "cp1",
     [f"cp1 is the only control-plane host: the API stops while it reboots {OUTAGE_ACCEPTED}"]),
    # The worker of a small cluster reboots without touching the API.
    (["solo"], ["solo"], "w1", []),
])
def test_a_cluster_whose_api_would_stop_is_refused_unless_the_outage_is_accepted(tmp_path, etcd, control_plane, named, refused):
    inventory = small_cluster(tmp_path, etcd, control_plane, ["w1"])
    out = run_check(REBOOT, inventory, {"reboot_hosts": named})
    assert [problem for problem in refused if problem not in out] == [], out
    assert out.count(OUTAGE_ACCEPTED) == len(refused), out
    assert run_check(REBOOT, inventory, {"reboot_hosts": named, "reboot_outage_accepted": True}) == ""


def test_each_host_is_checked_drained_and_taken_out_before_its_reboot_and_back_before_the_next():
    [reboot] = [play for play in load_plays(REBOOT) if play.get("serial") is not None]
    assert reboot["serial"] == 1
    # etcd members first, then the other control-plane hosts, then the workers.
    assert reboot["hosts"] == "etcd:kube_control_plane:k8s_cluster:&kubeforge_rebooting"
    steps = []
    for task in reboot["tasks"]:
        role = task.get("ansible.builtin.include_role")
        steps.append(f"{role['name']}/{role['tasks_from']}" if role else
                     task.get("ansible.builtin.import_tasks") or next(key for key in task if key.startswith(("ansible.", "kubeforge."))))
    assert steps == ["ansible.builtin.shell", "ansible.builtin.meta",
                     "kubeforge.cluster.etcd/quorum_kept", "tasks/drain_node.yml", "kubeforge.cluster.etcd/member_revision",
                     "kubeforge.cluster.control_plane/serving_out", "ansible.builtin.reboot", "kubeforge.cluster.etcd/member_back",
                     "kubeforge.cluster.control_plane/serving_back", "tasks/uncordon_node.yml"]
    # With reboot_required_only, a host that does not ask for a reboot ends before anything there changes.
    asked, leave = reboot["tasks"][:2]
    assert asked["when"] == "reboot_required_only | bool" and asked["check_mode"] is False
    assert leave["ansible.builtin.meta"] == "end_host" and leave["when"] == "reboot_required_only | bool and reboot_asked.rc == 0"
    uncordon = reboot["tasks"][-1]
    assert uncordon["vars"]["uncordon_node_timeout"] == "{{ reboot_timeout }}" and uncordon["when"] == "reboot_node"


@pytest.mark.parametrize("role, restart, steps", [
    ("etcd", "restart_member.yml", ["quorum_kept.yml", "member_revision.yml", "ansible.builtin.systemd_service", "member_back.yml"]),
    ("control_plane", "restart_host.yml", ["serving_out.yml", "ansible.builtin.systemd_service", "serving_back.yml"]),
])
def test_a_reboot_and_a_rolling_restart_share_the_checks_around_the_stop(role, restart, steps):
    """The rolling restarts of site.yml's handlers and reboot.yml run the same task files before and after the stop."""
    with open(os.path.join(REPO, "roles", role, "tasks", restart), encoding="utf-8") as handle:
        tasks = yaml.safe_load(handle)
    order = [os.path.basename(task["ansible.builtin.include_tasks"]) if "ansible.builtin.include_tasks" in task
             else next(key for key in task if key.startswith("ansible.")) for task in tasks]
    assert [step for step in order if step in steps] == steps


@pytest.mark.parametrize("needs_restarting, asked", [(None, 0), (0, 0), (1, 1)])
def test_a_host_asks_for_a_reboot_by_its_file_or_by_needs_restarting(tmp_path, needs_restarting, asked):
    """The read of reboot_required_only, run by sh on this machine: exit code 1 when the host asks for a reboot. The RHEL
    family's needs-restarting -r (exit 1: a reboot is needed) is a stand-in script here; /run/reboot-required is this
    machine's own (it asks whenever that file is there)."""
    [reboot] = [play for play in load_plays(REBOOT) if play.get("serial") is not None]
    script = reboot["tasks"][0]["ansible.builtin.shell"]
    path = "/usr/bin:/bin"
    if needs_restarting is not None:
        fake = tmp_path / "needs-restarting"
        fake.write_text(f'#!/bin/sh\n[ "$1" = -r ] || exit 2\nexit {needs_restarting}\n', encoding="utf-8")
        fake.chmod(0o755)
        path = f"{tmp_path}:{path}"
    run = subprocess.run(["sh", "-c", script], env={"PATH": path}, capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode == (1 if os.path.exists("/run/reboot-required") else asked), run

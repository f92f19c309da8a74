# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The version policy of a rolling upgrade (_upgrade): one allowed and one refused case per rule of the
Kubernetes version skew policy and of the etcd upgrade policy, interrupted upgrades, every problem reported
at once, and the --version parser on recorded output."""
from __future__ import annotations

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils import _upgrade
from ansible_collections.kubeforge.cluster.plugins.module_utils._upgrade import (
    component_versions, etcd_upgrade_problems, kubernetes_upgrade_problems)

CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
NODE = ("kubelet", "kube-proxy")
NEWEST = {"3.5": "3.5.35", "3.6": "3.6.16"}


def cluster(version="1.36.4", **changes):
    """master1 runs the five components, worker1 kubelet and kube-proxy, all at ``version``; ``changes``
    merges {component: version} into a host (a new host when not there)."""
    hosts = {"master1": dict.fromkeys(CONTROL_PLANE, version), "worker1": dict.fromkeys(NODE, version)}
    for host, change in changes.items():
        hosts[host] = {**hosts.get(host, {}), **change}
    return hosts


def interrupted(newer="1.37.0", older="1.36.4"):
    """Three apiservers, master1 already on the next minor: a control-plane upgrade stopped after one host."""
    return {"master1": {"kube-apiserver": newer}, "master2": {"kube-apiserver": older}, "master3": {"kube-apiserver": older},
            "worker1": dict.fromkeys(NODE, older)}


@pytest.mark.parametrize("text, expected", [
    ("1.36.4", (1, 36, 4)),
    ("v1.36.4", (1, 36, 4)),
    ("3.5.35", (3, 5, 35)),
    ("v3.6.16", (3, 6, 16)),
    ("1.36", None),
    ("1.36.0-rc.1", None),
    ("V1.36.4", None),
    ("vv1.36.4", None),
    ("", None),
])
def test_parse_version(text, expected):
    assert _upgrade.parse_version(text) == expected


@pytest.mark.parametrize("target, running", [
    pytest.param("1.36.5", cluster(), id="patch upgrade"),
    pytest.param("1.36.4", cluster(), id="same version, a re-run"),
    pytest.param("1.37.0", cluster(), id="next minor"),
    pytest.param("v1.37.0", cluster("v1.36.4"), id="v prefix on both sides"),
    pytest.param("1.37.0", {}, id="new cluster"),
    pytest.param("1.37.0", {"master1": {}, "worker1": {}}, id="hosts with nothing installed yet"),
    pytest.param("1.37.0", cluster(worker2={"kubelet": "1.36.4"}), id="a node half installed"),
    pytest.param("1.37.0", cluster(worker1=dict.fromkeys(NODE, "1.34.9")), id="kubelet and kube-proxy 3 minors older than the target"),
    pytest.param("1.36.5", cluster(worker1=dict.fromkeys(NODE, "1.36.5")), id="kubelet a newer patch than the apiserver"),
    pytest.param("1.37.0", interrupted(), id="finishing an interrupted upgrade"),
    pytest.param("1.37.2", interrupted(), id="finishing an interrupted upgrade on a later patch"),
    pytest.param("1.37.0", {**interrupted(), "master1": dict.fromkeys(CONTROL_PLANE, "1.37.0")},
                 id="finishing an upgrade interrupted after one control-plane host"),
])
def test_kubernetes_upgrade_allowed(target, running):
    assert kubernetes_upgrade_problems(target, running) == []


@pytest.mark.parametrize("target, running, expected", [
    pytest.param("1.36.5", cluster(worker1={"kubelet": "1.36.6"}), [
        "target 1.36.5 is older than what runs: kubelet 1.36.6 on worker1; downgrades are refused: choose a target of at least 1.36.6"],
        id="patch downgrade"),
    pytest.param("1.35.9", {"master1": {"kube-apiserver": "1.36.4", "kubelet": "v1.36.2"}}, [
        "target 1.35.9 is older than what runs: kube-apiserver 1.36.4 on master1, kubelet 1.36.2 on master1; downgrades are refused: "
        "choose a target of at least 1.36.4"], id="minor downgrade"),
    pytest.param("1.38.0", cluster(), [
        "target 1.38.0 skips a minor: kube-apiserver 1.36.4 on master1; Kubernetes upgrades one minor at a time: upgrade to 1.37 first"],
        id="skipping a minor"),
    pytest.param("1.37.0", cluster(worker1=dict.fromkeys(NODE, "1.33.7")), [
        "target 1.37.0: kubelet and kube-proxy may be at most 3 minors older than kube-apiserver, and these are older: "
        "kubelet 1.33.7 on worker1, kube-proxy 1.33.7 on worker1; upgrade them to at least 1.34 first"], id="nodes 4 minors older"),
    pytest.param("1.37.0", cluster(master1={"kube-controller-manager": "1.37.0"}), [
        "kube-controller-manager 1.37.0 on master1: newer than every kube-apiserver (kube-apiserver 1.36.4 on master1); "
        "kube-controller-manager and kube-scheduler must not be newer than the kube-apiservers, so the version skew is already broken: "
        "bring the kube-apiservers on master1 to the same minor by hand, or return those components to 1.36, before upgrading"],
        id="controller-manager newer than the apiserver"),
    pytest.param("1.37.0", cluster(worker1={"kube-proxy": "1.37.0"}), [
        "kube-proxy 1.37.0 on worker1: newer than every kube-apiserver (kube-apiserver 1.36.4 on master1); "
        "kubelet and kube-proxy must not be newer than the kube-apiservers, so the version skew is already broken: "
        "bring the kube-apiservers on master1 to the same minor by hand, or return those components to 1.36, before upgrading"],
        id="kube-proxy newer than the apiserver"),
    pytest.param("2.0.0", cluster(), [
        "target Kubernetes version 2.0.0 is not 1.x: the collection upgrades within Kubernetes 1 only"], id="another major"),
    pytest.param("1.37.0", cluster(worker1={"kubelet": "2.0.1"}), [
        "kubelet on worker1 runs 2.0.1, which is not Kubernetes 1.x: the collection manages Kubernetes 1 only; "
        "replace that installation before upgrading"], id="another major running"),
])
def test_kubernetes_upgrade_refused(target, running, expected):
    assert kubernetes_upgrade_problems(target, running) == expected


@pytest.mark.parametrize("component", ["kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"])
def test_any_component_newer_than_every_apiserver_is_refused(component):
    problems = kubernetes_upgrade_problems("1.37.0", cluster(master1={component: "1.37.0"}))
    assert len(problems) == 1 and problems[0].startswith(f"{component} 1.37.0 on master1: newer than every kube-apiserver"), problems


@pytest.mark.parametrize("component", ["kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"])
def test_any_component_on_the_newest_apiserver_minor_is_allowed(component):
    # Newer than the apiservers on master2 and master3, not than master1's: an interrupted upgrade a 1.37 re-run finishes.
    running = {**interrupted(), "master1": {"kube-apiserver": "1.37.0", component: "1.37.0"}}
    assert kubernetes_upgrade_problems("1.37.0", running) == []


def test_nodes_three_minors_older_than_the_target_pass_four_do_not():
    running = cluster(worker1=dict.fromkeys(NODE, "1.33.7"))
    assert kubernetes_upgrade_problems("1.36.5", running) == []
    assert len(kubernetes_upgrade_problems("1.37.0", running)) == 1


def test_interrupted_upgrade_target_on_the_old_minor():
    assert kubernetes_upgrade_problems("1.36.5", interrupted()) == [
        "target 1.36.5 is older than what runs: kube-apiserver 1.37.0 on master1; downgrades are refused: choose a target of at least 1.37.0",
        "an upgrade of the kube-apiservers to 1.37 was interrupted (kube-apiserver 1.37.0 on master1, kube-apiserver 1.36.4 on master2, "
        "kube-apiserver 1.36.4 on master3): target 1.36.5 is not on 1.37; finish that upgrade first with a 1.37 target of at least 1.37.0",
    ]


def test_interrupted_upgrade_target_past_the_new_minor():
    problems = kubernetes_upgrade_problems("1.38.0", interrupted())
    assert problems == [
        "target 1.38.0 skips a minor: kube-apiserver 1.36.4 on master2, kube-apiserver 1.36.4 on master3; "
        "Kubernetes upgrades one minor at a time: upgrade to 1.37 first",
        "an upgrade of the kube-apiservers to 1.37 was interrupted (kube-apiserver 1.37.0 on master1, kube-apiserver 1.36.4 on master2, "
        "kube-apiserver 1.36.4 on master3): target 1.38.0 is not on 1.37; finish that upgrade first with a 1.37 target of at least 1.37.0",
    ]


def test_interrupted_upgrade_with_a_controller_past_the_oldest_apiserver():
    # An upgrade stopped after master1 was fully upgraded: its scheduler at 1.37 is newer than the apiservers on
    # master2 and master3 at 1.36, but not than master1's. The skew is measured against the newest apiserver, so a
    # re-run with a 1.37 target may finish the upgrade.
    running = {**interrupted(), "master1": {"kube-apiserver": "1.37.0", "kube-scheduler": "1.37.0"}}
    assert kubernetes_upgrade_problems("1.37.0", running) == []
    assert kubernetes_upgrade_problems("1.37.2", running) == []


def test_interrupted_upgrade_with_a_controller_past_every_apiserver():
    running = {**interrupted(), "master2": {"kube-apiserver": "1.36.4", "kube-scheduler": "1.38.0"}}
    problems = kubernetes_upgrade_problems("1.38.0", running)
    assert len(problems) == 3, problems
    assert problems[2] == (
        "kube-scheduler 1.38.0 on master2: newer than every kube-apiserver (kube-apiserver 1.37.0 on master1, "
        "kube-apiserver 1.36.4 on master2, kube-apiserver 1.36.4 on master3); kube-controller-manager and kube-scheduler "
        "must not be newer than the kube-apiservers, so the version skew is already broken: bring the kube-apiservers on "
        "master2, master3 to the same minor by hand, or return those components to 1.37, before upgrading"), problems


def test_apiservers_more_than_one_minor_apart():
    running = {"master1": {"kube-apiserver": "1.35.2"}, "master2": {"kube-apiserver": "v1.37.1"}}
    assert kubernetes_upgrade_problems("1.37.1", running) == [
        "target 1.37.1 skips a minor: kube-apiserver 1.35.2 on master1; Kubernetes upgrades one minor at a time: upgrade to 1.36 first",
        "the kube-apiservers span more than one minor (kube-apiserver 1.35.2 on master1, kube-apiserver 1.37.1 on master2): "
        "the version skew policy allows one; a rolling upgrade cannot repair this: bring the kube-apiservers on 1.35 up one minor at a time by hand",
    ]


@pytest.mark.parametrize("target", ["1.37", "1.37.0-rc.1", "V1.37.0", "latest", ""])
def test_unparsable_target_is_a_problem(target):
    assert kubernetes_upgrade_problems(target, cluster()) == [
        f"target Kubernetes version {target!r} is not a release version: write X.Y.Z, for example 1.36.4"]


def test_unparsable_running_version_is_a_problem_and_the_rest_is_still_checked():
    running = cluster(worker1={"kubelet": "unknown"}, worker2={"kube-proxy": "1.33.0"})
    assert kubernetes_upgrade_problems("1.37.0", running) == [
        "kubelet on worker1 reports the version 'unknown', which is not a release version: "
        "check `kubelet --version` on worker1 and repair that installation before upgrading",
        "target 1.37.0: kubelet and kube-proxy may be at most 3 minors older than kube-apiserver, and these are older: "
        "kube-proxy 1.33.0 on worker2; upgrade them to at least 1.34 first",
    ]


def test_unparsable_target_still_reports_the_broken_skew():
    problems = kubernetes_upgrade_problems("next", cluster(master1={"kube-scheduler": "1.37.0"}))
    assert len(problems) == 2 and problems[0].startswith("target Kubernetes version 'next'")
    assert problems[1].startswith("kube-scheduler 1.37.0 on master1: newer than every kube-apiserver")


def test_unknown_component_is_a_problem():
    problems = kubernetes_upgrade_problems("1.37.0", cluster(master1={"kube_apiserver": "1.36.4"}))
    assert problems == ["host master1 reports an unknown component 'kube_apiserver': the versions read must name "
                        "kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy"]


def test_every_kubernetes_problem_is_reported_at_once():
    running = cluster(master1={"kube-scheduler": "1.37.0"}, worker1={"kubelet": "1.34.1"}, worker2={"kube-proxy": "garbage"})
    problems = kubernetes_upgrade_problems("1.38.0", running)
    assert len(problems) == 4, problems
    assert problems[0].startswith("kube-proxy on worker2 reports the version 'garbage'")
    assert problems[1].startswith("target 1.38.0 skips a minor: kube-apiserver 1.36.4 on master1")
    assert "kubelet 1.34.1 on worker1; upgrade them to at least 1.35 first" in problems[2]
    assert problems[3].startswith("kube-scheduler 1.37.0 on master1: newer than every kube-apiserver")


@pytest.mark.parametrize("target, running", [
    pytest.param("3.5.35", {"etcd1": "3.5.30", "etcd2": "3.5.30", "etcd3": "3.5.30"}, id="patch upgrade"),
    pytest.param("3.5.30", {"etcd1": "3.5.30"}, id="same version, a re-run"),
    pytest.param("3.6.16", {"etcd1": "3.5.35", "etcd2": "3.5.35", "etcd3": "3.5.35"}, id="minor upgrade from the newest patch"),
    pytest.param("v3.6.16", {"etcd1": "v3.5.35", "etcd2": "3.5.35"}, id="v prefix"),
    pytest.param("3.6.16", {"etcd1": "3.6.10", "etcd2": "3.5.35", "etcd3": "3.5.35"}, id="finishing an interrupted minor upgrade"),
    pytest.param("3.6.16", {"etcd1": "3.6.16", "etcd2": "3.6.12"}, id="patch upgrade after the minor upgrade"),
    pytest.param("3.6.16", {}, id="new cluster"),
])
def test_etcd_upgrade_allowed(target, running):
    assert etcd_upgrade_problems(target, running, NEWEST) == []


@pytest.mark.parametrize("target, running, newest, expected", [
    pytest.param("3.5.30", {"etcd1": "3.5.30", "etcd2": "3.5.35"}, NEWEST, [
        "target etcd 3.5.30 is older than what runs: etcd 3.5.35 on etcd2; downgrades are refused: choose a target of at least 3.5.35"],
        id="patch downgrade"),
    pytest.param("3.5.35", {"etcd1": "3.6.16"}, NEWEST, [
        "target etcd 3.5.35 is older than what runs: etcd 3.6.16 on etcd1; downgrades are refused: choose a target of at least 3.6.16"],
        id="minor downgrade"),
    pytest.param("3.6.16", {"etcd1": "3.4.37", "etcd2": "3.4.37"}, {**NEWEST, "3.4": "3.4.37"}, [
        "target etcd 3.6.16 skips a minor: etcd 3.4.37 on etcd1, etcd 3.4.37 on etcd2; etcd upgrades one minor at a time: "
        "upgrade every member to 3.5 first"], id="skipping a minor"),
    pytest.param("3.6.16", {"etcd1": "3.5.35", "etcd2": "3.5.30", "etcd3": "3.5.34"}, NEWEST, [
        "target etcd 3.6.16 is a minor upgrade, and every member still on 3.5 must first run its newest patch 3.5.35: "
        "etcd 3.5.30 on etcd2, etcd 3.5.34 on etcd3; run the upgrade with target 3.5.35 first, then with 3.6.16"],
        id="minor upgrade before the newest patch"),
    pytest.param("3.6.16", {"etcd1": "3.6.16", "etcd2": "3.5.30", "etcd3": "3.5.35"}, NEWEST, [
        "target etcd 3.6.16 is a minor upgrade, and every member still on 3.5 must first run its newest patch 3.5.35: "
        "etcd 3.5.30 on etcd2; run the upgrade with target 3.5.35 first, then with 3.6.16"],
        id="interrupted minor upgrade with a member behind"),
    pytest.param("3.5.35", {"etcd1": "3.4.30", "etcd2": "3.4.37"}, NEWEST, [
        "unknown newest patch of etcd 3.4: the collection cannot check that etcd 3.4.30 on etcd1, etcd 3.4.37 on etcd2 may move to 3.5.35; "
        "add the newest 3.4 patch to the collection's etcd versions before upgrading etcd1, etcd2"], id="unknown newest patch"),
    pytest.param("3.6.16", {"etcd1": "3.5.35"}, {"3.5": "3.6.0"}, [
        "the newest patch of etcd 3.5 known to the collection is '3.6.0', not a 3.5.Z release: "
        "correct the collection's etcd versions before upgrading etcd1"], id="newest patch of the wrong minor"),
    pytest.param("3.6.16", {"etcd1": "3.4.37", "etcd2": "3.6.16"}, NEWEST, [
        "the etcd members span more than one minor (etcd 3.4.37 on etcd1, etcd 3.6.16 on etcd2): etcd upgrades one minor at a time; "
        "a rolling upgrade cannot repair this: bring the members on 3.4 up one minor at a time by hand",
        "target etcd 3.6.16 skips a minor: etcd 3.4.37 on etcd1; etcd upgrades one minor at a time: upgrade every member to 3.5 first"],
        id="members more than one minor apart"),
    pytest.param("4.0.0", {"etcd1": "3.6.16"}, NEWEST, [
        "target etcd 4.0.0 is another major version than etcd 3.6.16 on etcd1: the collection upgrades etcd within one major version only"],
        id="another major"),
])
def test_etcd_upgrade_refused(target, running, newest, expected):
    assert etcd_upgrade_problems(target, running, newest) == expected


@pytest.mark.parametrize("target", ["3.6", "3.6.16-rc.0", "etcd-3.6.16", ""])
def test_unparsable_etcd_target_is_a_problem(target):
    assert etcd_upgrade_problems(target, {"etcd1": "3.5.35"}, NEWEST) == [
        f"target etcd version {target!r} is not a release version: write X.Y.Z, for example 3.5.35"]


def test_unparsable_member_version_is_a_problem():
    assert etcd_upgrade_problems("3.5.35", {"etcd1": "3.5.35", "etcd2": "Version: ?"}, NEWEST) == [
        "etcd member etcd2 reports the version 'Version: ?', which is not a release version: "
        "check `etcd --version` on etcd2 and repair that member before upgrading"]


def test_every_etcd_problem_is_reported_at_once():
    problems = etcd_upgrade_problems("3.6.16", {"etcd1": "3.5.30", "etcd2": "3.5", "etcd3": "3.6.17"}, NEWEST)
    assert len(problems) == 3, problems
    assert problems[0].startswith("etcd member etcd2 reports the version '3.5'")
    assert problems[1].startswith("target etcd 3.6.16 is older than what runs: etcd 3.6.17 on etcd3")
    assert problems[2].endswith("etcd 3.5.30 on etcd1; run the upgrade with target 3.5.35 first, then with 3.6.16")


@pytest.mark.parametrize("output, expected", [
    ("Kubernetes v1.36.4\n", "1.36.4"),
    ("Kubernetes v1.37.0", "1.37.0"),
    ("etcd Version: 3.5.35\nGit SHA: abc\nGo Version: go1.26.8\nGo OS/Arch: linux/amd64\n", "3.5.35"),
    ("etcd Version: 3.6.16\r\nGit SHA: 1d8d1a1\r\n", "3.6.16"),
])
def test_component_versions(output, expected):
    assert component_versions(output) == expected


@pytest.mark.parametrize("output", [
    "",
    "Kubernetes v1.36.0-rc.1",
    "Kubernetes 1.36.4",
    "Client Version: v1.36.4\nKustomize Version: v5.7.1",
    "etcdctl version: 3.5.35\nAPI version: 3.5",
    "Git SHA: abc\netcd Version: 3.5.35",
    "kubelet: command not found",
])
def test_component_versions_refuses_other_output(output):
    with pytest.raises(ValueError, match="not the output of a Kubernetes or etcd --version"):
        component_versions(output)


def test_a_member_past_the_newest_known_patch_may_move_to_the_next_minor():
    """A local build newer than the newest published 3.5 patch is on it or past it: allowed."""
    assert etcd_upgrade_problems("3.6.16", {"etcd1": "3.5.36", "etcd2": "3.5.35"}, {"3.5": "3.5.35"}) == []
    refused = etcd_upgrade_problems("3.6.16", {"etcd1": "3.5.36", "etcd2": "3.5.34"}, {"3.5": "3.5.35"})
    assert len(refused) == 1 and "etcd2" in refused[0] and "etcd1" not in refused[0]


@pytest.mark.parametrize("batch, nodes, expected", [
    (1, 5, 1), ("2", 5, 2), (" 3 ", 5, 3), ("40%", 5, 2), ("10%", 5, 1), ("100%", 4, 4), ("1%", 200, 2),
    ("0%", 5, None), ("101%", 5, None), ("abc", 5, None), ("-1", 5, None), (True, 5, None), ("2.5", 5, None), (None, 5, None)])
def test_nodes_per_batch_counts_as_ansibles_serial(batch, nodes, expected):
    assert _upgrade.nodes_per_batch(batch, nodes) == expected


@pytest.mark.parametrize("batch, timeout, nodes", [(1, 300, 5), ("4", "600", 5), ("75%", 1, 5), (1, 300, 1), (3, 300, 1)])
def test_settings_that_keep_a_node_to_run_the_pods_are_accepted(batch, timeout, nodes):
    assert _upgrade.settings_problems(batch, timeout, nodes) == []


@pytest.mark.parametrize("batch, nodes, problem", [
    (0, 5, "upgrade_node_batch_size 0: at least 1 node at a time"),
    (-2, 5, "upgrade_node_batch_size -2: at least 1 node at a time"),
    ("5", 5, "upgrade_node_batch_size 5 drains all 5 nodes at once, leaving none to run their pods: at most 4"),
    ("100%", 3, "upgrade_node_batch_size 100% drains all 3 nodes at once, leaving none to run their pods: at most 2"),
    ("two", 5, "upgrade_node_batch_size two is neither a number of nodes (2) nor a percentage of them from 1% to 100% (20%)"),
])
def test_a_batch_of_no_node_or_of_every_node_is_refused(batch, nodes, problem):
    assert _upgrade.settings_problems(batch, 300, nodes) == [problem]


def test_every_settings_problem_is_reported_at_once():
    assert _upgrade.settings_problems("0%", "soon", 3) == [
        "upgrade_node_batch_size 0% is neither a number of nodes (2) nor a percentage of them from 1% to 100% (20%)",
        "upgrade_drain_timeout soon is not a number of seconds (300)"]
    assert _upgrade.settings_problems(1, 0, 3) == ["upgrade_drain_timeout 0 is not a number of seconds (300)"]

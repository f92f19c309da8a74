# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The kubelet's write also installs the serving-CSR approver (control-plane hosts) and, in site.yml and add_nodes.yml,
kube-proxy's files: what restarts after it is decided per unit, each for its own files, binary or credentials.
The role's own expressions and site.yml's, templated by Ansible's Templar as a run would."""
from __future__ import annotations

import os

import pytest
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from test_node_manifests import ROLES, variables

pytestmark = pytest.mark.usefixtures("ansible_plugin_loader")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(REPO, "roles", "kubelet_bootstrap")


def load(*parts: str):
    return DataLoader().load_from_file(os.path.join(*parts), cache="none", trusted_as_template=True) or {}


def evaluate(expression, **variables):
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(expression))


def kubelet_restarted_by_handler(**variables) -> bool:
    (handler,) = load(ROLE, "handlers", "main.yml")
    return Templar(loader=DataLoader(), variables=variables).evaluate_conditional(handler["when"])


def restarted_after_write(also_running_units=("kube-proxy",), **variables) -> list:
    """The units the task after the write restarts (the kubelet's own files and binary are the handler's)."""
    task = next(task for task in load(ROLE, "tasks", "main.yml") if task["name"].startswith("Restart the kubelet where the pki phase"))
    return evaluate(task["loop"], kubelet_bootstrap_also_running_units=list(also_running_units), **variables)


def written(services_changed=(), started_units=()) -> dict:
    return {"kubelet_bootstrap_written": {"services_changed": list(services_changed), "started_units": list(started_units)}}


def installed(*changed_binaries) -> dict:
    return {"artifacts_installed": {"changed": bool(changed_binaries), "changed_binaries": list(changed_binaries)}}


def test_the_kubelet_restarts_for_its_own_files_or_binary_only():
    assert kubelet_restarted_by_handler(**written(["kubelet"]), **installed())
    assert kubelet_restarted_by_handler(**written(), **installed("kubelet"))
    # The approver's or kube-proxy's files, or kube-proxy's binary, changed in the same module runs.
    assert not kubelet_restarted_by_handler(**written(["kube-proxy"]), **installed())
    assert not kubelet_restarted_by_handler(**written([]), **installed("kube-proxy"))
    # A kubelet this write started runs the new files already; an install skipped (verified) changed nothing.
    assert not kubelet_restarted_by_handler(**written(["kubelet"], ["kubelet"]), **installed("kubelet"))
    assert not kubelet_restarted_by_handler(**written(), artifacts_installed={"skipped": True, "changed": False})


def test_an_also_running_unit_restarts_for_its_files_binary_or_credentials_unless_started_here():
    assert restarted_after_write(**written(["kube-proxy"]), **installed()) == ["kube-proxy"]
    assert restarted_after_write(**written(), **installed("kube-proxy")) == ["kube-proxy"]
    assert restarted_after_write(**written(), **installed(), pki_changed_services=["kube-proxy", "etcd"]) == ["kube-proxy"]
    assert restarted_after_write(**written(["kubelet"]), **installed("kubelet")) == []
    assert restarted_after_write(**written(["kube-proxy"], ["kube-proxy"]), **installed("kube-proxy")) == []
    # Without kube-proxy in the write (a run tagged kubelet_bootstrap alone), its changes are not the kubelet phase's.
    assert restarted_after_write((), **written(["kube-proxy"]), **installed("kube-proxy")) == []
    # The kubelet's credentials from the pki phase: restarted here, once.
    assert restarted_after_write(**written(), **installed(), pki_changed_services=["kubelet"]) == ["kubelet"]


@pytest.mark.parametrize("host, tls_mode, runs", [("cp1", "bootstrap", True), ("w1", "bootstrap", False), ("cp1", "signed", False)])
def test_the_approver_goes_with_the_kubelet_write_on_the_control_plane_hosts_in_bootstrap_mode(host, tls_mode, runs):
    variables = {**load(ROLE, "vars", "main.yml"), "inventory_hostname": host, "kubelet_tls_mode": tls_mode,
                 "groups": {"kube_control_plane": ["cp1"]}}
    assert evaluate("{{ kubelet_bootstrap_approver_units }}", **variables) == (["kubelet-csr-approver.timer"] if runs else [])
    assert evaluate("{{ kubelet_bootstrap_approver_directories }}", **variables) == (["/usr/local/lib/kubeforge"] if runs else [])
    write = next(task for task in load(ROLE, "tasks", "main.yml") if task["name"].startswith("Write the kubelet's"))
    assert "kubelet_bootstrap_approver_files" in write["kubeforge.cluster.file_bundle"]["files"]
    # The day-2 playbooks update its node list on the same hosts (playbooks/tasks/membership.yml).
    (hand_over,) = load(ROLE, "tasks", "approver_nodes.yml")
    nodes_file = {"dest": "/etc/kubernetes/kubelet-csr-nodes.json"}
    assert evaluate(hand_over["ansible.builtin.set_fact"]["kubelet_bootstrap_membership_files"],
                    **{**variables, "kubelet_bootstrap_csr_approver_nodes_file": nodes_file}) == ([nodes_file] if runs else [])
    assert not os.path.exists(os.path.join(ROLE, "tasks", "approver_install.yml"))


def test_the_approver_script_is_the_collection_module_utils_file_byte_for_byte():
    """The timer runs it with the host's python3: the file the kubelet's write installs is the module_utils source."""
    scope = variables("kubelet_bootstrap", "cp1", {}, {}, ROLES)
    files = evaluate("{{ kubelet_bootstrap_approver_files }}", **scope)
    [script] = [entry for entry in files if entry["dest"] == scope["kubelet_bootstrap_csr_approver_script"]]
    with open(os.path.join(REPO, "plugins", "module_utils", "_kubelet_csr.py"), encoding="utf-8") as handle:
        assert script["content"] == handle.read() and script["mode"] == "0755"
    compile(script["content"], "kubelet_csr.py", "exec")
    assert sorted(entry["dest"] for entry in files) == sorted([
        scope["kubelet_bootstrap_csr_approver_script"], scope["kubelet_bootstrap_csr_approver_nodes"],
        "/etc/systemd/system/kubelet-csr-approver.service", "/etc/systemd/system/kubelet-csr-approver.timer"])


def site_play(name_start: str) -> dict:
    return next(play for play in load(REPO, "site.yml") if play["name"].startswith(name_start))


@pytest.mark.parametrize("kubelet_phase_ran_on, ipvs_phase_runs_on", [
    (["kf-cp1", "kf-cp2", "kf-cp3", "kf-w1"], []),  # a full run: the kubelet's write took kube-proxy's files everywhere
    ([], ["kf-cp1", "kf-cp2", "kf-cp3", "kf-w1"]),  # --tags ipvs: the kubelet_bootstrap phase did not run
    (["kf-cp1"], ["kf-cp2", "kf-cp3", "kf-w1"]),
])
def test_site_runs_the_ipvs_phase_only_where_the_kubelet_write_did_not(kubelet_phase_ran_on, ipvs_phase_runs_on):
    inventory = InventoryManager(loader=DataLoader(), sources=[os.path.join(REPO, "inventory", "lab", "hosts.yml")])
    hostvars = {host.name: ({"inventory_hostname": host.name} | (written() if host.name in kubelet_phase_ran_on else {}))
                for host in inventory.get_hosts()}
    phase_hosts = evaluate(site_play("Phase ipvs")["vars"]["kubeforge_phase_hosts"],
                           groups={"k8s_cluster": [host.name for host in inventory.groups["k8s_cluster"].get_hosts()]},
                           hostvars=hostvars)
    hosts_pattern = load(REPO, "playbooks", "phases", "ipvs.yml")[1]["hosts"]
    pattern = evaluate(hosts_pattern, kubeforge_phase_hosts=phase_hosts, groups=inventory.get_groups_dict())
    assert sorted(host.name for host in inventory.get_hosts(pattern)) == ipvs_phase_runs_on


def test_site_hands_kube_proxy_to_the_kubelet_phase_only_in_a_run_with_the_ipvs_tag():
    handover = site_play("Kube-proxy - hand its artifact and files")
    assert handover["tags"] == ["ipvs"] and evaluate(handover["hosts"], groups={"k8s_cluster": []}) == "k8s_cluster:&all"
    assert [task["ansible.builtin.import_role"] for task in handover["tasks"]] == [{"name": "kubeforge.cluster.ipvs", "tasks_from": "node_files"}]
    settings = site_play("Phase kubelet_bootstrap")["vars"]
    handed = {"ipvs_node_artifacts": [{"name": "kube-proxy"}], "ipvs_node_files": [{"dest": "/etc/kubernetes/kube-proxy-config.yaml"}]}
    for variables, units in ((handed, ["kube-proxy"]), ({}, [])):
        assert evaluate(settings["kubelet_bootstrap_also_install"], **variables) == variables.get("ipvs_node_artifacts", [])
        assert evaluate(settings["kubelet_bootstrap_also_files"], **variables) == variables.get("ipvs_node_files", [])
        assert evaluate(settings["kubelet_bootstrap_also_running_units"], **variables) == units

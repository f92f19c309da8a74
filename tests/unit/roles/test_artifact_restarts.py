# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A changed binary restarts the service that runs it: the wiring between the roles that install
binaries (through the artifacts role), the module's changed_binaries and the roles' handlers,
read from the roles' own files; the control plane's restart list templated by Ansible's Templar."""
from __future__ import annotations

import os

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

# Ansible's plugin and collection loaders (the artifacts role's condition calls the collection's filter).
pytestmark = pytest.mark.usefixtures("ansible_plugin_loader")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLES = os.path.join(REPO, "roles")
# Each role that installs binaries, and the services they run (the daemons it must name).
SERVICES = {
    "etcd": {"etcd"},
    "control_plane": {"kube-apiserver", "kube-controller-manager", "kube-scheduler"},
    "container_runtime": {"containerd"},
    "kubelet_bootstrap": {"kubelet"},
    "ipvs": {"kube-proxy"},
}


def load(role: str, *parts: str):
    return DataLoader().load_from_file(os.path.join(ROLES, role, *parts), cache="none", trusted_as_template=True) or {}


def install_task(role: str) -> dict:
    tasks = [task for task in load(role, "tasks", "main.yml")
             if (task.get("ansible.builtin.include_role") or {}).get("name") == "kubeforge.cluster.artifacts"]
    assert len(tasks) == 1 and "loop" not in tasks[0], f"roles/{role}: one include of the artifacts role, one batch"
    return tasks[0]


def artifacts_list(role: str) -> list:
    """The batch as the role gives it: a list, or role variables added together (vars, then defaults)."""
    value = install_task(role)["vars"]["artifacts_list"]
    if isinstance(value, str):
        known = {**load(role, "defaults", "main.yml"), **load(role, "vars", "main.yml")}
        value = [entry for name in value.strip("{} ").split("+") for entry in known[name.strip()]]
    return value


@pytest.mark.parametrize("role", sorted(SERVICES))
def test_each_service_binary_is_a_daemon_and_notifies_a_handler_of_its_role(role):
    daemons = {daemon for entry in artifacts_list(role) for daemon in entry.get("daemons") or []}
    assert daemons == SERVICES[role]
    topics = install_task(role)["vars"]["artifacts_notify"]
    listened = {handler.get("listen") for handler in load(role, "handlers", "main.yml")}
    assert topics and set(topics) <= listened, f"roles/{role}: notifies {topics}, its handlers listen to {listened}"


def test_the_artifacts_role_registers_the_result_and_notifies_the_topics():
    task, keep = load("artifacts", "tasks", "main.yml")
    assert task["register"] == "artifacts_installed" and task["notify"] == "{{ artifacts_notify }}"
    assert "kubeforge.cluster.artifact_install" in task
    # The host's first install of a run verifies what earlier installs recorded; the later phases read it.
    assert task["kubeforge.cluster.artifact_install"]["verify_recorded"] == "{{ artifacts_verified_in_run is not defined }}"
    assert keep["ansible.builtin.set_fact"] == {"artifacts_verified_in_run": "{{ artifacts_installed.verified }}"}


def test_a_phase_skips_its_install_only_when_the_first_install_verified_all_of_it():
    task, _keep = load("artifacts", "tasks", "main.yml")
    kubelet = [{"name": "kubelet", "version": "1.36.4", "daemons": ["kubelet"]}]
    variables = {"artifacts_list": kubelet, "artifacts_bin_dir": "/usr/local/bin", "kubeforge_arch": "amd64"}
    templar = Templar(loader=DataLoader(), variables=variables)

    def runs(**more) -> bool:
        templar.available_variables = {**variables, **more}
        return templar.evaluate_conditional(task["when"])

    assert runs()  # the host's first install of the run
    assert runs(artifacts_verified_in_run=[])
    verified = '["kubelet","1.36.4","amd64","/usr/local/bin",["kubelet"],["kubelet"]]'
    assert not runs(artifacts_verified_in_run=[verified])
    assert runs(artifacts_verified_in_run=[verified.replace("1.36.4", "1.37.2")])


def restart_list(**hostvars) -> list:
    """The control-plane handler's restart list for one host, as Ansible templates it."""
    (handler,) = load("control_plane", "handlers", "main.yml")
    variables = {**load("control_plane", "vars", "main.yml"), **handler["vars"], "control_plane_restart_host": "cp1",
                 "hostvars": {"cp1": hostvars}, "inventory_hostname": "cp1"}
    return Templar(loader=DataLoader(), variables=variables).template(variables["control_plane_restart_list"])


def test_a_changed_binary_restarts_its_control_plane_service_and_nothing_else():
    changed = {"artifacts_installed": {"changed_binaries": ["kube-scheduler", "kubectl"]}}
    assert restart_list(**changed) == ["kube-scheduler"]
    assert restart_list() == []
    # A service started for the first time in this run is not restarted again.
    started = {"control_plane_written": {"started_units": ["kube-scheduler"]}}
    assert restart_list(**changed, **started) == []
    both = {"artifacts_installed": {"changed_binaries": ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]}}
    assert restart_list(**both) == ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]

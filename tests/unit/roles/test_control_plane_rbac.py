# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The control_plane role's RBAC objects (tasks/rbac.yml), rendered by Ansible's own templating as
the task sends them: valid for every supported minor, binding exactly the identities the pki
catalogue (plugins/filter/pki.py) issues outside system:masters, applied with the admin kubeconfig
and, only when the admin is refused, with the controller's super-admin; and applied before any
later phase uses the admin kubeconfig."""
from __future__ import annotations

import os

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from kubernetes_validate.utils import major_minor
from test_node_manifests import ROLES, VERSIONS, by_kind, role_tasks, validate, variables

from ansible_collections.kubeforge.cluster.plugins.filter import pki
from ansible_collections.kubeforge.cluster.plugins.module_utils import _control_plane

# Ansible's plugin and collection loaders for every test here (tests/unit/roles/conftest.py).
pytestmark = pytest.mark.usefixtures("ansible_plugin_loader")
REPO = os.path.dirname(ROLES)
ROLE = os.path.join(ROLES, "control_plane")
CREDENTIALS = "/srv/creds"
GROUPS = {"etcd": ["cp1", "cp2", "cp3"], "kube_control_plane": ["cp1", "cp2", "cp3"], "kube_node": ["w1"],
          "k8s_cluster": ["cp1", "cp2", "cp3", "w1"]}
HOSTVARS = {"cp1": {"kubeforge_node_ip": "192.168.56.11"}, "cp2": {"kubeforge_node_ip": "192.168.56.12"},
            "cp3": {"kubeforge_node_ip": "192.168.56.13"}, "w1": {"kubeforge_node_ip": "192.168.56.21"}}
PKI_SETTINGS = {"credentials_dir": CREDENTIALS, "service_cidr": "10.96.0.0/12", "cluster_domain": "cluster.local", "apiserver_port": 6443,
                "lb_address": "192.168.56.10", "lb_domain": "", "extra_sans": [], "endpoint": "https://127.0.0.1:6443",
                "kubelet_tls_mode": "bootstrap", "cluster_name": "kubernetes", "ca_valid_days": 3650, "cert_valid_days": 365}


def rendered(name: str):
    """A control_plane variable as a task of the role sees it on cp1."""
    scope = variables("control_plane", "cp1", {}, {"kubeforge_credentials_dir": CREDENTIALS}, ROLES)
    return Templar(loader=DataLoader(), variables=scope).template(scope[name])


def rbac_tasks() -> list[dict]:
    return [task for task, _vars in role_tasks(ROLE) if "kubeforge.cluster.kube_apply" in task]


def subjects(objects: list) -> dict:
    """{(kind, name) of a subject: the ClusterRole bound to it}."""
    return {(subject["kind"], subject["name"]): obj["roleRef"]["name"] for obj in objects for subject in obj["subjects"]}


@pytest.mark.parametrize("version", VERSIONS)
def test_the_objects_are_valid(version):
    objects = rendered("control_plane_rbac_objects")
    assert validate(objects, version) == [major_minor(version)] * len(objects)


def test_the_admin_group_and_the_apiservers_kubelet_client_are_bound_and_nothing_else():
    objects = rendered("control_plane_rbac_objects")
    assert set(by_kind(objects)) == {("ClusterRoleBinding", "kubeforge:cluster-admins"), ("ClusterRoleBinding", "kubeforge:apiserver-kubelet-client")}
    admin_cn, admin_groups = pki.CLIENTS["admin"]
    kubelet_client_cn, kubelet_client_groups = pki.CLIENTS["apiserver-kubelet-client"]
    assert admin_groups == [pki.ADMIN_GROUP] and kubelet_client_groups == []
    assert subjects(objects) == {("Group", pki.ADMIN_GROUP): "cluster-admin", ("User", kubelet_client_cn): "system:kubelet-api-admin"}
    assert admin_cn == "admin"


def test_the_bound_user_is_the_certificate_the_apiserver_presents_to_kubelets():
    plan = pki.pki_plan(GROUPS, HOSTVARS, PKI_SETTINGS)
    flag_file = _control_plane.paths({"pki_dir": "/etc/kubernetes/pki", "config_dir": "/etc/kubernetes", "audit_log_dir": "/var/log"})
    [sent] = [entry for entry in plan["hosts"]["cp1"] if entry["dest"] == flag_file["kubelet_client_cert"]]
    [cert] = [entry for entry in plan["certificates"] if entry["path"] == sent["src"]]
    assert ("User", cert["common_name"]) in subjects(rendered("control_plane_rbac_objects"))


def test_the_admin_applies_them_and_the_super_admin_only_when_the_admin_is_refused():
    first, second = rbac_tasks()
    assert first["kubeforge.cluster.kube_apply"]["kubeconfig"] == "{{ control_plane_operator_kubeconfig }}"
    assert second["kubeforge.cluster.kube_apply"]["kubeconfig"] == "{{ control_plane_super_admin_kubeconfig }}"
    assert "!= 'Forbidden'" in first["failed_when"] and "== 'Forbidden'" in second["when"]
    for task in (first, second):
        assert task["delegate_to"] == "localhost" and task["run_once"] is True  # the super-admin never leaves the controller
        assert task["kubeforge.cluster.kube_apply"]["objects"] == "{{ control_plane_rbac_objects }}"
    # The paths the tasks use are the ones the pki role writes.
    plan = pki.pki_plan(GROUPS, HOSTVARS, PKI_SETTINGS)
    assert rendered("control_plane_super_admin_kubeconfig") == plan["super_admin_kubeconfig"]
    assert rendered("control_plane_operator_kubeconfig") == plan["operator_kubeconfig"]


def test_the_bindings_exist_before_any_later_phase_uses_the_admin():
    with open(os.path.join(ROLE, "tasks", "main.yml"), encoding="utf-8") as handle:
        steps = [task.get("ansible.builtin.import_tasks") or task.get("ansible.builtin.include_tasks") for task in yaml.safe_load(handle)]
    # The apiservers are healthy by then; between the two, only the end of a check-mode run where none ever ran.
    between = steps[steps.index("service.yml") + 1:steps.index("rbac.yml")]
    assert all(step.endswith("/playbooks/tasks/end_preview.yml") for step in between), between
    with open(os.path.join(REPO, "site.yml"), encoding="utf-8") as handle:
        phases = [os.path.basename(play["ansible.builtin.import_playbook"]) for play in yaml.safe_load(handle) if "ansible.builtin.import_playbook" in play]
    users = [phase for phase in phases if phase[:-len(".yml")] in ("kubelet_bootstrap", "flannel", "coredns")]
    assert users and all(phases.index("control_plane.yml") < phases.index(phase) for phase in users)


def test_the_approvals_a_run_waits_for_are_made_from_the_controller_as_the_approver():
    """kubelet_bootstrap's approve task runs on the controller (in the task's worker) with the approver's own
    identity, from the kubeconfig the pki role writes for it there."""
    [task] = [task for task, _vars in role_tasks(os.path.join(ROLES, "kubelet_bootstrap")) if "kubeforge.cluster.kubelet_csr" in task]
    assert task["delegate_to"] == "localhost" and task["run_once"] is True
    assert task["kubeforge.cluster.kubelet_csr"]["kubeconfig"] == "{{ kubelet_bootstrap_controller_approver_kubeconfig }}"
    scope = variables("kubelet_bootstrap", "cp1", {}, {"kubeforge_credentials_dir": CREDENTIALS}, ROLES)
    path = Templar(loader=DataLoader(), variables=scope).template(scope["kubelet_bootstrap_controller_approver_kubeconfig"])
    plan = pki.pki_plan(GROUPS, HOSTVARS, PKI_SETTINGS)
    assert path == plan["csr_approver_kubeconfig"]
    [config] = [config for config in plan["kubeconfigs"] if config["dest"] == path]
    assert config["user"] == "kubeforge:kubelet-csr-approver" and config["server"] == "https://192.168.56.10:6443"

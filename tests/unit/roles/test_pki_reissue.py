# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pki role's batch, computed by its filter and signed by the x509_cert backend in a temporary directory:
a change of the inventory re-issues exactly the certificates whose names change (no containers needed)."""
from __future__ import annotations

import copy
import os

import pytest

from ansible_collections.kubeforge.cluster.plugins.filter.pki import pki_plan
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.backend import X509CertBackend

GROUPS = {
    "etcd": ["cp1", "cp2", "cp3"],
    "kube_control_plane": ["cp1", "cp2", "cp3"],
    "kube_node": ["w1"],
    "k8s_cluster": ["cp1", "cp2", "cp3", "w1"],
}
HOSTVARS = {"cp1": {"kubeforge_node_ip": "172.30.41.11"}, "cp2": {"kubeforge_node_ip": "172.30.41.12"},
            "cp3": {"kubeforge_node_ip": "172.30.41.13"}, "w1": {"kubeforge_node_ip": "172.30.41.21"}}


def settings(tmp_path, **change):
    base = {
        "credentials_dir": str(tmp_path / "credentials"), "service_cidr": "10.96.0.0/12", "cluster_domain": "cluster.local",
        "apiserver_port": 6443, "lb_address": "172.30.41.11", "lb_domain": "lab-api.kubeforge.internal", "extra_sans": [],
        "endpoint": "https://127.0.0.1:6443", "kubelet_tls_mode": "signed", "cluster_name": "kubernetes",
        "ca_valid_days": 3650, "cert_valid_days": 365,
    }
    return {**base, **change}


def sign(plan) -> dict:
    """Run the role's batch as its x509_cert task does; {relative path: result}."""
    for directory in plan["directories"]:
        os.makedirs(directory, exist_ok=True)
    result = X509CertBackend({"certificates": plan["certificates"], "key_type": "ecdsa", "renew_before_days": 30, "force": False}).run()
    root = os.path.dirname(plan["directories"][1])
    return {os.path.relpath(item["path"], root): item for item in result["results"]}


def changed(results: dict) -> dict:
    return {path: item["reasons"] for path, item in results.items() if item["changed"]}


@pytest.fixture
def signed_once(tmp_path):
    first = sign(pki_plan(GROUPS, HOSTVARS, settings(tmp_path)))
    assert all(item["changed"] for item in first.values())
    assert changed(sign(pki_plan(GROUPS, HOSTVARS, settings(tmp_path)))) == {}  # idempotent
    return tmp_path


def test_changing_the_load_balancer_address_reissues_only_the_apiserver_certificate(signed_once):
    results = sign(pki_plan(GROUPS, HOSTVARS, settings(signed_once, lb_address="172.30.41.100")))
    assert changed(results) == {"pki/apiserver.crt": ["sans_changed"]}
    assert "172.30.41.100" in results["pki/apiserver.crt"]["ip_addresses"] and "172.30.41.11" in results["pki/apiserver.crt"]["ip_addresses"]


def test_changing_the_load_balancer_name_reissues_only_the_apiserver_certificate(signed_once):
    assert changed(sign(pki_plan(GROUPS, HOSTVARS, settings(signed_once, lb_domain="api.example.org")))) == {"pki/apiserver.crt": ["sans_changed"]}


def test_adding_a_control_plane_host_reissues_the_apiserver_and_adds_its_own(signed_once):
    groups = copy.deepcopy(GROUPS)
    groups["kube_control_plane"].append("cp4")
    groups["k8s_cluster"].append("cp4")
    hostvars = {**HOSTVARS, "cp4": {"kubeforge_node_ip": "172.30.41.14"}}
    assert changed(sign(pki_plan(groups, hostvars, settings(signed_once)))) == {
        "pki/apiserver.crt": ["sans_changed"],
        "pki/kubelet/cp4-client.crt": ["missing", "key_missing"],
        "pki/kubelet/cp4.crt": ["missing", "key_missing"],
    }


def test_adding_a_worker_touches_no_existing_certificate(signed_once):
    groups = copy.deepcopy(GROUPS)
    groups["kube_node"].append("w2")
    groups["k8s_cluster"].append("w2")
    hostvars = {**HOSTVARS, "w2": {"kubeforge_node_ip": "172.30.41.22"}}
    assert set(changed(sign(pki_plan(groups, hostvars, settings(signed_once))))) == {"pki/kubelet/w2-client.crt", "pki/kubelet/w2.crt"}


def test_moving_an_etcd_member_reissues_its_certificate_and_the_apiserver(signed_once):
    hostvars = {**HOSTVARS, "cp2": {"kubeforge_node_ip": "172.30.41.42"}}
    assert changed(sign(pki_plan(GROUPS, hostvars, settings(signed_once)))) == {
        "pki/apiserver.crt": ["sans_changed"],
        "pki/etcd/member-cp2.crt": ["sans_changed"],
        "pki/kubelet/cp2.crt": ["sans_changed"],
    }


def test_a_pki_with_system_masters_identities_is_reissued_least_privileged(tmp_path):
    """A cluster built before the admin and the apiserver's kubelet client left system:masters: the
    next run re-issues exactly those two (subject_changed, keys kept) and adds the super-admin; the
    apiserver reads the new kubelet client certificate, so it is restarted (pki_changed_services)."""
    old = pki_plan(GROUPS, HOSTVARS, settings(tmp_path))
    old["certificates"] = [entry for entry in old["certificates"] if not entry["path"].endswith("/super-admin.crt")]
    for entry in old["certificates"]:
        if entry["path"].endswith(("/admin.crt", "/apiserver-kubelet-client.crt")):
            entry["organizations"] = ["system:masters"]
    sign(old)
    new = pki_plan(GROUPS, HOSTVARS, settings(tmp_path))
    results = sign(new)
    assert changed(results) == {
        "pki/admin.crt": ["subject_changed"],
        "pki/apiserver-kubelet-client.crt": ["subject_changed"],
        "pki/super-admin.crt": ["missing", "key_missing"],
    }
    assert results["pki/admin.crt"]["subject"] == "CN=admin,O=kubeforge:cluster-admins"
    assert results["pki/apiserver-kubelet-client.crt"]["subject"] == "CN=kube-apiserver-kubelet-client"
    kubelet_client = [entry for entry in new["hosts"]["cp1"] if entry["dest"] == "/etc/kubernetes/pki/apiserver-kubelet-client.crt"]
    assert [entry["services"] for entry in kubelet_client] == [["kube-apiserver"]]

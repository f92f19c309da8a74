# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pki filters: the certificate list, SANs, what each host receives, kubeconfigs and the report table."""
from __future__ import annotations

import base64
import copy
import datetime

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
# The official client (requirements-test.txt): the kubeconfigs the collection writes must load with it.
from kubernetes.config import kube_config as kubernetes_config

from ansible_collections.kubeforge.cluster.plugins.filter import pki

SETTINGS = {
    "credentials_dir": "/srv/creds",
    "service_cidr": "10.96.0.0/12",
    "cluster_domain": "cluster.local",
    "apiserver_port": "6443",
    "lb_address": "192.168.56.10",
    "lb_domain": "k8s-api.example.internal",
    "extra_sans": ["203.0.113.7", "k8s.example.com"],
    "endpoint": "https://127.0.0.1:6443",
    "kubelet_tls_mode": "bootstrap",
    "cluster_name": "kubernetes",
    "ca_valid_days": "3650",
    "cert_valid_days": "365",
}
GROUPS = {
    "all": ["master1", "master2", "master3", "worker1", "etcd4"],
    "etcd": ["master1", "master2", "master3", "etcd4"],
    "kube_control_plane": ["master1", "master2", "master3"],
    "kube_node": ["worker1"],
    "k8s_cluster": ["master1", "master2", "master3", "worker1"],
}
HOSTVARS = {
    "master1": {"ansible_host": "192.168.56.11"},
    "master2": {"ansible_host": "192.168.56.12", "kubeforge_node_ip": "10.0.0.12"},
    "master3": {"ansible_host": "192.168.56.13"},
    "worker1": {"ansible_host": "192.168.56.21"},
    "etcd4": {"ansible_host": "192.168.56.31"},
}


def plan(settings=None, groups=None, hostvars=None):
    return pki.pki_plan(groups or copy.deepcopy(GROUPS), hostvars or copy.deepcopy(HOSTVARS), {**SETTINGS, **(settings or {})})


def by_name(result):
    """Certificates keyed by their file name relative to the pki directory, without .crt."""
    return {entry["path"][len("/srv/creds/pki/"):-len(".crt")]: entry for entry in result["certificates"]}


def host_files(result, host):
    return {entry["dest"]: entry for entry in result["hosts"][host]}


# -- certificates -------------------------------------------------------------------------------

def test_apiserver_sans_are_exactly_the_issue_list():
    apiserver = by_name(plan())["apiserver"]
    assert apiserver["common_name"] == "kube-apiserver" and apiserver["profile"] == "server"
    assert apiserver["dns_names"] == [
        "master1", "master2", "master3", "k8s-api.example.internal", "localhost", "kubernetes", "kubernetes.default",
        "kubernetes.default.svc", "kubernetes.default.svc.cluster", "kubernetes.default.svc.cluster.local", "k8s.example.com",
    ]
    # kubeforge_node_ip wins over ansible_host (master2).
    assert apiserver["ip_addresses"] == ["192.168.56.11", "10.0.0.12", "192.168.56.13", "192.168.56.10", "127.0.0.1", "10.96.0.1", "203.0.113.7"]


def test_apiserver_sans_without_load_balancer_and_other_domain():
    apiserver = by_name(plan({"lb_address": "", "lb_domain": "", "extra_sans": [], "cluster_domain": "corp.internal.",
                              "service_cidr": "172.20.0.0/16"}))["apiserver"]
    assert "kubernetes.default.svc.corp.internal" in apiserver["dns_names"]
    assert "kubernetes.default.svc.cluster" in apiserver["dns_names"]
    assert "192.168.56.10" not in apiserver["ip_addresses"] and "172.20.0.1" in apiserver["ip_addresses"]
    assert "" not in apiserver["dns_names"]


def test_host_named_by_an_ip_goes_into_the_ip_sans():
    groups = {"etcd": ["10.1.1.1"], "kube_control_plane": ["10.1.1.1"], "kube_node": [], "k8s_cluster": ["10.1.1.1"]}
    result = plan(groups=groups, hostvars={"10.1.1.1": {}})
    apiserver = by_name(result)["apiserver"]
    assert "10.1.1.1" in apiserver["ip_addresses"] and "10.1.1.1" not in apiserver["dns_names"]
    member = by_name(result)["etcd/member-10.1.1.1"]
    assert member["dns_names"] == ["localhost"] and member["ip_addresses"] == ["10.1.1.1", "127.0.0.1"]


def test_ipv6_addresses_are_normalised_and_bracketed_in_the_operator_url():
    result = plan({"lb_address": "FD00:0:0::10", "service_cidr": "fd00:96::/108", "extra_sans": []})
    assert "fd00::10" in by_name(result)["apiserver"]["ip_addresses"]
    assert "fd00:96::1" in by_name(result)["apiserver"]["ip_addresses"]
    operator = [k for k in result["kubeconfigs"] if k["dest"] == "/srv/creds/admin.kubeconfig"][0]
    assert operator["server"] == "https://[fd00::10]:6443"


@pytest.mark.parametrize("name, common_name, organizations, profile, signer", [
    ("ca", "kubernetes-ca", [], "ca", None),
    ("etcd/ca", "etcd-ca", [], "ca", None),
    ("front-proxy-ca", "front-proxy-ca", [], "ca", None),
    ("admin", "admin", ["kubeforge:cluster-admins"], "client", "ca"),
    ("super-admin", "kubeforge:super-admin", ["system:masters"], "client", "ca"),
    ("kube-controller-manager", "system:kube-controller-manager", [], "client", "ca"),
    ("kube-scheduler", "system:kube-scheduler", [], "client", "ca"),
    ("kube-proxy", "system:kube-proxy", [], "client", "ca"),
    ("apiserver-kubelet-client", "kube-apiserver-kubelet-client", [], "client", "ca"),
    ("apiserver-etcd-client", "kube-apiserver-etcd-client", [], "client", "etcd/ca"),
    ("front-proxy-client", "front-proxy-client", [], "client", "front-proxy-ca"),
    ("etcd/healthcheck-client", "kube-etcd-healthcheck-client", [], "client", "etcd/ca"),
])
def test_identities(name, common_name, organizations, profile, signer):
    entry = by_name(plan())[name]
    assert (entry["common_name"], entry["organizations"], entry["profile"]) == (common_name, organizations, profile)
    if signer is None:
        assert "ca_cert" not in entry and entry["valid_days"] == 3650
    else:
        assert entry["ca_cert"] == f"/srv/creds/pki/{signer}.crt" and entry["ca_key"] == f"/srv/creds/pki/{signer}.key"
        assert entry["valid_days"] == 365


@pytest.mark.parametrize("mode", ["bootstrap", "signed"])
def test_only_the_break_glass_identity_is_in_system_masters(mode):
    """system:masters bypasses RBAC and cannot be revoked: the operator's admin and the apiserver's kubelet
    client get their rights from bindings instead (roles/control_plane/templates/rbac.yaml.j2)."""
    certs = by_name(plan({"kubelet_tls_mode": mode}))
    assert [name for name, entry in certs.items() if "system:masters" in entry["organizations"]] == ["super-admin"]
    assert certs["admin"]["organizations"] == [pki.ADMIN_GROUP] == ["kubeforge:cluster-admins"]
    assert certs["apiserver-kubelet-client"]["organizations"] == []


@pytest.mark.parametrize("mode", ["bootstrap", "signed"])
def test_the_super_admin_stays_on_the_controller(mode):
    result = plan({"kubelet_tls_mode": mode})
    assert result["super_admin_kubeconfig"] == "/srv/creds/super-admin.kubeconfig"
    [config] = [config for config in result["kubeconfigs"] if config["dest"] == result["super_admin_kubeconfig"]]
    assert config["cert"] == "/srv/creds/pki/super-admin.crt" and config["server"] == "https://192.168.56.10:6443"
    superuser = {"/srv/creds/pki/super-admin.crt", "/srv/creds/pki/super-admin.key", "/srv/creds/super-admin.kubeconfig"}
    for host, files in result["hosts"].items():
        assert not {entry["src"] for entry in files} & superuser, host
        assert not [entry["dest"] for entry in files if "super-admin" in entry["dest"]], host
    # The control-plane hosts' admin kubeconfig is the admin's (group kubeforge:cluster-admins), not the super-admin's.
    [admin] = [entry for entry in result["hosts"]["master1"] if entry["dest"] == "/etc/kubernetes/admin.kubeconfig"]
    [built] = [config for config in result["kubeconfigs"] if config["dest"] == admin["src"]]
    assert built["cert"] == "/srv/creds/pki/admin.crt"


def test_a_plan_that_would_send_a_system_masters_identity_to_a_host_is_refused(monkeypatch):
    monkeypatch.setitem(pki.CLIENTS, "admin", ("admin", ["system:masters"]))
    with pytest.raises(AnsibleFilterError, match=r"system:masters material would reach a host: master1:/etc/kubernetes/admin.kubeconfig"):
        plan()


def test_etcd_member_certificates():
    certs = by_name(plan())
    assert certs["etcd/member-master2"]["profile"] == "peer"
    assert certs["etcd/member-master2"]["dns_names"] == ["master2", "localhost"]
    assert certs["etcd/member-master2"]["ip_addresses"] == ["10.0.0.12", "127.0.0.1"]
    assert certs["etcd/member-etcd4"]["ca_cert"] == "/srv/creds/pki/etcd/ca.crt"


def test_bootstrap_mode_signs_nothing_per_node():
    result = plan()
    assert not [name for name in by_name(result) if name.startswith("kubelet/")]
    assert len(result["certificates"]) == 3 + 1 + 7 + 2 + 4 + 1
    assert "/srv/creds/pki/kubelet" not in result["directories"]


def test_signed_mode_signs_each_nodes_kubelet_certificates():
    result = plan({"kubelet_tls_mode": "signed"})
    certs = by_name(result)
    for host, address in (("master1", "192.168.56.11"), ("worker1", "192.168.56.21")):
        client, server = certs[f"kubelet/{host}-client"], certs[f"kubelet/{host}"]
        assert (client["common_name"], client["organizations"], client["profile"]) == (f"system:node:{host}", ["system:nodes"], "client")
        assert (server["common_name"], server["profile"], server["dns_names"], server["ip_addresses"]) == (
            f"system:node:{host}", "server", [host], [address])
    assert "kubelet/etcd4" not in certs  # etcd-only hosts run no kubelet
    kubelet_config = host_files(result, "worker1")["/etc/kubernetes/kubelet.kubeconfig"]
    assert kubelet_config["src"] == "/srv/creds/kubeconfig/kubelet-worker1.kubeconfig" and kubelet_config["services"] == ["kubelet"]


def test_every_path_is_written_by_one_entry_and_signed_after_its_ca():
    result = plan({"kubelet_tls_mode": "signed"})
    paths = [entry["path"] for entry in result["certificates"]]
    assert len(paths) == len(set(paths))
    seen = set()
    for entry in result["certificates"]:
        assert entry.get("ca_cert") is None or entry["ca_cert"] in seen
        seen.add(entry["path"])


# -- distribution -------------------------------------------------------------------------------

CA_KEYS = {"/srv/creds/pki/ca.key", "/srv/creds/pki/etcd/ca.key", "/srv/creds/pki/front-proxy-ca.key"}


@pytest.mark.parametrize("mode", ["bootstrap", "signed"])
def test_no_worker_and_no_etcd_host_receives_a_ca_key(mode):
    result = plan({"kubelet_tls_mode": mode})
    for host in ("worker1", "etcd4"):
        assert not {entry["src"] for entry in result["hosts"][host]} & CA_KEYS
    for host in ("master1", "master2", "master3"):
        keys = {entry["src"] for entry in result["hosts"][host]} & CA_KEYS
        assert keys == {"/srv/creds/pki/ca.key"}  # kube-controller-manager signs with it; etcd and front-proxy CA keys stay home


def test_control_plane_host_files():
    files = host_files(plan(), "master1")
    assert {dest: (entry["mode"], entry["services"]) for dest, entry in files.items()} == {
        "/etc/kubernetes/pki/ca.crt": ("0644", ["kube-apiserver", "kube-controller-manager", "kubelet"]),
        "/etc/kubernetes/pki/ca.key": ("0600", ["kube-controller-manager"]),
        "/etc/kubernetes/pki/apiserver.crt": ("0644", ["kube-apiserver"]),
        "/etc/kubernetes/pki/apiserver.key": ("0600", ["kube-apiserver"]),
        "/etc/kubernetes/pki/apiserver-kubelet-client.crt": ("0644", ["kube-apiserver"]),
        "/etc/kubernetes/pki/apiserver-kubelet-client.key": ("0600", ["kube-apiserver"]),
        "/etc/kubernetes/pki/apiserver-etcd-client.crt": ("0644", ["kube-apiserver"]),
        "/etc/kubernetes/pki/apiserver-etcd-client.key": ("0600", ["kube-apiserver"]),
        "/etc/kubernetes/pki/etcd-ca.crt": ("0644", ["kube-apiserver"]),
        "/etc/kubernetes/pki/front-proxy-ca.crt": ("0644", ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]),
        "/etc/kubernetes/pki/front-proxy-client.crt": ("0644", ["kube-apiserver"]),
        "/etc/kubernetes/pki/front-proxy-client.key": ("0600", ["kube-apiserver"]),
        "/etc/kubernetes/pki/sa.key": ("0600", ["kube-apiserver", "kube-controller-manager"]),
        "/etc/kubernetes/pki/sa.pub": ("0644", ["kube-apiserver"]),
        "/etc/kubernetes/admin.kubeconfig": ("0600", []),
        "/etc/kubernetes/controller-manager.kubeconfig": ("0600", ["kube-controller-manager"]),
        "/etc/kubernetes/scheduler.kubeconfig": ("0600", ["kube-scheduler"]),
        "/etc/kubernetes/kubelet-csr-approver.kubeconfig": ("0600", []),
        "/etc/kubernetes/kube-proxy.kubeconfig": ("0600", ["kube-proxy"]),
        "/etc/etcd/pki/ca.crt": ("0644", ["etcd"]),
        "/etc/etcd/pki/member.crt": ("0644", ["etcd"]),
        "/etc/etcd/pki/member.key": ("0600", ["etcd"]),
        "/etc/etcd/pki/healthcheck-client.crt": ("0644", []),
        "/etc/etcd/pki/healthcheck-client.key": ("0600", []),
    }
    assert files["/etc/etcd/pki/member.crt"]["src"] == "/srv/creds/pki/etcd/member-master1.crt"


def test_worker_receives_the_ca_certificate_and_kube_proxy_kubeconfig_only():
    assert {dest: entry["src"] for dest, entry in host_files(plan(), "worker1").items()} == {
        "/etc/kubernetes/pki/ca.crt": "/srv/creds/pki/ca.crt",
        "/etc/kubernetes/kube-proxy.kubeconfig": "/srv/creds/kubeconfig/kube-proxy.kubeconfig",
    }


def test_etcd_only_host_receives_etcd_material_only():
    files = host_files(plan({"kubelet_tls_mode": "signed"}), "etcd4")
    assert sorted(files) == ["/etc/etcd/pki/ca.crt", "/etc/etcd/pki/healthcheck-client.crt", "/etc/etcd/pki/healthcheck-client.key",
                             "/etc/etcd/pki/member.crt", "/etc/etcd/pki/member.key"]


def test_kubeconfigs_point_at_the_endpoint_and_the_operator_at_the_load_balancer():
    result = plan({"endpoint": "https://127.0.0.1:6443"})
    assert {config["dest"]: (config["server"], config["user"]) for config in result["kubeconfigs"]} == {
        "/srv/creds/kubeconfig/admin.kubeconfig": ("https://127.0.0.1:6443", "admin"),
        "/srv/creds/kubeconfig/controller-manager.kubeconfig": ("https://127.0.0.1:6443", "system:kube-controller-manager"),
        "/srv/creds/kubeconfig/scheduler.kubeconfig": ("https://127.0.0.1:6443", "system:kube-scheduler"),
        "/srv/creds/kubeconfig/kube-proxy.kubeconfig": ("https://127.0.0.1:6443", "system:kube-proxy"),
        "/srv/creds/kubeconfig/kubelet-csr-approver.kubeconfig": ("https://127.0.0.1:6443", "kubeforge:kubelet-csr-approver"),
        "/srv/creds/admin.kubeconfig": ("https://192.168.56.10:6443", "admin"),  # the operator's
        "/srv/creds/super-admin.kubeconfig": ("https://192.168.56.10:6443", "kubeforge:super-admin"),  # break glass
        # The approvals a run waits for, made from the controller with the approver's own identity.
        "/srv/creds/kubelet-csr-approver.kubeconfig": ("https://192.168.56.10:6443", "kubeforge:kubelet-csr-approver"),
    }
    assert result["csr_approver_kubeconfig"] == "/srv/creds/kubelet-csr-approver.kubeconfig"
    single = plan({"lb_address": ""}, groups={**GROUPS, "kube_control_plane": ["master2"]})
    assert [c for c in single["kubeconfigs"] if c["dest"] == "/srv/creds/admin.kubeconfig"][0]["server"] == "https://10.0.0.12:6443"


@pytest.mark.parametrize("change, fragment", [
    ({"kubelet_tls_mode": "rotate"}, "kubelet_tls_mode 'rotate' must be one of bootstrap, signed"),
    ({"credentials_dir": "creds"}, "credentials_dir 'creds' must be an absolute path"),
    ({"endpoint": "http://127.0.0.1:6443"}, "must be an https:// URL"),
    ({"endpoint": ""}, "endpoint is not set"),
    ({"service_cidr": "10.96.0.1/12"}, "kube_service_cidr '10.96.0.1/12' is not a CIDR"),
])
def test_bad_settings(change, fragment):
    with pytest.raises(AnsibleFilterError, match=fragment):
        plan(change)


# -- kubeconfigs and the service-account public key ----------------------------------------------

def _pem_pair():
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return key, key_pem


def test_controller_files_embed_the_certificates():
    result = plan()
    sa_key, sa_pem = _pem_pair()
    contents = [sa_pem.strip() if path.endswith("sa.key") else f"-----BEGIN X-----\n{path}\n-----END X-----" for path in result["controller_inputs"]]
    files = {entry["dest"]: entry for entry in pki.pki_controller_files(result, contents)}
    assert set(files) == {config["dest"] for config in result["kubeconfigs"]} | {"/srv/creds/pki/sa.pub"}
    proxy = files["/srv/creds/kubeconfig/kube-proxy.kubeconfig"]
    assert proxy["mode"] == "0600" and proxy["content"].startswith("# Managed by kubeforge.cluster")
    config = yaml.safe_load(proxy["content"])
    assert config["current-context"] == "system:kube-proxy@kubernetes"
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    decoded = base64.b64decode(config["users"][0]["user"]["client-certificate-data"]).decode()
    assert decoded == "-----BEGIN X-----\n/srv/creds/pki/kube-proxy.crt\n-----END X-----\n"
    assert base64.b64decode(config["users"][0]["user"]["client-key-data"]).decode().splitlines()[1] == "/srv/creds/pki/kube-proxy.key"
    assert base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]).decode().splitlines()[1] == "/srv/creds/pki/ca.crt"
    public = serialization.load_pem_public_key(files["/srv/creds/pki/sa.pub"]["content"].encode())
    assert public.public_numbers() == sa_key.public_key().public_numbers()
    assert files["/srv/creds/pki/sa.pub"]["mode"] == "0644"


def test_controller_files_need_every_input():
    result = plan()
    with pytest.raises(AnsibleFilterError, match="inputs but"):
        pki.pki_controller_files(result, ["x"])


def test_kubeconfig_rejects_non_pem():
    with pytest.raises(AnsibleFilterError, match="not PEM"):
        pki.pki_kubeconfig({"server": "https://a:6443", "cluster": "c", "user": "u"}, "junk", "junk", "junk")


def test_kubeconfig_loads_with_the_kubernetes_client(tmp_path):
    key, key_pem = _pem_pair()
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "u")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    text = pki.pki_kubeconfig({"server": "https://10.0.0.1:6443", "cluster": "lab", "user": "jane"}, cert_pem, cert_pem, key_pem)
    loader = kubernetes_config.KubeConfigLoader(config_dict=yaml.safe_load(text), config_base_path=str(tmp_path))
    assert loader.current_context["name"] == "jane@lab"
    assert loader.current_context["context"]["user"] == "jane"


# -- restart order and the report ---------------------------------------------------------------

def test_changed_services_come_in_restart_order():
    assert pki.pki_changed_services(["kubelet", "etcd", "kube-apiserver", "custom", "kube-proxy"]) == [
        "etcd", "kube-apiserver", "kubelet", "kube-proxy", "custom"]
    assert pki.pki_changed_services(None) == []


def test_report_table_flags_and_sorts():
    reports = {
        "w1": [{"path": "/etc/kubernetes/pki/ca.crt", "source": "file", "subject": "CN=kubernetes-ca", "issuer": "CN=kubernetes-ca",
                "days_left": 3000, "fingerprint_sha256": "AA", "dns_names": [], "ip_addresses": []},
               {"path": "/etc/kubernetes/kube-proxy.kubeconfig", "source": "kubeconfig cluster CA", "subject": "CN=kubernetes-ca",
                "issuer": "CN=kubernetes-ca", "days_left": 3000, "fingerprint_sha256": "AA"},
               {"path": "/etc/kubernetes/kube-proxy.kubeconfig", "source": "kubeconfig client", "subject": "CN=system:kube-proxy",
                "issuer": "CN=kubernetes-ca", "days_left": 12, "fingerprint_sha256": "BB"}],
        "cp1": [{"path": "/etc/kubernetes/pki/apiserver.crt", "source": "file", "subject": "CN=kube-apiserver", "issuer": "CN=kubernetes-ca",
                 "days_left": -2, "dns_names": ["kubernetes"], "ip_addresses": ["10.96.0.1"]},
                {"path": "/etc/kubernetes/pki/broken.crt", "source": "file", "error": "unable to load certificate"}],
    }
    lines = pki.pki_report_table(reports, 30).splitlines()
    assert lines[0].split() == ["HOST", "FILE", "SUBJECT", "ISSUER", "DAYS", "FLAG", "SANS"]
    body = [line.split() for line in lines[1:-1]]
    assert [row[0] for row in body] == ["cp1", "cp1", "w1", "w1"]  # the kubeconfig's copy of the CA file is left out
    assert body[0][-3:] == ["-2", "EXPIRED", "kubernetes,10.96.0.1"]
    assert "UNREADABLE" in lines[2] and "unable to load certificate" in lines[2]
    assert body[2][1:3] == ["/etc/kubernetes/kube-proxy.kubeconfig", "(kubeconfig"] and "RENEW" in lines[3]
    assert lines[-1] == "4 certificates, 3 flagged (expiring within 30 days, expired or unreadable)"


def test_report_table_without_certificates():
    assert pki.pki_report_table({"w1": []}) == "no certificates found"


def test_filters_are_registered():
    assert set(pki.FilterModule().filters()) == {"pki_plan", "pki_controller_files", "pki_kubeconfig", "pki_changed_services", "pki_report_table"}


def test_hosts_drop_the_control_plane_and_etcd_files_they_no_longer_need():
    result = plan({"kubelet_tls_mode": "signed"})
    assert result["absent"]["master1"] == []
    worker = set(result["absent"]["worker1"])
    assert "/etc/kubernetes/pki/ca.key" in worker and "/etc/etcd/pki/member.key" in worker and "/etc/kubernetes/admin.kubeconfig" in worker
    # Files every node holds (and the kubelet's, which its own phase may write in bootstrap mode) are never pruned.
    assert not worker & {"/etc/kubernetes/pki/ca.crt", "/etc/kubernetes/kube-proxy.kubeconfig", "/etc/kubernetes/pki/kubelet.key",
                         "/etc/kubernetes/kubelet.kubeconfig"}
    assert set(result["absent"]["etcd4"]) == worker - {"/etc/etcd/pki/ca.crt", "/etc/etcd/pki/member.crt", "/etc/etcd/pki/member.key",
                                                       "/etc/etcd/pki/healthcheck-client.crt", "/etc/etcd/pki/healthcheck-client.key"}
    for host, files in result["hosts"].items():
        assert not {entry["dest"] for entry in files} & set(result["absent"][host])


@pytest.mark.parametrize("key", ["cluster_name", "ca_valid_days", "cert_valid_days"])
def test_the_role_settings_have_no_second_default_here(key):
    """The pki role passes them (pki_cluster_name, pki_*_valid_days); without one the plan fails, it does not guess."""
    settings = {name: value for name, value in SETTINGS.items() if name != key}
    with pytest.raises(AnsibleFilterError, match=f"{key} is not set"):
        pki.pki_plan(copy.deepcopy(GROUPS), copy.deepcopy(HOSTVARS), settings)
    assert pki.pki_plan(copy.deepcopy(GROUPS), copy.deepcopy(HOSTVARS), dict(settings, **{key: SETTINGS[key]}))["certificates"]

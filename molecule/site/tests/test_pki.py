# SPDX-License-Identifier: GPL-3.0-or-later
"""What the pki phase leaves on the hosts (read-only checks): every certificate chains to its CA, the
apiserver and etcd certificates carry the scenario's names, modes and owners are as stated, and no
host holds material it does not need (no CA key on a worker)."""
from __future__ import annotations

import os
import stat

import pytest
import testinfra

CONTROL_PLANE = {"site-cp1": "172.30.41.11", "site-cp2": "172.30.41.12", "site-cp3": "172.30.41.13"}
WORKERS = {"site-w1": "172.30.41.21"}
KPKI = "/etc/kubernetes/pki"
EPKI = "/etc/etcd/pki"
APISERVER_DNS = {
    "site-cp1", "site-cp2", "site-cp3", "lab-api.kubeforge.internal", "localhost", "kubernetes", "kubernetes.default",
    "kubernetes.default.svc", "kubernetes.default.svc.cluster", "kubernetes.default.svc.cluster.local",
}
APISERVER_IPS = {"172.30.41.11", "172.30.41.12", "172.30.41.13", "127.0.0.1", "10.96.0.1"}  # the LB is 172.30.41.11
CONTROL_PLANE_FILES = {
    f"{KPKI}/ca.crt": 0o644, f"{KPKI}/ca.key": 0o600, f"{KPKI}/apiserver.crt": 0o644, f"{KPKI}/apiserver.key": 0o600,
    f"{KPKI}/apiserver-kubelet-client.crt": 0o644, f"{KPKI}/apiserver-kubelet-client.key": 0o600,
    f"{KPKI}/apiserver-etcd-client.crt": 0o644, f"{KPKI}/apiserver-etcd-client.key": 0o600, f"{KPKI}/etcd-ca.crt": 0o644,
    f"{KPKI}/front-proxy-ca.crt": 0o644, f"{KPKI}/front-proxy-client.crt": 0o644, f"{KPKI}/front-proxy-client.key": 0o600,
    f"{KPKI}/sa.key": 0o600, f"{KPKI}/sa.pub": 0o644,
    "/etc/kubernetes/admin.kubeconfig": 0o600, "/etc/kubernetes/controller-manager.kubeconfig": 0o600,
    "/etc/kubernetes/scheduler.kubeconfig": 0o600, "/etc/kubernetes/kube-proxy.kubeconfig": 0o600,
}
ETCD_FILES = {f"{EPKI}/ca.crt": 0o644, f"{EPKI}/member.crt": 0o644, f"{EPKI}/member.key": 0o600,
              f"{EPKI}/healthcheck-client.crt": 0o644, f"{EPKI}/healthcheck-client.key": 0o600}
WORKER_FILES = {f"{KPKI}/ca.crt": 0o644, "/etc/kubernetes/kube-proxy.kubeconfig": 0o600}


def node(name: str):
    """One scenario host, for tests that apply to some hosts only (parametrized by name, never skipped)."""
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


def name_of(host) -> str:
    return host.backend.get_hostname()


def groups_of(host) -> set:
    return set(host.ansible.get_variables().get("group_names", []))


def expected_files(host) -> dict:
    groups = groups_of(host)
    files = {}
    if "kube_control_plane" in groups:
        files.update(CONTROL_PLANE_FILES)
    if "etcd" in groups:
        files.update(ETCD_FILES)
    if "k8s_cluster" in groups:
        files.update(WORKER_FILES)
    return files


def listed(host, *directories) -> set:
    """Every file below these directories (those that exist), in one command."""
    out = host.check_output(f"find {' '.join(directories)} -type f 2>/dev/null || true")
    return {line for line in out.splitlines() if line}


def verify(host, ca: str, *certs: str) -> None:
    done = host.run(f"openssl verify -CAfile {ca} {' '.join(certs)}")
    assert done.rc == 0 and done.stdout.count(": OK") == len(certs), done.stdout + done.stderr


def kubeconfig_field(host, path: str, field: str) -> str:
    return host.check_output(f"sed -n 's/^ *{field}: *//p' {path} | base64 -d")


def stat_all(host, paths) -> dict:
    """{path: (owner, group, mode)} in one command."""
    out = host.check_output("stat -c '%n %U %G %a' " + " ".join(sorted(paths)))
    return {path: (user, group, int(mode, 8)) for path, user, group, mode in (line.split() for line in out.splitlines())}


def test_expected_files_with_modes_and_owners(host):
    expected = expected_files(host)
    # The pki directories hold exactly what this host needs; /etc/kubernetes also gets other phases' files.
    assert listed(host, KPKI, EPKI) == {path for path in expected if path.startswith((KPKI, EPKI))}
    assert stat_all(host, expected) == {path: ("root", "root", mode) for path, mode in expected.items()}


# Control-plane hosts hold the cluster CA key (kube-controller-manager signs with it); no other host does.
@pytest.mark.parametrize("name", sorted(WORKERS))
def test_no_ca_key_outside_the_control_plane(name):
    host = node(name)
    keys = [path for path in listed(host, "/etc/kubernetes", "/etc/etcd") if path.endswith(".key")]
    # Only an etcd member's own key and the healthcheck client's may be there.
    assert keys == [] or "etcd" in groups_of(host) and set(keys) == {f"{EPKI}/member.key", f"{EPKI}/healthcheck-client.key"}
    assert not host.file(f"{KPKI}/ca.key").exists and not host.file(f"{KPKI}/front-proxy-ca.key").exists
    # The kube-proxy client key embedded in the kubeconfig is not the CA's key.
    if "k8s_cluster" in groups_of(host):
        ca_pub = host.check_output(f"openssl x509 -in {KPKI}/ca.crt -noout -pubkey")
        proxy_pub = host.check_output("sed -n 's/^ *client-key-data: *//p' /etc/kubernetes/kube-proxy.kubeconfig | base64 -d | openssl pkey -pubout")
        assert proxy_pub and proxy_pub != ca_pub


@pytest.mark.parametrize("name", sorted(CONTROL_PLANE))
def test_control_plane_certificates_chain_to_their_cas(name):
    host = node(name)
    verify(host, f"{KPKI}/ca.crt", f"{KPKI}/apiserver.crt", f"{KPKI}/apiserver-kubelet-client.crt")
    verify(host, f"{KPKI}/etcd-ca.crt", f"{KPKI}/apiserver-etcd-client.crt")
    verify(host, f"{KPKI}/front-proxy-ca.crt", f"{KPKI}/front-proxy-client.crt")
    for name in ("admin", "controller-manager", "scheduler", "kube-proxy"):
        path = f"/etc/kubernetes/{name}.kubeconfig"
        done = host.run(f"sed -n 's/^ *client-certificate-data: *//p' {path} | base64 -d | openssl verify -CAfile {KPKI}/ca.crt")
        assert done.rc == 0 and ": OK" in done.stdout, path
        assert kubeconfig_field(host, path, "certificate-authority-data") == host.file(f"{KPKI}/ca.crt").content_string.strip()
        assert "server: https://127.0.0.1:6443" in host.file(path).content_string


def subjects_on(host) -> dict:
    """{file: subject (RFC 2253)} of every certificate file and kubeconfig client certificate the host holds."""
    script = (
        "for f in $(find /etc/kubernetes /etc/etcd /var/lib/kubelet/pki \\( -name '*.crt' -o -name '*.pem' \\) 2>/dev/null); do"
        " echo \"$f $(openssl x509 -in $f -noout -subject -nameopt RFC2253)\"; done;"
        " for f in $(find /etc/kubernetes -name '*.kubeconfig' 2>/dev/null); do"
        " d=$(sed -n 's/^ *client-certificate-data: *//p' $f); [ -z \"$d\" ] ||"
        " echo \"$f $(echo $d | base64 -d | openssl x509 -noout -subject -nameopt RFC2253)\"; done")
    return dict(line.split(" ", 1) for line in host.check_output(script).splitlines() if line)


def rdns(subject: str) -> set:
    return set(subject[len("subject="):].split(","))


def test_no_host_holds_a_system_masters_identity(host):
    """Only the break-glass super-admin is in system:masters, and it stays on the controller."""
    subjects = subjects_on(host)
    assert subjects, "no certificate found"
    assert {path: subject for path, subject in subjects.items() if "O=system:masters" in rdns(subject)} == {}
    assert host.check_output("find /etc /root -name '*super-admin*'") == ""


@pytest.mark.parametrize("name", sorted(CONTROL_PLANE))
def test_the_admin_and_the_apiservers_kubelet_client_are_least_privileged(name):
    subjects = subjects_on(node(name))
    assert rdns(subjects["/etc/kubernetes/admin.kubeconfig"]) == {"CN=admin", "O=kubeforge:cluster-admins"}
    assert rdns(subjects[f"{KPKI}/apiserver-kubelet-client.crt"]) == {"CN=kube-apiserver-kubelet-client"}


def test_keys_match_their_certificates(host):
    pairs = []
    if "kube_control_plane" in groups_of(host):
        names = ("ca", "apiserver", "apiserver-kubelet-client", "apiserver-etcd-client", "front-proxy-client")
        pairs += [(f"{KPKI}/{name}.crt", f"{KPKI}/{name}.key") for name in names]
    if "etcd" in groups_of(host):
        pairs += [(f"{EPKI}/member.crt", f"{EPKI}/member.key"), (f"{EPKI}/healthcheck-client.crt", f"{EPKI}/healthcheck-client.key")]
    for cert, key in pairs:
        assert host.check_output(f"openssl x509 -in {cert} -noout -pubkey") == host.check_output(f"openssl pkey -in {key} -pubout"), cert


@pytest.mark.parametrize("name", sorted(CONTROL_PLANE))
def test_service_account_key_pair_matches(name):
    host = node(name)
    assert host.check_output(f"openssl pkey -in {KPKI}/sa.key -pubout") == host.file(f"{KPKI}/sa.pub").content_string.strip()


def sans(host, path: str) -> tuple[set, set]:
    text = host.check_output(f"openssl x509 -in {path} -noout -ext subjectAltName")
    names = [item.strip() for item in text.splitlines()[-1].split(",")]
    return ({n[len("DNS:"):] for n in names if n.startswith("DNS:")}, {n[len("IP Address:"):] for n in names if n.startswith("IP Address:")})


@pytest.mark.parametrize("name", sorted(CONTROL_PLANE))
def test_apiserver_certificate_carries_the_scenarios_names(name):
    host = node(name)
    assert sans(host, f"{KPKI}/apiserver.crt") == (APISERVER_DNS, APISERVER_IPS)
    assert host.check_output(f"openssl x509 -in {KPKI}/apiserver.crt -noout -subject -nameopt RFC2253") == "subject=CN=kube-apiserver"


@pytest.mark.parametrize("name", sorted(CONTROL_PLANE))  # the etcd members
def test_etcd_member_certificate(name):
    host = node(name)
    verify(host, f"{EPKI}/ca.crt", f"{EPKI}/member.crt", f"{EPKI}/healthcheck-client.crt")
    assert sans(host, f"{EPKI}/member.crt") == ({name, "localhost"}, {CONTROL_PLANE[name], "127.0.0.1"})
    usage = host.check_output(f"openssl x509 -in {EPKI}/member.crt -noout -ext extendedKeyUsage")
    assert "TLS Web Server Authentication" in usage and "TLS Web Client Authentication" in usage


def test_every_node_kube_proxy_kubeconfig_chains_to_the_cluster_ca(host):
    assert "k8s_cluster" in groups_of(host)
    path = "/etc/kubernetes/kube-proxy.kubeconfig"
    done = host.run(f"sed -n 's/^ *client-certificate-data: *//p' {path} | base64 -d | openssl verify -CAfile {KPKI}/ca.crt")
    assert done.rc == 0 and ": OK" in done.stdout
    subject = host.check_output(f"sed -n 's/^ *client-certificate-data: *//p' {path} | base64 -d | openssl x509 -noout -subject -nameopt RFC2253")
    assert subject == "subject=CN=system:kube-proxy"


def test_controller_credentials():
    credentials = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "credentials")
    for directory in (credentials, os.path.join(credentials, "pki"), os.path.join(credentials, "pki", "etcd")):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700, directory
    for key in ("ca.key", "etcd/ca.key", "front-proxy-ca.key"):
        assert stat.S_IMODE(os.stat(os.path.join(credentials, "pki", key)).st_mode) == 0o600
    for kubeconfig in ("admin.kubeconfig", "super-admin.kubeconfig"):
        assert stat.S_IMODE(os.stat(os.path.join(credentials, kubeconfig)).st_mode) == 0o600, kubeconfig
        with open(os.path.join(credentials, kubeconfig), encoding="utf-8") as handle:
            assert "server: https://172.30.41.11:6443" in handle.read(), kubeconfig

# SPDX-License-Identifier: GPL-3.0-or-later
"""HA access and the control plane as site.yml converged them on site-cp1..3 (control plane + etcd)
and site-w1 (worker), checked against the upstream kube-apiserver, kube-controller-manager and
kube-scheduler of the scenario's kube_version.

Read-only checks: the one write is a uniquely named Secret (the encryption-at-rest check), deleted
before the test ends. The fault tests (stopped apiserver, stopped host, a flag change) are in
../faults, run by the side_effect step. The last test here runs site.yml in check mode."""
from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import sys
import uuid

import pytest
import yaml

from kubeforge_verify import (credentials_dir, docker, docker_exec, group_var, host_kubectl, inventory_file, node_request, playbook, probe,
                              project_dir, recap, wait_for)

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTROL_PLANE = {"site-cp1": "172.30.41.11", "site-cp2": "172.30.41.12", "site-cp3": "172.30.41.13"}
HOSTS = {**CONTROL_PLANE, "site-w1": "172.30.41.21"}
SERVICES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
# The sample's kube_version (inventory/group_vars/all/cluster.yml links it), and the operator's
# kubeconfig server (kube_apiserver_lb_address, inventory/group_vars/all/molecule.yml: site-cp1).
KUBE_VERSION = str(group_var(SCENARIO, "kube_version"))
LB_ADDRESS = str(group_var(SCENARIO, "kube_apiserver_lb_address"))
# control_plane_audit_log_dir (roles/control_plane/defaults/main.yml) and the file the apiserver writes there.
AUDIT_LOG = "/var/log/kubernetes/audit/audit.log"
# The group the admin certificate carries (plugins/filter/pki.py ADMIN_GROUP), bound to cluster-admin.
ADMIN_GROUP = "kubeforge:cluster-admins"
# The provider of plugins/module_utils/_control_plane.py (ENCRYPTION_PROVIDER), as the apiserver prefixes what it stores.
ENCRYPTED_PREFIX = b"k8s:enc:secretbox:v1:"


def unique(kind: str) -> str:
    return f"kubeforge-verify-{kind}-{uuid.uuid4().hex[:12]}"


def whoami(host: str, kubeconfig: str) -> dict:
    """The user the apiserver sees for a kubeconfig on a host (a SelfSubjectReview)."""
    return json.loads(host_kubectl(host, "auth", "whoami", "-o", "json", kubeconfig=kubeconfig).stdout)["status"]["userInfo"]


def controller_kubectl() -> str:
    """The kubectl of kube_version the upstream harness built (tests/harness/upstream/build.py)."""
    artifacts = subprocess.run([sys.executable, os.path.join(project_dir(), "tests", "harness", "upstream", "build.py"), "--print-dir"],
                               capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    path = os.path.join(artifacts, "release", f"v{KUBE_VERSION}", "bin", "linux", "amd64", "kubectl")
    assert os.access(path, os.X_OK), f"no kubectl {KUBE_VERSION} at {path} (tests/harness/upstream/build.py builds it)"
    return path


# --------------------------------------------------------------------------- layout

@pytest.mark.parametrize("name", sorted(HOSTS))
def test_the_load_balancer_listens_on_loopback_only(name):
    listening = docker_exec(name, "ss", "-Htlnp")
    assert "127.0.0.1:6443" in listening and "nginx" in listening
    assert "0.0.0.0:6443" not in listening and "*:6443" not in listening
    config = docker_exec(name, "cat", "/etc/nginx/nginx.conf")
    for address in CONTROL_PLANE.values():
        assert f"server {address}:6443 max_fails=" in config
    assert docker_exec(name, "systemctl", "is-enabled", "nginx").strip() == "enabled"


@pytest.mark.parametrize("name", sorted(CONTROL_PLANE))
def test_services_run_bound_as_cis_asks_with_private_files(name):
    for service in SERVICES:
        assert docker_exec(name, "systemctl", "is-active", service).strip() == "active", service
        assert docker_exec(name, "systemctl", "is-enabled", service).strip() == "enabled", service
    listening = docker_exec(name, "ss", "-Htlnp")
    assert f"{CONTROL_PLANE[name]}:6443" in listening  # the apiserver: node address only
    assert "127.0.0.1:10257" in listening and "127.0.0.1:10259" in listening
    assert "0.0.0.0:10257" not in listening and "0.0.0.0:10259" not in listening
    files = ["/etc/systemd/system/kube-apiserver.service", "/etc/systemd/system/kube-controller-manager.service",
             "/etc/systemd/system/kube-scheduler.service", "/etc/kubernetes/kube-scheduler.yaml",
             "/etc/kubernetes/audit-policy.yaml", "/etc/kubernetes/encryption-config.yaml"]
    assert docker_exec(name, "stat", "-c", "%a %U:%G", *files).split("\n")[:-1] == ["600 root:root"] * len(files)
    assert docker_exec(name, "stat", "-c", "%a", "/var/log/kubernetes/audit").strip() == "700"


@pytest.mark.parametrize("name", sorted(CONTROL_PLANE))
def test_the_services_are_the_upstream_release_of_kube_version(name):
    for service in SERVICES:
        run = docker("exec", name, service, "--version")
        assert f"Kubernetes v{KUBE_VERSION}" in run.stdout + run.stderr, (service, run.stdout, run.stderr)


def test_the_encryption_key_is_kept_on_the_controller_and_the_same_everywhere():
    keys_file = os.path.join(credentials_dir(), "encryption-keys.json")
    assert oct(os.stat(keys_file).st_mode & 0o777) == "0o600"
    configs = {docker_exec(name, "cat", "/etc/kubernetes/encryption-config.yaml") for name in CONTROL_PLANE}
    assert len(configs) == 1
    with open(keys_file, encoding="utf-8") as handle:
        [key] = json.load(handle)["keys"]
    assert f"secret: {key['secret']}" in configs.pop()


# --------------------------------------------------------------------------- access

@pytest.mark.parametrize("path", ["/readyz", "/livez"])
@pytest.mark.parametrize("name", sorted(HOSTS))
def test_the_ha_endpoint_answers_authenticated_with_a_verified_name(name, path):
    """Through 127.0.0.1:6443 on this host (workers too), with the node's kube-proxy client
    certificate, kubernetes.default.svc verified against the cluster CA."""
    status, body = probe(name, path)
    assert (status, body.strip()) == (200, "ok"), body


def assert_cluster_admin_by_rbac(user: dict, can_i: str) -> None:
    """The admin is in the group bound to cluster-admin (roles/control_plane/templates/rbac.yaml.j2),
    not in system:masters (which RBAC cannot revoke), and may still do everything."""
    assert user["username"] == "admin" and ADMIN_GROUP in user["groups"], user
    assert "system:masters" not in user["groups"], user
    assert can_i.strip() == "yes", can_i


@pytest.mark.parametrize("name", sorted(CONTROL_PLANE))
def test_kubectl_with_the_admin_kubeconfig_on_each_control_plane_host(name):
    version = json.loads(host_kubectl(name, "get", "--raw", "/version").stdout)
    assert version["gitVersion"] == f"v{KUBE_VERSION}", version
    namespaces = json.loads(host_kubectl(name, "get", "namespaces", "-o", "json").stdout)
    assert "kube-system" in {item["metadata"]["name"] for item in namespaces["items"]}
    user = whoami(name, "/etc/kubernetes/admin.kubeconfig")
    can_i = host_kubectl(name, "auth", "can-i", "*", "*", "--all-namespaces", check=False)
    assert_cluster_admin_by_rbac(user, can_i.stdout + can_i.stderr)


def test_the_operators_admin_kubeconfig_works_from_the_controller():
    """The kubeconfig the pki role writes into the credentials directory, used from the controller
    against the load-balancer address (site-cp1's apiserver), with kubectl of kube_version."""
    kubeconfig = os.path.join(credentials_dir(), "admin.kubeconfig")
    assert oct(os.stat(kubeconfig).st_mode & 0o777) == "0o600"
    with open(kubeconfig, encoding="utf-8") as handle:
        [cluster] = yaml.safe_load(handle)["clusters"]
    assert cluster["cluster"]["server"] == f"https://{LB_ADDRESS}:6443"
    kubectl = [controller_kubectl(), f"--kubeconfig={kubeconfig}", "--request-timeout=20s"]
    version = subprocess.run([*kubectl, "get", "--raw", "/version"], capture_output=True, text=True, check=False, timeout=60)
    assert version.returncode == 0, version.stderr
    assert json.loads(version.stdout)["gitVersion"] == f"v{KUBE_VERSION}"
    who = subprocess.run([*kubectl, "auth", "whoami", "-o", "json"], capture_output=True, text=True, check=False, timeout=60)
    assert who.returncode == 0, who.stderr
    can_i = subprocess.run([*kubectl, "auth", "can-i", "*", "*", "--all-namespaces"], capture_output=True, text=True, check=False, timeout=60)
    assert_cluster_admin_by_rbac(json.loads(who.stdout)["status"]["userInfo"], can_i.stdout + can_i.stderr)


def test_user_kubeconfig_gives_a_user_its_name_its_groups_and_the_bound_role_only():
    """playbooks/user_kubeconfig.yml: a client certificate from the cluster CA for the user and its groups, and a
    kubeconfig (0600) in <credentials>/users. With a ClusterRole (view) bound, the user reads pods and may not create
    them or read secrets. A second run changes nothing. The binding is removed at the end."""
    name, group = "kubeforge-verify-jane", "kubeforge-verify-developers"
    settings = json.dumps({"user_kubeconfig_name": name, "user_kubeconfig_groups": [group], "user_kubeconfig_clusterrole": "view"})
    path = os.path.join(project_dir(), "playbooks", "user_kubeconfig.yml")
    try:
        playbook(inventory_file(), path, "-e", settings)
        kubeconfig = os.path.join(credentials_dir(), "users", f"{name}.kubeconfig")
        assert oct(os.stat(kubeconfig).st_mode & 0o777) == "0o600"
        kubectl = [controller_kubectl(), f"--kubeconfig={kubeconfig}", "--request-timeout=20s", "auth"]
        who = subprocess.run([*kubectl, "whoami", "-o", "json"], capture_output=True, text=True, check=False, timeout=60)
        assert who.returncode == 0, who.stderr
        user = json.loads(who.stdout)["status"]["userInfo"]
        assert user["username"] == name and group in user["groups"] and "system:masters" not in user["groups"], user

        def can_i(*args: str) -> str:
            return subprocess.run([*kubectl, "can-i", *args], capture_output=True, text=True, check=False, timeout=60).stdout.strip()
        assert (can_i("list", "pods", "-n", "kube-system"), can_i("create", "pods"), can_i("get", "secrets", "-n", "kube-system")) == ("yes", "no", "no")
        assert set(recap(playbook(inventory_file(), path, "-e", settings))["site-cp1"][key] for key in ("changed", "failed")) == {0}
    finally:
        host_kubectl("site-cp1", "delete", "clusterrolebinding", f"kubeforge-user-{name}-view", "--ignore-not-found")


def test_the_break_glass_super_admin_is_on_the_controller_only_and_in_system_masters():
    """<credentials>/super-admin.kubeconfig (0600) works from the controller as kubeforge:super-admin in
    system:masters; no host holds it (test_pki.py checks every host's files)."""
    kubeconfig = os.path.join(credentials_dir(), "super-admin.kubeconfig")
    assert oct(os.stat(kubeconfig).st_mode & 0o777) == "0o600"
    who = subprocess.run([controller_kubectl(), f"--kubeconfig={kubeconfig}", "--request-timeout=20s", "auth", "whoami", "-o", "json"],
                         capture_output=True, text=True, check=False, timeout=60)
    assert who.returncode == 0, who.stderr
    user = json.loads(who.stdout)["status"]["userInfo"]
    assert user["username"] == "kubeforge:super-admin" and "system:masters" in user["groups"], user
    for name in HOSTS:
        assert docker_exec(name, "find", "/etc", "/root", "-name", "*super-admin*").strip() == "", name


def test_the_apiservers_kubelet_client_may_use_the_kubelet_api_and_nothing_else():
    """kube-apiserver-kubelet-client (--kubelet-client-certificate) is bound to system:kubelet-api-admin,
    not in system:masters: kubelet API yes, Secrets or RBAC no (asked as that user by the admin)."""
    def can(*args: str) -> str:
        return host_kubectl("site-cp1", "auth", "can-i", *args, "--as=kube-apiserver-kubelet-client", check=False).stdout.strip()
    assert can("get", "nodes", "--subresource=proxy") == "yes"
    assert can("create", "nodes", "--subresource=proxy") == "yes"
    assert can("list", "secrets", "--all-namespaces") == "no"
    assert can("create", "clusterrolebindings") == "no"


@pytest.mark.parametrize("name", sorted(CONTROL_PLANE))
def test_each_component_kubeconfig_authenticates_as_its_component(name):
    for kubeconfig, username in (("controller-manager", "system:kube-controller-manager"), ("scheduler", "system:kube-scheduler"),
                                 ("kube-proxy", "system:kube-proxy")):
        user = whoami(name, f"/etc/kubernetes/{kubeconfig}.kubeconfig")
        assert user["username"] == username, user
        assert "system:authenticated" in user["groups"] and "system:masters" not in user["groups"], user


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_anonymous_requests_are_refused(name):
    """No client certificate (and no server verification, as `curl -k`): 401 from every apiserver,
    on its own address and through this host's HA endpoint."""
    for address in [*CONTROL_PLANE.values(), "127.0.0.1"]:
        status, body = node_request(name, address, "/api")
        assert status == 401, (address, status, body)


def test_rbac_refuses_a_user_without_a_role_what_the_admin_may_read():
    allowed = host_kubectl("site-cp1", "-n", "kube-system", "get", "secrets", check=False)
    assert allowed.returncode == 0, allowed.stderr
    denied = host_kubectl("site-cp1", "--as=kubeforge-verify-nobody", "--v=6", "-n", "kube-system", "get", "secrets", check=False)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr and "403 Forbidden" in denied.stderr, denied.stderr[-3000:]
    assert 'User "kubeforge-verify-nobody" cannot list resource "secrets"' in denied.stderr, denied.stderr[-3000:]


# --------------------------------------------------------------------------- the components at work

@pytest.mark.parametrize("lease", ["kube-controller-manager", "kube-scheduler"])
def test_the_component_holds_its_leader_lease(lease):
    """spec.holderIdentity is <host>_<uuid> for a control-plane host; the holder renews it every few
    seconds. A handover (a restarted holder) may leave it briefly stale: polled up to 60 s."""
    def held():
        spec = json.loads(host_kubectl("site-cp1", "-n", "kube-system", "get", "lease", lease, "-o", "json").stdout)["spec"]
        holder = spec.get("holderIdentity") or ""
        assert holder.split("_", 1)[0] in CONTROL_PLANE, f"holder {holder!r}"
        renewed = datetime.datetime.fromisoformat(spec["renewTime"].replace("Z", "+00:00"))
        age = (datetime.datetime.now(datetime.timezone.utc) - renewed).total_seconds()
        assert -5 < age < 60, f"renewed {age:.0f} s ago by {holder}"
        return True
    wait_for(held, timeout=60, what=f"the {lease} lease held and renewed by a control-plane host", interval=2)


def test_a_secret_is_stored_encrypted_in_etcd():
    name, plaintext = unique("secret"), f"kubeforge-plaintext-{uuid.uuid4().hex}"
    host_kubectl("site-cp1", "-n", "default", "create", "secret", "generic", name, f"--from-literal=probe={plaintext}")
    try:
        # The API gives the value back ...
        data = host_kubectl("site-cp1", "-n", "default", "get", "secret", name, "-o", "jsonpath={.data.probe}").stdout
        assert base64.b64decode(data).decode() == plaintext
        # ... while etcd holds it encrypted (etcdctl with the etcd role's profile: endpoints and client certificate).
        read = json.loads(docker_exec("site-cp1", "bash", "-lc", f"etcdctl get /registry/secrets/default/{name} -w json"))
        [kv] = read["kvs"]
        stored = base64.b64decode(kv["value"])
        assert stored.startswith(ENCRYPTED_PREFIX), stored[:60]
        assert plaintext.encode() not in stored
    finally:
        host_kubectl("site-cp1", "-n", "default", "delete", "secret", name, "--ignore-not-found", check=False)


def test_a_request_is_written_to_the_audit_log():
    name = unique("audit")
    missing = host_kubectl("site-cp1", "-n", "default", "get", "configmap", name, check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr, missing.stderr

    def logged():
        for host in CONTROL_PLANE:  # whichever apiserver the HA endpoint picked
            for line in docker_exec(host, "grep", "-hF", name, AUDIT_LOG, check=False).splitlines():
                event = json.loads(line)
                if event.get("kind") == "Event" and event.get("objectRef", {}).get("name") == name and event.get("verb") == "get":
                    assert event["user"]["username"] == "admin" and event["responseStatus"]["code"] == 404, event
                    return True
        return False
    wait_for(logged, timeout=30, what=f"an audit event for configmap {name} in {AUDIT_LOG}", interval=1)


# --------------------------------------------------------------------------- check mode

def test_site_yml_in_check_mode_changes_nothing_and_fails_nowhere():
    output = playbook(inventory_file(), os.path.join(project_dir(), "site.yml"), "--check", timeout=1800)
    counts = recap(output)
    assert set(HOSTS) <= set(counts), counts
    problems = {host: c for host, c in counts.items() if c["changed"] or c["failed"] or c["unreachable"]}
    assert problems == {}, output[-6000:]
    # On a running cluster the preview goes through every phase (test_check_mode.py: where it ends on a new one).
    assert "Check mode ends here" not in output and "TASK [kubeforge.cluster.coredns" in output, output[-6000:]

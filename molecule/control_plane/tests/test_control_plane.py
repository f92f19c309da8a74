# SPDX-License-Identifier: GPL-3.0-or-later
"""HA access and the control plane, as converged by site.yml on cp-1..3 (control plane + etcd) and
w-1 (worker). THE kube-* PROCESSES HERE ARE THE TEST STAND-INS (tests/standins), not Kubernetes:
they check the flags, files and certificates the roles give them, talk to etcd and serve
authenticated HTTPS; a deployment on real hosts runs the official binaries.

The tests run in file order; the last ones stop an apiserver, then a whole control-plane host, and
start them again."""
from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import uuid

import pytest
import yaml

PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
CREDENTIALS = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "credentials")
PKI = os.path.join(CREDENTIALS, "pki")
CONTROL_PLANE = {"cp-1": "172.30.44.11", "cp-2": "172.30.44.12", "cp-3": "172.30.44.13"}
HOSTS = {**CONTROL_PLANE, "w-1": "172.30.44.21"}
SERVICES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")

# Runs inside a host: one HTTPS request through the HA endpoint 127.0.0.1:6443 with the node's
# kube-proxy client certificate (every node has that kubeconfig), the server certificate verified
# against the cluster CA for the name kubernetes.default.svc.
PROBE = r"""
import base64, json, os, shutil, socket, ssl, sys, tempfile, yaml
config = yaml.safe_load(open("/etc/kubernetes/kube-proxy.kubeconfig"))
cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
tmp = tempfile.mkdtemp()
try:
    paths = {}
    for field in ("client-certificate-data", "client-key-data"):
        paths[field] = os.path.join(tmp, field)
        with open(os.open(paths[field], os.O_WRONLY | os.O_CREAT, 0o600), "wb") as handle:
            handle.write(base64.b64decode(user[field]))
    context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    context.load_cert_chain(paths["client-certificate-data"], paths["client-key-data"])
    with socket.create_connection(("127.0.0.1", 6443), timeout=8) as raw:
        with context.wrap_socket(raw, server_hostname="kubernetes.default.svc") as tls:
            tls.sendall(("GET %s HTTP/1.1\r\nHost: kubernetes.default.svc\r\nConnection: close\r\n\r\n" % sys.argv[1]).encode())
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
finally:
    shutil.rmtree(tmp)
head, _, body = data.partition(b"\r\n\r\n")
print(json.dumps({"status": int(head.split()[1]), "body": body.decode()}))
"""


def docker(*args, check=True):
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True)


def on(host, *command):
    return docker("exec", host, *command).stdout


def probe(host, path="/healthz"):
    """(status, body) of a request through the host's HA endpoint."""
    run = subprocess.run(["docker", "exec", "-i", host, "python3", "-", path], input=PROBE, capture_output=True, text=True,
                         check=False, timeout=30)
    assert run.returncode == 0, f"{host}: {run.stderr[-2000:]}"
    answer = json.loads(run.stdout)
    return answer["status"], answer["body"]


def apiserver(address, path, client="admin", server_name=None):
    """(status, body) of a request from the controller straight to one apiserver, verified against the cluster CA."""
    context = ssl.create_default_context(cafile=os.path.join(PKI, "ca.crt"))
    if client:
        context.load_cert_chain(os.path.join(PKI, f"{client}.crt"), os.path.join(PKI, f"{client}.key"))
    with socket.create_connection((address, 6443), timeout=8) as raw:
        with context.wrap_socket(raw, server_hostname=server_name or address) as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    head, _separator, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def seen(address):
    status, body = apiserver(address, "/kubeforge-standin/seen")
    assert status == 200, body
    return json.loads(body)


def wait_for(condition, timeout=120.0, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception as exc:  # pylint: disable=broad-except  # a service may still be starting
            last = exc
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


def unit_state(host, service):
    out = on(host, "systemctl", "show", service, "-p", "MainPID,ActiveState,ActiveEnterTimestampMonotonic,InactiveEnterTimestampMonotonic")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def playbook(*extra):
    run = subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(PROJECT, "site.yml"), *extra], check=False,
                         capture_output=True, text=True, env={**os.environ, "ANSIBLE_CONFIG": os.path.join(PROJECT, "ansible.cfg")})
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    return run.stdout


def ha_nginx_phase(inventory):
    run = subprocess.run(["ansible-playbook", "-i", inventory, os.path.join(PROJECT, "playbooks", "phases", "ha_nginx.yml")], check=False,
                         capture_output=True, text=True, env={**os.environ, "ANSIBLE_CONFIG": os.path.join(PROJECT, "ansible.cfg")})
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    return run.stdout


def inventory_without(host, directory):
    """Molecule's inventory with a host taken out of kube_control_plane: what an operator edits."""
    with open(os.environ["MOLECULE_INVENTORY_FILE"], encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)
    # Molecule writes each group at the top level of its inventory file.
    del inventory["kube_control_plane"]["hosts"][host]
    with open(os.path.join(directory, "hosts.yml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(inventory, handle)
    for part in ("group_vars", "host_vars"):
        os.symlink(os.path.join(PROJECT, "molecule", "control_plane", "inventory", part), os.path.join(directory, part))
    return os.path.join(directory, "hosts.yml")


def healthy_everywhere():
    return all(probe(host)[0] == 200 for host in HOSTS)


# --------------------------------------------------------------------------- layout

@pytest.mark.parametrize("host", HOSTS)
def test_the_load_balancer_listens_on_loopback_only(host):
    listening = on(host, "ss", "-Htlnp")
    assert "127.0.0.1:6443" in listening and "nginx" in listening
    assert "0.0.0.0:6443" not in listening and "*:6443" not in listening
    config = on(host, "cat", "/etc/nginx/nginx.conf")
    for address in CONTROL_PLANE.values():
        assert f"server {address}:6443 max_fails=" in config
    assert on(host, "systemctl", "is-enabled", "nginx").strip() == "enabled"


@pytest.mark.parametrize("host", CONTROL_PLANE)
def test_services_run_bound_as_cis_asks_with_private_files(host):
    for service in SERVICES:
        assert on(host, "systemctl", "is-active", service).strip() == "active", service
        assert on(host, "systemctl", "is-enabled", service).strip() == "enabled", service
    listening = on(host, "ss", "-Htlnp")
    assert f"{CONTROL_PLANE[host]}:6443" in listening  # the apiserver: node address only
    assert "127.0.0.1:10257" in listening and "127.0.0.1:10259" in listening
    assert "0.0.0.0:10257" not in listening and "0.0.0.0:10259" not in listening
    files = ["/etc/systemd/system/kube-apiserver.service", "/etc/systemd/system/kube-controller-manager.service",
             "/etc/systemd/system/kube-scheduler.service", "/etc/kubernetes/kube-scheduler.yaml",
             "/etc/kubernetes/audit-policy.yaml", "/etc/kubernetes/encryption-config.yaml"]
    assert on(host, "stat", "-c", "%a %U:%G", *files).split("\n")[:-1] == ["600 root:root"] * len(files)
    assert on(host, "stat", "-c", "%a", "/var/log/kubernetes/audit").strip() == "700"
    assert "kubeforge TEST STAND-IN" in docker("exec", host, "kube-apiserver", "--version").stderr


def test_the_encryption_key_is_kept_on_the_controller_and_the_same_everywhere():
    keys_file = os.path.join(CREDENTIALS, "encryption-keys.json")
    assert oct(os.stat(keys_file).st_mode & 0o777) == "0o600"
    configs = {on(host, "cat", "/etc/kubernetes/encryption-config.yaml") for host in CONTROL_PLANE}
    assert len(configs) == 1
    with open(keys_file, encoding="utf-8") as handle:
        [key] = json.load(handle)["keys"]
    assert f"secret: {key['secret']}" in configs.pop()


# --------------------------------------------------------------------------- the acceptance

@pytest.mark.parametrize("host", HOSTS)
def test_the_ha_endpoint_reaches_each_apiserver_with_a_verified_name(host):
    """Through 127.0.0.1:6443 on this host, authenticated, kubernetes.default.svc verified against the cluster CA;
    each request carries a unique path, and the apiserver that recorded it is the backend that answered."""
    reached = set()
    for attempt in range(18):
        path = f"/healthz?probe={host}-{attempt}-{uuid.uuid4().hex[:8]}"
        status, body = probe(host, path)
        assert (status, body) == (200, "ok")
        for name, address in CONTROL_PLANE.items():
            if seen(address).get("system:kube-proxy", {}).get("lastPath") == path:
                reached.add(name)
        if reached == set(CONTROL_PLANE):
            break
    assert reached == set(CONTROL_PLANE)


def test_anonymous_requests_are_refused():
    for address in CONTROL_PLANE.values():
        assert apiserver(address, "/healthz", client=None)[0] == 401


def test_the_apiservers_saw_the_expected_identities():
    users = {}
    for address in CONTROL_PLANE.values():
        users.update(seen(address))
    assert users["system:kube-controller-manager"]["groups"] == ["system:authenticated"]
    assert users["system:kube-scheduler"]["groups"] == ["system:authenticated"]
    assert users["system:kube-controller-manager"]["authenticatedBy"] == "x509"
    for host in CONTROL_PLANE:  # the admin kubeconfig on the hosts, through the HA endpoint
        who = json.loads(on(host, "kubectl", "--kubeconfig=/etc/kubernetes/admin.kubeconfig", "auth", "whoami", "-o", "json"))
        assert who["status"]["userInfo"]["username"] == "admin"
        assert "system:masters" in who["status"]["userInfo"]["groups"]
    # The operator's kubeconfig on the controller: the load-balancer address, a verified name.
    status, body = apiserver("172.30.44.11", "/kubeforge-standin/whoami")
    assert status == 200 and json.loads(body)["user"] == "admin" and "system:masters" in json.loads(body)["groups"]
    with open(os.path.join(CREDENTIALS, "admin.kubeconfig"), encoding="utf-8") as handle:
        assert "server: https://172.30.44.11:6443" in handle.read()


def test_changing_a_scheduler_flag_restarts_only_the_scheduler_one_host_at_a_time():
    unit = on("cp-1", "cat", "/etc/systemd/system/kube-scheduler.service")
    level = 4 if "--v=3" in unit else 3  # a value different from the current one, so the test can be re-run
    before = {host: {service: unit_state(host, service) for service in SERVICES} for host in CONTROL_PLANE}
    playbook("--tags", "control_plane", "-e", json.dumps({"kube_scheduler_extra_args": {"v": level}}))
    after = {host: {service: unit_state(host, service) for service in SERVICES} for host in CONTROL_PLANE}
    for host in CONTROL_PLANE:
        assert f"--v={level}" in on(host, "cat", "/etc/systemd/system/kube-scheduler.service")
        assert after[host]["kube-scheduler"]["MainPID"] != before[host]["kube-scheduler"]["MainPID"], host
        assert after[host]["kube-scheduler"]["ActiveState"] == "active"
        for service in ("kube-apiserver", "kube-controller-manager"):
            assert after[host][service]["MainPID"] == before[host][service]["MainPID"], f"{service} restarted on {host}"
    # One host at a time: each host's scheduler stopped only after the previous one was running again.
    order = sorted(CONTROL_PLANE)
    for previous, following in zip(order, order[1:]):
        assert int(after[following]["kube-scheduler"]["InactiveEnterTimestampMonotonic"]) > \
            int(after[previous]["kube-scheduler"]["ActiveEnterTimestampMonotonic"]), (previous, following)


def test_the_upstream_list_follows_kube_control_plane_by_reload_only():
    """cp-3 leaves kube_control_plane (the ha_nginx phase alone), then comes back: every node's nginx
    gets the new upstream list by a reload, the master process stays."""
    masters = {host: on(host, "systemctl", "show", "nginx", "-p", "MainPID", "--value").strip() for host in HOSTS}
    directory = tempfile.mkdtemp(prefix="kubeforge-cp-ha-")
    try:
        recap = [line for line in ha_nginx_phase(inventory_without("cp-3", directory)).splitlines() if "changed=" in line]
        assert len(recap) == len(HOSTS) and all("changed=0" not in line for line in recap), recap
        for host in HOSTS:
            wait_for(lambda host=host: "172.30.44.13:6443" not in on(host, "cat", "/etc/nginx/nginx.conf"), what=f"{host} config")
            for _attempt in range(3):
                assert probe(host) == (200, "ok"), host
    finally:
        ha_nginx_phase(os.environ["MOLECULE_INVENTORY_FILE"])
        shutil.rmtree(directory, ignore_errors=True)
    for host in HOSTS:
        assert "server 172.30.44.13:6443" in on(host, "cat", "/etc/nginx/nginx.conf")
        assert on(host, "systemctl", "show", "nginx", "-p", "MainPID", "--value").strip() == masters[host], f"nginx restarted on {host}"
    # nginx applies a reload asynchronously: wait until each node answers again through every backend.
    wait_for(healthy_everywhere, what="the HA endpoint on every host")


def test_the_ha_endpoint_answers_everywhere_with_one_apiserver_stopped():
    on("cp-2", "systemctl", "stop", "kube-apiserver")
    try:
        for host in HOSTS:
            for _attempt in range(6):
                assert probe(host) == (200, "ok"), host
    finally:
        on("cp-2", "systemctl", "start", "kube-apiserver")
    wait_for(lambda: apiserver(CONTROL_PLANE["cp-2"], "/readyz")[0] == 200, what="cp-2's apiserver back")


def test_the_ha_endpoint_answers_on_every_remaining_host_with_a_control_plane_host_stopped():
    docker("stop", "cp-3")
    try:
        for host in ("cp-1", "cp-2", "w-1"):
            for _attempt in range(6):
                assert probe(host) == (200, "ok"), host
    finally:
        docker("start", "cp-3")
    wait_for(lambda: apiserver(CONTROL_PLANE["cp-3"], "/readyz")[0] == 200, timeout=180, what="cp-3's apiserver back")
    wait_for(healthy_everywhere, what="the HA endpoint on every host")

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The REAL kube-apiserver and kube-scheduler 1.36.4 run with what module_utils/_control_plane builds.

The binaries are the upstream ones built from their Go modules into the artifacts directory
(tests/harness/upstream/build.py, in the official release layout). Without them these tests FAIL;
they are never skipped.

- kube-apiserver: the whole command line component_args() gives (Node,RBAC authorization,
  anonymous auth off, encryption at rest, audit log, ...) against a real etcd on loopback, with the
  EncryptionConfiguration and audit Policy documents config_doc() builds, and a PKI made here.
  A Secret created through the API must be stored encrypted by secretbox and leave an audit Event.
- kube-scheduler: loads the KubeSchedulerConfiguration config_doc() builds (--write-config-to),
  and refuses one with an unknown field (strict decoding).
- module_utils/_kube_objects (the kube_apply and kube_nodes modules) against that apiserver: server-side
  apply that reports a change once, dry runs, a refusal's status, node labels and taints, a rollout timeout naming
  why its pods are not ready.
"""
from __future__ import annotations

import base64
import datetime
import importlib.util
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from etcd_harness import _STARTED, REPO, free_port, terminate

from ansible_collections.kubeforge.cluster.plugins.module_utils import _control_plane as cp
from ansible_collections.kubeforge.cluster.plugins.module_utils import _kube_objects as ko
from ansible_collections.kubeforge.cluster.plugins.module_utils._kubelet_csr import client_from_kubeconfig

pytestmark = pytest.mark.integration

KUBE_VERSION = "1.36.4"
READY_TIMEOUT = 90.0
ROLE_DEFAULTS = os.path.join(REPO, "roles", "control_plane", "defaults", "main.yml")


def _load_tool():
    """tools/k8s_flags_from_help.py: its --help parser reads the scheduler's flags."""
    spec = importlib.util.spec_from_file_location("k8s_flags_from_help", os.path.join(REPO, "tools", "k8s_flags_from_help.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def artifacts_dir() -> str:
    done = subprocess.run([sys.executable, os.path.join(REPO, "tests", "harness", "upstream", "build.py"), "--print-dir"],
                          capture_output=True, text=True, check=False, timeout=60)
    if done.returncode != 0 or not done.stdout.strip():
        pytest.fail(f"tests/harness/upstream/build.py --print-dir failed ({done.returncode}): {done.stderr}")
    return done.stdout.strip()


def kube_binary(name: str) -> str:
    """The upstream binary of KUBE_VERSION; the test FAILS (never skips) when it is not built."""
    directory = artifacts_dir()
    path = os.path.join(directory, "release", f"v{KUBE_VERSION}", "bin", "linux", "amd64", name)
    if not (os.access(path, os.X_OK) and os.path.exists(path + ".sha256")):
        pytest.fail(f"{path} is missing: run `make artifacts` (tests/harness/upstream/build.py builds Kubernetes "
                    f"{KUBE_VERSION} from its Go modules into {directory})", pytrace=False)
    return path


# --------------------------------------------------------------------------- PKI made here

def _pem_key(path: str, key) -> None:
    with open(path, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(path, 0o600)


def _pem_cert(path: str, cert) -> None:
    with open(path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))


def _issue(cn: str, issuer=None, *, orgs: tuple = (), ca: bool = False, server: bool = False, client: bool = False):
    """(cert, key): a CA (self-signed when issuer is None) or a leaf signed by issuer=(cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in orgs),
                         x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
    else:
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.DNSName("kubernetes.default.svc"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("10.96.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def make_control_plane_pki(settings: dict, etcd_certs) -> dict:
    """Every file paths(settings) names under pki_dir, plus an admin client certificate (system:masters)."""
    p = cp.paths(settings)
    os.makedirs(settings["pki_dir"], exist_ok=True)
    ca = _issue("kubeforge-test-kubernetes-ca", ca=True)
    front_proxy_ca = _issue("kubeforge-test-front-proxy-ca", ca=True)
    _pem_cert(p["ca"], ca[0])
    _pem_key(p["ca_key"], ca[1])
    _pem_cert(p["front_proxy_ca"], front_proxy_ca[0])
    for cert_name, key_name, made in (
            ("apiserver_cert", "apiserver_key", _issue("kube-apiserver", ca, server=True)),
            ("kubelet_client_cert", "kubelet_client_key", _issue("kube-apiserver-kubelet-client", ca, orgs=("system:masters",), client=True)),
            ("front_proxy_cert", "front_proxy_key", _issue("front-proxy-client", front_proxy_ca, client=True))):
        _pem_cert(p[cert_name], made[0])
        _pem_key(p[key_name], made[1])
    # etcd's own CA and client certificate (tests/integration/etcd_harness.make_certs) in the pki role's layout.
    shutil.copyfile(etcd_certs.ca, p["etcd_ca"])
    shutil.copyfile(etcd_certs.client_cert, p["etcd_cert"])
    shutil.copyfile(etcd_certs.client_key, p["etcd_key"])
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _pem_key(p["sa_key"], sa_key)
    with open(p["sa_pub"], "wb") as handle:
        handle.write(sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    made = {"ca": p["ca"]}
    # The admin, and a user with no rights at all (no group RBAC binds).
    for user, orgs in (("admin", ("system:masters",)), ("nobody", ())):
        cert, key = _issue(f"kubeforge-test-{user}", ca, orgs=orgs, client=True)
        made[f"{user}_cert"], made[f"{user}_key"] = (os.path.join(settings["pki_dir"], f"{user}.{ext}") for ext in ("crt", "key"))
        _pem_cert(made[f"{user}_cert"], cert)
        _pem_key(made[f"{user}_key"], key)
    return made


# --------------------------------------------------------------------------- settings and config files

def role_settings(tmp_path, **change) -> dict:
    """control_plane_settings as the role builds them, from the role's own defaults, with tmp paths."""
    with open(ROLE_DEFAULTS, encoding="utf-8") as handle:
        defaults = yaml.safe_load(handle)
    settings = {
        "version": KUBE_VERSION, "node_ip": "127.0.0.1", "apiserver_port": 6443,
        "service_cidr": "10.96.0.0/12", "pod_cidr": "10.244.0.0/16", "etcd_servers": [],
        "kubelet_tls_mode": "bootstrap",
        "pki_dir": str(tmp_path / "pki"), "config_dir": str(tmp_path / "etc"), "audit_log_dir": str(tmp_path / "audit"),
        "service_account_issuer": defaults["control_plane_service_account_issuer"].replace("{{ kube_cluster_domain }}", "cluster.local"),
        "extra_args": {},
    }
    for key in ("audit_log_maxage", "audit_log_maxbackup", "audit_log_maxsize", "tls_min_version", "tls_cipher_suites",
                "terminated_pod_gc_threshold"):
        settings[key] = defaults["control_plane_" + key]
    settings.update(change)
    for key in ("config_dir", "audit_log_dir"):
        os.makedirs(settings[key], exist_ok=True)
    return settings


def write_yaml(path: str, doc: dict) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("# Managed by kubeforge.cluster; changes are overwritten.\n")
        yaml.safe_dump(doc, handle, sort_keys=False, indent=2)


class Apiserver:
    """A kube-apiserver process and an HTTPS client with the admin certificate."""

    def __init__(self, binary: str, args: list, log_path: str, port: int, pki: dict):
        self.port, self.log_path = port, log_path
        self.context = ssl.create_default_context(cafile=pki["ca"])
        self.context.load_cert_chain(pki["admin_cert"], pki["admin_key"])
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen([binary, *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _STARTED.append(self.process)  # killed at exit if a run ends without stop()

    def log_tail(self, lines: int = 30) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])

    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 10.0) -> tuple:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"https://127.0.0.1:{self.port}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> float:
        started = time.monotonic()
        last = None
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                pytest.fail(f"kube-apiserver exited {self.process.returncode}:\n{self.log_tail()}")
            try:
                last = self.request("GET", "/readyz", timeout=5.0)
                if last == (200, "ok"):
                    return time.monotonic() - started
            except OSError as exc:
                last = exc
            time.sleep(0.5)
        pytest.fail(f"kube-apiserver /readyz not ok after {timeout:.0f} s (last: {last}):\n{self.log_tail()}")
        return timeout

    def stop(self) -> None:
        terminate(self.process, grace=20)


# --------------------------------------------------------------------------- tests

def start_apiserver(tmp_path, etcd, certs):
    """(server, pki, settings, keys): kube-apiserver with the role's command line and config files, not yet ready."""
    port = free_port()
    settings = role_settings(tmp_path, apiserver_port=port, etcd_servers=etcd.endpoints)
    pki = make_control_plane_pki(settings, certs)
    files = cp.paths(settings)
    keys = cp.encryption_keys([], "ensure")
    write_yaml(files["encryption_config"], cp.config_doc("EncryptionConfiguration", settings, keys))
    write_yaml(files["audit_policy"], cp.config_doc("Policy", settings))
    args = cp.component_args("kube-apiserver", settings)
    for expected in ("--authorization-mode=Node,RBAC", "--anonymous-auth=false", f"--secure-port={port}",
                     f"--encryption-provider-config={files['encryption_config']}", f"--audit-policy-file={files['audit_policy']}"):
        assert expected in args
    return Apiserver(kube_binary("kube-apiserver"), args, str(tmp_path / "kube-apiserver.log"), port, pki), pki, settings, keys


def test_apiserver_encrypts_secrets_and_audits_with_the_modules_configs(tmp_path, clusters, certs):
    etcd = clusters()
    server, pki, settings, keys = start_apiserver(tmp_path, etcd, certs)
    files, port = cp.paths(settings), server.port
    try:
        seconds = server.wait_ready()
        print(f"kube-apiserver {KUBE_VERSION} ready in {seconds:.1f} s")
        # Anonymous requests are refused (--anonymous-auth=false): 401 without a client certificate.
        anonymous = ssl.create_default_context(cafile=pki["ca"])
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=anonymous, timeout=10)
        assert refused.value.code == 401

        namespace, name, plaintext = "kubeforge-test", "encrypted-at-rest", "kubeforge-plaintext-canary"
        status, body = server.request("POST", "/api/v1/namespaces",
                                      {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        assert status == 201, body
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                  "data": {"token": base64.b64encode(plaintext.encode()).decode()}}
        status, body = server.request("POST", f"/api/v1/namespaces/{namespace}/secrets", secret)
        assert status == 201, body
        status, body = server.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        assert status == 200 and json.loads(body)["data"]["token"] == secret["data"]["token"], body

        # Raw from etcd, through its JSON gateway: encrypted by secretbox with the first (only) key.
        key = f"/registry/secrets/{namespace}/{name}".encode()
        found = etcd.call(etcd.members[0], "/v3/kv/range", {"key": base64.b64encode(key).decode()})
        assert found.get("count") == "1", found
        raw = base64.b64decode(found["kvs"][0]["value"])
        assert raw.startswith(b"k8s:enc:secretbox:v1:"), raw[:60]
        assert raw.startswith(f"k8s:enc:secretbox:v1:{keys[0]['name']}:".encode()), raw[:60]
        assert plaintext.encode() not in raw

        # The audit log has the request at Metadata level (the policy never logs a secret's content).
        events = []
        deadline = time.monotonic() + 10
        while not events and time.monotonic() < deadline:
            with open(files["audit_log"], encoding="utf-8") as handle:
                lines = [json.loads(line) for line in handle if line.strip()]
            events = [e for e in lines if e.get("kind") == "Event" and e.get("verb") == "create"
                      and e.get("objectRef", {}).get("resource") == "secrets" and e.get("objectRef", {}).get("name") == name]
            time.sleep(0.2)
        assert events, f"no audit Event for the secret in {files['audit_log']}"
        assert [e["stage"] for e in events] == ["ResponseComplete"]  # omitStages: RequestReceived
        event = events[0]
        assert event["apiVersion"] == "audit.k8s.io/v1" and event["level"] == "Metadata"
        assert event["user"]["username"] == "kubeforge-test-admin" and "system:masters" in event["user"]["groups"]
        assert event["responseStatus"]["code"] == 201
        assert "requestObject" not in event and "responseObject" not in event
        assert plaintext not in json.dumps(lines)
    finally:
        server.stop()
    assert server.process.returncode is not None


def _kubeconfig(path: str, port: int, pki: dict, user: str) -> str:
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": user,
           "clusters": [{"name": "test", "cluster": {"server": f"https://127.0.0.1:{port}", "certificate-authority": pki["ca"]}}],
           "users": [{"name": user, "user": {"client-certificate": pki[f"{user}_cert"], "client-key": pki[f"{user}_key"]}}],
           "contexts": [{"name": user, "context": {"cluster": "test", "user": user}}]}
    write_yaml(path, doc)
    return path


def test_kube_objects_apply_and_patch_nodes_on_the_real_apiserver(tmp_path, clusters, certs):
    server, pki, _settings, _keys = start_apiserver(tmp_path, clusters(), certs)
    try:
        server.wait_ready()
        admin = client_from_kubeconfig(_kubeconfig(str(tmp_path / "admin.kubeconfig"), server.port, pki, "admin"))
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kf-apply"}}
        config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "kf-apply"}, "data": {"a": "1"}}
        service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dns", "namespace": "kf-apply"},
                   "spec": {"selector": {"app": "dns"}, "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                                                  {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}}
        binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "kf-view"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                   "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "kf-viewers"}]}
        objects = [namespace, config, service, binding]

        # Check mode on nothing: every object would be created (the ConfigMap and Service in a namespace the
        # batch would create are not asked about), and nothing is.
        planned = ko.apply(admin, objects, check_mode=True)
        assert [entry["changed"] for entry in planned] == [True] * 4
        assert server.request("GET", "/api/v1/namespaces/kf-apply")[0] == 404

        assert [entry["changed"] for entry in ko.apply(admin, objects)] == [True] * 4
        # Applied again, as given: nothing changes - server defaults, managed fields and the Service's
        # two ports on 53 (merged on port and protocol) included.
        assert [entry["changed"] for entry in ko.apply(admin, objects)] == [False] * 4
        assert [entry["changed"] for entry in ko.apply(admin, objects, check_mode=True)] == [False] * 4

        # A changed field: a dry run says so and writes nothing, the apply writes it.
        changed = dict(config, data={"a": "2"})
        [dry] = ko.apply(admin, [changed], check_mode=True)
        assert dry["changed"] and dry["before"]["data"] == {"a": "1"} and dry["after"]["data"] == {"a": "2"}
        assert json.loads(server.request("GET", "/api/v1/namespaces/kf-apply/configmaps/cfg")[1])["data"] == {"a": "1"}
        assert ko.apply(admin, [changed])[0]["changed"]
        assert json.loads(server.request("GET", "/api/v1/namespaces/kf-apply/configmaps/cfg")[1])["data"] == {"a": "2"}

        # A user without rights is refused with the API's status, which the RBAC task tells apart.
        nobody = client_from_kubeconfig(_kubeconfig(str(tmp_path / "nobody.kubeconfig"), server.port, pki, "nobody"))
        with pytest.raises(ko.KubeObjectsError) as refused:
            ko.apply(nobody, [binding])
        assert ko.failure_details(refused.value)["reason"] == "Forbidden"

        # Nodes: labelled and tainted once; another taint is kept; absent takes only ours away.
        role = "node-role.kubernetes.io/control-plane"
        taint = {"key": role, "effect": "NoSchedule"}
        other = {"key": "dedicated", "value": "db", "effect": "NoExecute"}
        for name, taints in (("cp1", []), ("cp2", [other])):
            node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {"taints": taints}}
            status, body = server.request("POST", "/api/v1/nodes", node)
            assert status == 201, body
        assert ko.reconcile_nodes(admin, ["cp1", "cp2"], {role: ""}, [taint])["patched"] == ["cp1", "cp2"]
        nodes = ko.list_nodes(admin)
        # (The apiserver's admission adds node.kubernetes.io/not-ready itself.)
        assert other in nodes["cp2"]["spec"]["taints"] and taint in nodes["cp2"]["spec"]["taints"]
        assert taint in nodes["cp1"]["spec"]["taints"] and nodes["cp1"]["metadata"]["labels"][role] == ""
        assert ko.reconcile_nodes(admin, ["cp1", "cp2"], {role: ""}, [taint])["patched"] == []
        assert ko.reconcile_nodes(admin, ["cp2"], {}, [taint], taints_state="absent")["patched"] == ["cp2"]
        left = ko.list_nodes(admin)["cp2"]["spec"]["taints"]
        assert other in left and taint not in left
        # Cordon and uncordon, each once.
        assert ko.reconcile_nodes(admin, ["cp1"], {}, [], unschedulable=True)["patched"] == ["cp1"]
        assert ko.list_nodes(admin)["cp1"]["spec"]["unschedulable"] is True
        assert ko.reconcile_nodes(admin, ["cp1"], {}, [], unschedulable=True)["patched"] == []
        assert ko.reconcile_nodes(admin, ["cp1"], {}, [], unschedulable=False)["patched"] == ["cp1"]
        assert not ko.list_nodes(admin)["cp1"]["spec"].get("unschedulable")
        assert ko.reconcile_nodes(admin, ["cp1"], {}, [], unschedulable=False)["patched"] == []
        # No kubelet posts a Ready condition here: a wait for Ready times out naming the nodes.
        with pytest.raises(ko.KubeObjectsError, match="not Ready: cp1"):
            ko.reconcile_nodes(admin, ["cp1"], {}, [], ready=True, timeout=1)

        # A rollout that does not finish says why its pods are not ready. No controller-manager runs here (the
        # Deployment's generation is never observed), so the test makes its pod, and writes its status as a kubelet
        # would, through the pods/status subresource.
        labels = {"app": "web"}
        container = {"name": "web", "image": "registry.example.invalid/web:1"}
        deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "kf-apply"},
                      "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                               "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}}
        account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "kf-apply"}}
        applied = ko.apply(admin, [account, deployment])
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "kf-apply", "labels": labels},
               "spec": {"nodeName": "cp1", "containers": [container]}}
        status, body = server.request("POST", "/api/v1/namespaces/kf-apply/pods", pod)
        assert status == 201, body
        waiting = {"reason": "ErrImagePull", "message": "failed to resolve reference registry.example.invalid/web:1"}
        admin.request("PATCH", "/api/v1/namespaces/kf-apply/pods/web-1/status", {"status": {"phase": "Pending", "containerStatuses": [
            dict(container, imageID="", ready=False, restartCount=0, state={"waiting": waiting})]}},
            content_type="application/merge-patch+json")
        with pytest.raises(ko.KubeObjectsError) as stuck:
            ko.wait_rollouts(admin, applied[1:], timeout=1)
        assert str(stuck.value) == ("not rolled out after 1 s: Deployment kf-apply/web: the controller has not seen its current generation yet "
                                    "(pod web-1 on cp1: ErrImagePull: failed to resolve reference registry.example.invalid/web:1)")
    finally:
        server.stop()


def _scheduler_kubeconfig(path: str) -> None:
    """A kubeconfig the scheduler reads but, with --write-config-to, never connects with."""
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
           "clusters": [{"name": "test", "cluster": {"server": f"https://127.0.0.1:{free_port()}"}}],
           "users": [{"name": "test", "user": {"token": "not-used"}}],
           "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}]}
    write_yaml(path, doc)


def _run_scheduler(binary: str, config: str, out: str):
    # --secure-port=0: no HTTPS listener (and no delegated authentication) for a run that only writes its config.
    return subprocess.run([binary, "--config", config, "--write-config-to", out, "--secure-port=0"],
                          capture_output=True, text=True, check=False, timeout=90, stdin=subprocess.DEVNULL)


def test_scheduler_loads_the_modules_config_and_refuses_an_unknown_field(tmp_path):
    binary = kube_binary("kube-scheduler")
    helped = subprocess.run([binary, "--help"], capture_output=True, text=True, check=False, timeout=60)
    assert helped.returncode == 0, helped.stderr
    flags = _load_tool().parse_help(helped.stdout)
    assert "--write-config-to" in flags and "--config" in flags and "--secure-port" in flags

    settings = role_settings(tmp_path)
    files = cp.paths(settings)
    _scheduler_kubeconfig(files["scheduler_kubeconfig"])
    doc = cp.config_doc("KubeSchedulerConfiguration", settings)
    write_yaml(files["scheduler_config"], doc)
    out = str(tmp_path / "written.yaml")
    done = _run_scheduler(binary, files["scheduler_config"], out)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out, encoding="utf-8") as handle:
        written = yaml.safe_load(handle)
    assert (written["apiVersion"], written["kind"]) == (doc["apiVersion"], doc["kind"])
    assert written["clientConnection"]["kubeconfig"] == files["scheduler_kubeconfig"]
    assert written["leaderElection"]["leaderElect"] is True
    assert written["enableProfiling"] is False and written["enableContentionProfiling"] is False

    # Strict decoding: a misspelt field is an error, not silently dropped.
    bad = dict(doc, leaderElection={"leaderElect": True, "leaderElekt": True})
    write_yaml(files["scheduler_config"], bad)
    refused = _run_scheduler(binary, files["scheduler_config"], str(tmp_path / "refused.yaml"))
    assert refused.returncode != 0
    assert "unknown field" in refused.stderr and "leaderElekt" in refused.stderr, refused.stderr[-3000:]
    assert not os.path.exists(tmp_path / "refused.yaml")

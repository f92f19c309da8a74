# SPDX-License-Identifier: GPL-3.0-or-later
"""Workloads on the cluster site.yml converged: the nodes (containerd, the kubelets with their
approved serving certificates), kube-proxy, flannel and CoreDNS at work, checked with busybox pods
(kubeforge.local/busybox, imported offline on every node).

What it writes it removes: the namespace kubeforge-verify (a module fixture creates it and, at the
end, deletes it with everything in it and waits until it is gone) and one CertificateSigningRequest
(deleted by its test). The faults that change the nodes (a containerd config change, a flannel
backend switch) are in ../faults, run by the side_effect step."""
from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import re
import socket
import ssl
import subprocess
import time
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeforge_verify import (CONTROL_PLANE_TOLERATION, HTTPD_PORT, HTTPD_SCRIPT, REQUEST_TIMEOUT, busybox_image, busybox_pod,
                              create_namespace, delete_namespace, docker, docker_exec, flannel_net_conf, group_var, host_kubectl,
                              httpd_started_line, kubectl_apply, kubectl_json, node_pod_cidrs, nodes_ready, pod_network_problems,
                              pod_ready, unit_property, wait_for, wait_pods_ready)

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTROL_PLANE = {"site-cp1": "172.30.41.11", "site-cp2": "172.30.41.12", "site-cp3": "172.30.41.13"}
HOSTS = {**CONTROL_PLANE, "site-w1": "172.30.41.21"}
# kubectl runs on this host with its admin kubeconfig (kubeforge_verify.host_kubectl).
KUBECTL = "site-cp1"
NAMESPACE = "kubeforge-verify"
KUBE_VERSION = str(group_var(SCENARIO, "kube_version"))
POD_CIDR = str(group_var(SCENARIO, "kube_pod_cidr"))
# The 'kubernetes' service takes the first address of the service network (10.96.0.1).
KUBERNETES_SERVICE_IP = str(next(ipaddress.ip_network(str(group_var(SCENARIO, "kube_service_cidr"))).hosts()))
DNS_IP = str(group_var(SCENARIO, "kube_cluster_dns_ip"))
DOMAIN = str(group_var(SCENARIO, "kube_cluster_domain"))
TAINTED = bool(group_var(SCENARIO, "kube_control_plane_taint_enabled"))
CONTROL_PLANE_ROLE = "node-role.kubernetes.io/control-plane"
CA_FILE = "/etc/kubernetes/pki/ca.crt"
KUBELET_PORT = 10250
# roles/kubelet_bootstrap: the serving-CSR approver, a oneshot service its timer starts on each control-plane host.
APPROVER = "kubelet-csr-approver.service"
KUBELET_SERVING_SIGNER = "kubernetes.io/kubelet-serving"
FOREIGN_IP = "10.1.2.3"
WEB_REPLICAS = 4
# The client pod of the service and DNS checks; the web pods spread over every node, so most are elsewhere.
CLIENT_NODE = "site-w1"
# Seconds nodes, deployments and pods get to become ready.
READY_TIMEOUT = 180


# --------------------------------------------------------------------------- helpers

def pod_exec(pod: str, *command: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """``kubectl exec`` in a pod of the test namespace (apiserver -> kubelet over TLS)."""
    return host_kubectl(KUBECTL, "-n", NAMESPACE, "exec", pod, "--", *command, check=False, timeout=timeout)


def fetch(pod: str, url: str) -> str:
    """The body busybox wget gets from ``url`` inside a pod (5 s timeout: busybox 1.35 wget -T segfaults); fails with wget's error."""
    run = pod_exec(pod, "timeout", "5", "wget", "-q", "-O-", url)
    assert run.returncode == 0, f"wget {url} in {pod} exited {run.returncode}: {run.stdout[-500:]} {run.stderr[-1000:]}"
    return run.stdout.strip()


_ADDRESS = re.compile(r"^Address(?:\s+\d+)?:\s*(\S+)")


def nslookup_addresses(output: str) -> set[str]:
    """The addresses busybox nslookup prints for the name asked (the Address lines after a Name line;
    the server's own Address line comes before). Both output formats: ``Address: 10.96.0.1`` and
    ``Address 1: 10.96.0.1 kubernetes.default.svc.cluster.local``."""
    addresses, answer = set(), False
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("Name:"):
            answer = True
            continue
        match = _ADDRESS.match(line) if answer else None
        if match:
            try:
                addresses.add(str(ipaddress.ip_address(match.group(1))))
            except ValueError:
                continue
    return addresses


def served_certificate(address: str, port: int) -> x509.Certificate:
    """The certificate a TLS server presents (not verified here: the caller checks it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((address, port), timeout=REQUEST_TIMEOUT) as raw:
        with context.wrap_socket(raw, server_hostname=None) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der, f"{address}:{port} presented no certificate"
    return x509.load_der_x509_certificate(der)


def cross_node_pairs(pods: list[dict]) -> list[tuple[dict, dict]]:
    """Each pod with the next one (in node order, wrapping) that runs on another node: every node
    sends and receives."""
    ordered = sorted(pods, key=lambda pod: (pod["node"], pod["name"]))
    pairs = []
    for index, source in enumerate(ordered):
        target = next((pod for pod in ordered[index + 1:] + ordered[:index] if pod["node"] != source["node"]), None)
        if target:
            pairs.append((source, target))
    return pairs


def pods_overview() -> str:
    """``kubectl get pods -o wide`` of the test namespace, for failure messages."""
    return host_kubectl(KUBECTL, "-n", NAMESPACE, "get", "pods", "-o", "wide", check=False).stdout


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def image() -> str:
    return busybox_image(sorted(HOSTS))


@pytest.fixture(scope="module")
def namespace():
    """The test namespace, deleted with everything in it at the end (waited for: the cluster is left as found)."""
    create_namespace(KUBECTL, NAMESPACE)
    yield NAMESPACE
    delete_namespace(KUBECTL, NAMESPACE)


def web_deployment(image: str) -> dict:
    """4 busybox httpd pods, one per node where the scheduler can (the control-plane taint tolerated,
    at most one pod more on any node than on another)."""
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "replicas": WEB_REPLICAS,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "tolerations": [CONTROL_PLANE_TOLERATION],
                    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                   "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": labels}}],
                    "terminationGracePeriodSeconds": 1,
                    "enableServiceLinks": False,
                    "containers": [{
                        "name": "httpd", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", HTTPD_SCRIPT],
                        "ports": [{"name": "http", "containerPort": HTTPD_PORT}],
                        "readinessProbe": {"httpGet": {"path": "/", "port": HTTPD_PORT}, "periodSeconds": 2},
                    }],
                },
            },
        },
    }


def web_service(name: str, kind: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"type": kind, "selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 80, "targetPort": HTTPD_PORT, "protocol": "TCP"}]}}


@pytest.fixture(scope="module")
def web(namespace, image) -> dict:
    """The web Deployment available, with its ClusterIP Service web and NodePort Service web-nodeport:
    {pods: [{name, node, ip}], cluster_ip, node_port}."""
    kubectl_apply(KUBECTL, web_deployment(image), web_service("web", "ClusterIP"), web_service("web-nodeport", "NodePort"))

    def available() -> bool:
        deployment = kubectl_json(KUBECTL, "-n", namespace, "get", "deployment", "web")
        status = deployment.get("status") or {}
        return (status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
                and status.get("updatedReplicas") == status.get("availableReplicas") == status.get("replicas") == WEB_REPLICAS)
    try:
        wait_for(available, timeout=READY_TIMEOUT, what=f"deployment web: {WEB_REPLICAS} replicas available", interval=3)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{pods_overview()}") from exc
    pods = [{"name": pod["metadata"]["name"], "node": pod["spec"]["nodeName"], "ip": pod["status"]["podIP"]}
            for pod in kubectl_json(KUBECTL, "-n", namespace, "get", "pods", "-l", "app=web")["items"] if pod_ready(pod)]
    assert len(pods) == WEB_REPLICAS, pods_overview()
    cluster_ip = kubectl_json(KUBECTL, "-n", namespace, "get", "service", "web")["spec"]["clusterIP"]
    [port] = kubectl_json(KUBECTL, "-n", namespace, "get", "service", "web-nodeport")["spec"]["ports"]
    return {"pods": pods, "cluster_ip": cluster_ip, "node_port": port["nodePort"]}


@pytest.fixture(scope="module")
def client(namespace, image) -> dict:
    """A busybox pod on CLIENT_NODE that only sleeps: the client of the service and DNS checks."""
    kubectl_apply(KUBECTL, busybox_pod("client", namespace, image, "exec sleep 86400", node=CLIENT_NODE))
    pod = wait_pods_ready(KUBECTL, namespace, ["client"], timeout=READY_TIMEOUT)["client"]
    return {"name": "client", "node": CLIENT_NODE, "ip": pod["status"]["podIP"]}


@pytest.fixture(scope="module")
def cluster_ca() -> x509.Certificate:
    """The cluster CA as a control-plane host has it (the kubelets' serving certificates are signed with it)."""
    return x509.load_pem_x509_certificate(docker_exec(KUBECTL, "cat", CA_FILE).encode())


# --------------------------------------------------------------------------- the nodes

def test_every_node_is_ready_with_its_address_and_kubelet_version():
    wait_for(lambda: nodes_ready(KUBECTL, sorted(HOSTS)), timeout=READY_TIMEOUT, what=f"nodes {sorted(HOSTS)} Ready", interval=3)
    nodes = {node["metadata"]["name"]: node for node in kubectl_json(KUBECTL, "get", "nodes")["items"]}
    assert set(nodes) == set(HOSTS), sorted(nodes)
    for name, address in HOSTS.items():
        internal = [entry["address"] for entry in nodes[name]["status"]["addresses"] if entry["type"] == "InternalIP"]
        assert internal == [address], (name, nodes[name]["status"]["addresses"])
        assert nodes[name]["status"]["nodeInfo"]["kubeletVersion"] == f"v{KUBE_VERSION}", (name, nodes[name]["status"]["nodeInfo"])


def test_control_plane_nodes_carry_their_role_label_and_taint():
    nodes = {node["metadata"]["name"]: node for node in kubectl_json(KUBECTL, "get", "nodes")["items"]}
    for name in HOSTS:
        labels = nodes[name]["metadata"].get("labels") or {}
        taints = {(taint["key"], taint["effect"]) for taint in nodes[name]["spec"].get("taints") or []}
        control_plane = name in CONTROL_PLANE
        assert (CONTROL_PLANE_ROLE in labels) == control_plane, (name, labels)
        assert ((CONTROL_PLANE_ROLE, "NoSchedule") in taints) == (control_plane and TAINTED), (name, taints)


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_the_kubelet_runs_the_inventory_kubelet_config_extra_merged_over_the_role_configuration(name):
    """The kubelet's running configuration (its /configz, through the API): the lab's kubelet_config_extra (image
    garbage collection off, eviction only on a nearly full disk) over the role's, whose authentication stays."""
    extra = group_var(SCENARIO, "kubelet_config_extra")
    running = json.loads(host_kubectl(KUBECTL, "get", "--raw", f"/api/v1/nodes/{name}/proxy/configz").stdout)["kubeletconfig"]
    assert running["imageGCHighThresholdPercent"] == extra["imageGCHighThresholdPercent"], running
    assert running["evictionHard"] == extra["evictionHard"], running["evictionHard"]
    assert running["authentication"]["anonymous"]["enabled"] is False and running["authentication"]["webhook"]["enabled"] is True, running


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_the_kubelet_holds_a_shutdown_back_until_it_has_ended_its_pods(name):
    """Graceful node shutdown: the running kubelet has the role's grace periods (its /configz, Go's spelling), and holds
    logind's delay lock on shutdown, which a shutdown or reboot through logind waits on (the fault tests shut a node
    down that way)."""
    running = json.loads(host_kubectl(KUBECTL, "get", "--raw", f"/api/v1/nodes/{name}/proxy/configz").stdout)["kubeletconfig"]
    assert (running.get("shutdownGracePeriod"), running.get("shutdownGracePeriodCriticalPods")) == ("1m0s", "20s"), running
    kubelet = unit_property(name, "kubelet", "MainPID")
    # WHO UID USER PID COMM WHAT WHY... MODE
    locks = [line.split() for line in docker_exec(name, "systemd-inhibit", "--list", "--no-legend").splitlines() if line.strip()]
    assert [lock for lock in locks if lock[3] == kubelet and lock[5] == "shutdown" and lock[-1] == "delay"], locks


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_the_kubelet_serves_a_certificate_of_the_cluster_ca_for_its_own_name_and_address_only(name, cluster_ca):
    """What the kubelet presents on :10250, checked here: signed by the cluster CA (the approved serving
    CSR, signed by kube-controller-manager), valid now, CN=system:node:<name>, O=system:nodes, server
    auth, and exactly two SANs: the node name and the node address."""
    served: list[x509.Certificate] = []

    def presented() -> bool:
        served.append(served_certificate(HOSTS[name], KUBELET_PORT))
        return True
    wait_for(presented, timeout=60, what=f"{name}'s kubelet answering TLS on {HOSTS[name]}:{KUBELET_PORT}", interval=2)
    certificate = served[-1]
    try:
        certificate.verify_directly_issued_by(cluster_ca)
    except Exception as exc:  # pylint: disable=broad-except  # ValueError (issuer), InvalidSignature, TypeError
        pytest.fail(f"{name}'s kubelet serving certificate (issuer {certificate.issuer.rfc4514_string()}) is not signed by the "
                    f"cluster CA {cluster_ca.subject.rfc4514_string()}: {exc!r}")
    now = datetime.datetime.now(datetime.timezone.utc)
    validity = (certificate.not_valid_before_utc, certificate.not_valid_after_utc)
    assert validity[0] <= now < validity[1], validity
    subject = {"CN": [a.value for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)],
               "O": [a.value for a in certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]}
    assert subject == {"CN": [f"system:node:{name}"], "O": ["system:nodes"]}, certificate.subject.rfc4514_string()
    assert ExtendedKeyUsageOID.SERVER_AUTH in certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted((type(entry).__name__, str(entry.value)) for entry in sans) == [("DNSName", name), ("IPAddress", HOSTS[name])], \
        [str(entry) for entry in sans]


def csr_conditions(name: str) -> dict[str, dict]:
    status = kubectl_json(KUBECTL, "get", "certificatesigningrequest", name).get("status") or {}
    return {condition["type"]: condition for condition in status.get("conditions") or []}


def test_a_serving_request_with_a_foreign_address_is_never_approved():
    """A kubelet-serving CSR from node site-w1 (impersonated) for its own name and address plus 10.1.2.3:
    one run of the approver on site-cp1 denies it, and it stays without an approval or a certificate."""
    node, name = "site-w1", f"kubeforge-verify-foreign-san-{uuid.uuid4().hex[:8]}"
    key = ec.generate_private_key(ec.SECP256R1())
    request = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                                        x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}")]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(node), x509.IPAddress(ipaddress.ip_address(HOSTS[node])),
                                                           x509.IPAddress(ipaddress.ip_address(FOREIGN_IP))]), critical=False)
               .sign(key, hashes.SHA256()))
    manifest = {
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name},
        "spec": {"request": base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode(),
                 "signerName": KUBELET_SERVING_SIGNER, "usages": ["digital signature", "key encipherment", "server auth"]},
    }
    created = host_kubectl(KUBECTL, "create", f"--as=system:node:{node}", "--as-group=system:nodes", "--as-group=system:authenticated",
                           "-f", "-", "-o", "json", stdin=json.dumps(manifest))
    try:
        spec = json.loads(created.stdout)["spec"]
        assert spec["username"] == f"system:node:{node}" and "system:nodes" in spec["groups"], spec
        # A run its timer started before the request existed would not see it: let such a run end first.
        wait_for(lambda: unit_property(KUBECTL, APPROVER, "ActiveState") != "activating", timeout=60,
                 what=f"{APPROVER} on {KUBECTL} idle", interval=1)
        started = time.monotonic()
        # A oneshot service: systemctl returns once the pass is over (and fails if the pass failed).
        docker_exec(KUBECTL, "systemctl", "start", APPROVER, timeout=120)
        assert unit_property(KUBECTL, APPROVER, "Result") == "success"
        wait_for(lambda: "Denied" in csr_conditions(name), timeout=15, what=f"CSR {name} denied by the approver", interval=1)
        time.sleep(max(0.0, 10 - (time.monotonic() - started)))
        final = kubectl_json(KUBECTL, "get", "certificatesigningrequest", name)
        conditions = {condition["type"]: condition for condition in (final.get("status") or {}).get("conditions") or []}
        assert "Approved" not in conditions, conditions
        assert not (final.get("status") or {}).get("certificate"), "a certificate was issued for a foreign address"
        denied = conditions["Denied"]
        assert denied["status"] == "True" and FOREIGN_IP in denied.get("message", ""), denied
    finally:
        host_kubectl(KUBECTL, "delete", "certificatesigningrequest", name, "--ignore-not-found", check=False)


# --------------------------------------------------------------------------- the pod network (flannel) and DNS (CoreDNS)

def test_flannel_runs_ready_on_every_node():
    daemonset = kubectl_json(KUBECTL, "-n", "kube-flannel", "get", "daemonset", "kube-flannel-ds")["status"]
    assert daemonset.get("desiredNumberScheduled") == len(HOSTS), daemonset
    assert daemonset.get("numberReady") == len(HOSTS) and daemonset.get("updatedNumberScheduled") == len(HOSTS), daemonset
    pods = kubectl_json(KUBECTL, "-n", "kube-flannel", "get", "pods", "-l", "app=flannel")["items"]
    assert sorted(pod["spec"]["nodeName"] for pod in pods if pod_ready(pod)) == sorted(HOSTS)


@pytest.fixture(scope="module")
def pod_network() -> tuple[dict, dict[str, str]]:
    """(net-conf.json of the running flannel, {node: podCIDR})."""
    return flannel_net_conf(KUBECTL), node_pod_cidrs(KUBECTL)


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_the_pod_network_has_the_shape_of_the_backend_flannel_runs(name, pod_network):
    """The backend read from the running flannel's ConfigMap (so the same check holds after a switch):
    vxlan -> flannel.1 (its VNI and port) and a route to every peer's podCIDR through it; host-gw -> a
    route to every peer's podCIDR via the peer's node address."""
    net_conf, pod_cidrs = pod_network
    assert net_conf["Network"] == POD_CIDR, net_conf
    assert set(pod_cidrs) == set(HOSTS), pod_cidrs
    for node, cidr in pod_cidrs.items():
        assert cidr and ipaddress.ip_network(cidr).subnet_of(ipaddress.ip_network(POD_CIDR)), (node, cidr)
    assert len(set(pod_cidrs.values())) == len(HOSTS), pod_cidrs
    assert pod_network_problems(name, HOSTS, net_conf, pod_cidrs) == [], f"backend {net_conf['Backend']['Type']}"


def test_coredns_serves_the_cluster_dns_address():
    service = kubectl_json(KUBECTL, "-n", "kube-system", "get", "service", "kube-dns")["spec"]
    assert service["clusterIP"] == DNS_IP, service
    deployment = kubectl_json(KUBECTL, "-n", "kube-system", "get", "deployment", "coredns")
    assert deployment["status"].get("availableReplicas", 0) >= 1, deployment["status"]
    assert deployment["status"].get("availableReplicas") == deployment["spec"]["replicas"], deployment["status"]


# --------------------------------------------------------------------------- workloads

def test_a_deployment_spreads_over_the_nodes_and_becomes_available(web):
    nodes = {pod["node"] for pod in web["pods"]}
    assert nodes <= set(HOSTS), web["pods"]
    assert len(nodes) >= 2, f"every web pod on {nodes}:\n{pods_overview()}"


def test_logs_and_exec_reach_every_kubelet(web):
    """kubectl logs and exec go apiserver -> kubelet over TLS (the kubelet's serving certificate
    verified against the cluster CA): one pod on each node the pods run on."""
    for pod in web["pods"]:
        logs = host_kubectl(KUBECTL, "-n", NAMESPACE, "logs", pod["name"], check=False)
        assert logs.returncode == 0, f"kubectl logs {pod['name']} (on {pod['node']}): {logs.stderr[-1500:]}"
        assert httpd_started_line(pod["name"]) in logs.stdout.splitlines(), (pod, logs.stdout[-1000:])
        run = pod_exec(pod["name"], "cat", "/www/index.html")
        assert run.returncode == 0, f"kubectl exec in {pod['name']} (on {pod['node']}): {run.stderr[-1500:]}"
        assert run.stdout.strip() == pod["name"], (pod, run.stdout)


def test_pods_reach_pods_on_other_nodes(web):
    """Every web pod fetches the page of, and pings, a web pod on another node (by pod IP)."""
    pairs = cross_node_pairs(web["pods"])
    assert pairs, web["pods"]
    for source, target in pairs:
        what = f"{source['name']} on {source['node']} -> {target['name']} ({target['ip']}) on {target['node']}"

        def answers(source=source, target=target) -> bool:
            body = fetch(source["name"], f"http://{target['ip']}:{HTTPD_PORT}/")
            assert body == target["name"], f"answered {body!r}"
            return True
        wait_for(answers, timeout=30, what=f"HTTP {what}", interval=1)
        ping = pod_exec(source["name"], "ping", "-c", "2", "-W", "2", target["ip"])
        assert ping.returncode == 0, f"ping {what}: {ping.stdout[-800:]} {ping.stderr[-800:]}"


def test_the_cluster_ip_service_answers_from_a_pod_on_another_node(web, client):
    """Through the ClusterIP (kube-proxy's rules on the client's node): requests until one is answered
    by a backend on another node than the client's; then by the service's DNS name."""
    backends = {pod["name"]: pod["node"] for pod in web["pods"]}
    assert any(node != client["node"] for node in backends.values()), backends
    answered: list[str] = []

    def remote_backend_answers() -> bool:
        body = fetch(client["name"], f"http://{web['cluster_ip']}/")
        assert body in backends, f"{body!r} is not a web pod"
        answered.append(body)
        return backends[body] != client["node"]
    wait_for(remote_backend_answers, timeout=60, what=f"http://{web['cluster_ip']}/ answered from another node than {client['node']}",
             interval=0.5)
    url = f"http://web.{NAMESPACE}.svc.{DOMAIN}/"

    def by_name() -> bool:
        body = fetch(client["name"], url)
        assert body in backends, f"{body!r} is not a web pod"
        return True
    wait_for(by_name, timeout=60, what=f"{url} from {client['name']}", interval=1)


def test_coredns_resolves_service_names_for_pods(web, client):
    resolv = pod_exec(client["name"], "cat", "/etc/resolv.conf").stdout
    assert f"nameserver {DNS_IP}" in resolv.splitlines(), resolv
    for name, want in ((f"kubernetes.default.svc.{DOMAIN}", KUBERNETES_SERVICE_IP), (f"web.{NAMESPACE}.svc.{DOMAIN}", web["cluster_ip"])):
        def resolves(name=name, want=want) -> bool:
            run = pod_exec(client["name"], "nslookup", name)
            assert re.search(rf"^Server:\s+{re.escape(DNS_IP)}\b", run.stdout, re.M), f"not asked of {DNS_IP}: {run.stdout}"
            got = nslookup_addresses(run.stdout)
            assert got == {want}, f"nslookup {name} -> {sorted(got)} (exit {run.returncode}): {run.stdout} {run.stderr[-500:]}"
            return True
        wait_for(resolves, timeout=60, what=f"{name} resolved to {want} in {client['name']}", interval=2)


def test_the_node_port_service_answers_on_a_node_address(web):
    names = {pod["name"] for pod in web["pods"]}
    url = f"http://{HOSTS['site-w1']}:{web['node_port']}/"

    def answers() -> bool:
        run = docker("exec", "site-cp1", "curl", "-s", "-m", "5", url, check=False)
        assert run.returncode == 0, f"curl exited {run.returncode}: {run.stderr[-500:]}"
        assert run.stdout.strip() in names, f"{run.stdout.strip()!r} is not a web pod"
        return True
    wait_for(answers, timeout=60, what=f"{url} from site-cp1", interval=1)

# SPDX-License-Identifier: GPL-3.0-or-later
"""Day 2 on the converged day2 scenario, as an operator runs it (the tests run in file order and
change the cluster):

- add_nodes.yml in check mode changes nothing (on the new host or the others);
- add_nodes.yml adds day2-w2 (put in kube_node in an edited copy of molecule's inventory): no service
  on a host already in the cluster restarts (MainPID and ActiveEnterTimestamp unchanged), the new node
  is Ready and runs a pod of a test Deployment that answers from the other worker across the pod
  network, and a second run changes nothing;
- remove_nodes.yml removes it: refused, naming the budget, while a PodDisruptionBudget blocks the
  drain; once the budget allows it, a first run is killed once the node's kubelet is stopped and a second
  finishes: the node is drained (its pod rescheduled on day2-w1), its Node object deleted, its services
  stopped, its pod network's devices deleted and its state moved aside, and the hosts that stay no longer
  accept its address;
- add_nodes.yml adds the same host again: a pod of the Deployment starts on it and answers across the pod
  network, nothing restarts on the other hosts; then remove_nodes.yml removes it again;
- add_nodes.yml adds day2-w3, the first run killed once its kubelet runs: the second approves its serving
  certificate and the other hosts learn its address, with nothing restarted there;
- remove_nodes.yml -e remove_nodes_hosts_gone=true forgets day2-w3, then stopped for good: refused
  while its node is Ready, then its Node object deleted (its pods after it, by the API) and the hosts
  that stay forget its address, with nothing restarted there; a second run changes nothing;
- add_control_plane.yml in check mode changes nothing; then it adds a 4th control-plane host and etcd member,
  day2-cp4, killed once the cluster has its member (a learner, started or not) and run again, then
  remove_control_plane.yml removes day2-cp3 (killed once its etcd member is removed, and run again), while a
  client on day2-w1 polls the API through its HA endpoint every 200 ms: at most one failed request per host whose
  apiserver restarted or left, each followed by a success; etcd ends with the right voters and the endpoint
  answers on every node;
- remove_control_plane.yml -e remove_control_plane_hosts_gone=true then removes day2-cp4 once it dies (day2-cp3
  has left the inventory): refused while its node is Ready, then its etcd member removed through the
  members that stay, its Node object deleted, and the other hosts' nginx, apiservers' etcd lists and
  firewalls without it, under the same poller; a second run changes nothing."""
from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from kubeforge_verify import (HTTPD_PORT, HTTPD_SCRIPT, SERVICES, ansible_env, api_polled, busybox_image, check_run_changes_nothing,
                              create_namespace, docker, docker_exec, edited_inventory, etcd_client, host_kubectl, host_state, kubectl_apply, lab_host,
                              kubectl_json, nodes_ready, playbook, playbook_command, playbook_killed_when, probe, project_dir, recap,
                              unit_active, unit_properties, wait_for)

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADD_NODES = os.path.join(project_dir(), "playbooks", "add_nodes.yml")
REMOVE_NODES = os.path.join(project_dir(), "playbooks", "remove_nodes.yml")
ADDRESSES = {"day2-cp1": "172.30.42.11", "day2-cp2": "172.30.42.12", "day2-cp3": "172.30.42.13", "day2-cp4": "172.30.42.14"}
CONTROL_PLANE = ["day2-cp1", "day2-cp2", "day2-cp3"]
WORKER = "day2-w1"
NEW, NEW_ADDRESS = "day2-w2", "172.30.42.22"
GONE, GONE_ADDRESS = "day2-w3", "172.30.42.23"
NETWORK = "kubeforge-molecule-day2"
ADD_CONTROL_PLANE = os.path.join(project_dir(), "playbooks", "add_control_plane.yml")
REMOVE_CONTROL_PLANE = os.path.join(project_dir(), "playbooks", "remove_control_plane.yml")
NEW_CP = "day2-cp4"
NEW_CP_ADDRESS = ADDRESSES[NEW_CP]
LEAVING_CP = "day2-cp3"
# The inventory holds 4 etcd members from the add until the removed host leaves it: the operator says so.
FOUR_MEMBERS = ("-e", "etcd_even_members_enabled=true")
KUBECTL_HOST = CONTROL_PLANE[0]
UNITS = {**{host: ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "containerd", "nginx"]
            for host in CONTROL_PLANE},
         WORKER: ["kubelet", "kube-proxy", "containerd", "nginx"]}
NAMESPACE = "kubeforge-day2"
APP = "day2-httpd"


def with_new_worker(inventory: dict) -> None:
    """day2-w2 added to the inventory, in kube_node (and so in k8s_cluster), reached as molecule reaches
    day2-w1: what an operator edits before add_nodes.yml."""
    inventory["all"]["hosts"][NEW] = dict(inventory["all"]["hosts"][WORKER] or {})
    for group in ("kube_node", "k8s_cluster"):
        inventory[group]["hosts"][NEW] = None


def with_a_worker_that_will_be_gone(inventory: dict) -> None:
    """day2-w3 added to the inventory in kube_node; day2-w2, removed, has left it as the docs say."""
    inventory["all"]["hosts"][GONE] = dict(inventory["all"]["hosts"][WORKER] or {})
    for group in ("kube_node", "k8s_cluster"):
        inventory[group]["hosts"][GONE] = None


def with_new_control_plane(inventory: dict) -> None:
    """day2-cp4 added to the inventory in etcd and kube_control_plane (and so in k8s_cluster)."""
    inventory["all"]["hosts"][NEW_CP] = dict(inventory["all"]["hosts"][CONTROL_PLANE[0]] or {})
    for group in ("etcd", "kube_control_plane", "k8s_cluster"):
        inventory[group]["hosts"][NEW_CP] = None


def without_the_removed_control_plane_host(inventory: dict) -> None:
    """day2-cp4 added, day2-cp3 (removed) left the inventory as the docs say: what an operator has before removing
    a control-plane host that died."""
    with_new_control_plane(inventory)
    for group in ("etcd", "kube_control_plane", "k8s_cluster"):
        inventory[group]["hosts"].pop(LEAVING_CP)
    inventory["all"]["hosts"].pop(LEAVING_CP)


@pytest.fixture(scope="module")
def new_host():
    yield from lab_host(NETWORK, NEW, NEW_ADDRESS)


@pytest.fixture(scope="module")
def new_control_plane_host():
    yield from lab_host(NETWORK, NEW_CP, NEW_CP_ADDRESS)


@pytest.fixture(scope="module")
def gone_host():
    yield from lab_host(NETWORK, GONE, GONE_ADDRESS)


@pytest.fixture(scope="module")
def gone_inventory(gone_host, tmp_path_factory) -> str:
    return edited_inventory(str(tmp_path_factory.mktemp("inventory-gone")), SCENARIO, with_a_worker_that_will_be_gone)


@pytest.fixture(scope="module")
def inventory(new_host, tmp_path_factory) -> str:
    return edited_inventory(str(tmp_path_factory.mktemp("inventory")), SCENARIO, with_new_worker)


@pytest.fixture(scope="module")
def control_plane_inventory(new_control_plane_host, tmp_path_factory) -> str:
    return edited_inventory(str(tmp_path_factory.mktemp("inventory-cp")), SCENARIO, with_new_control_plane)


@pytest.fixture(scope="module")
def gone_control_plane_inventory(new_control_plane_host, tmp_path_factory) -> str:
    return edited_inventory(str(tmp_path_factory.mktemp("inventory-cp-gone")), SCENARIO, without_the_removed_control_plane_host)


def service_starts() -> dict:
    """{(host, unit): (MainPID, ActiveEnterTimestampMonotonic)} of every service on the hosts already in the cluster."""
    return {(host, unit): tuple(unit_properties(host, unit, "MainPID", "ActiveEnterTimestampMonotonic").values())
            for host, units in UNITS.items() for unit in units}


def deployment() -> dict:
    """Two busybox httpd replicas spread over the workers (one per node while each can take one)."""
    labels = {"app": APP}
    image = busybox_image([WORKER, NEW])
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP, "namespace": NAMESPACE},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
            "terminationGracePeriodSeconds": 1, "enableServiceLinks": False,
            # Over the nodes it may run on: the tainted control-plane nodes are not domains (nodeTaintsPolicy).
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
                                           "nodeTaintsPolicy": "Honor", "labelSelector": {"matchLabels": labels}}],
            "containers": [{"name": "main", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", HTTPD_SCRIPT],
                            "readinessProbe": {"httpGet": {"path": "/", "port": HTTPD_PORT}, "periodSeconds": 1}}]}}}}


def app_pods() -> list[dict]:
    return kubectl_json(KUBECTL_HOST, "-n", NAMESPACE, "get", "pods", "-l", f"app={APP}")["items"]


def ready_on(node: str) -> list[dict]:
    """The app's pods Ready on ``node``."""
    return [pod for pod in app_pods() if pod["spec"].get("nodeName") == node and not pod["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])]


def fetch(host: str, address: str) -> str:
    """GET http://address:HTTPD_PORT/ from a host (python3 is in the node image)."""
    script = f"import urllib.request; print(urllib.request.urlopen('http://{address}:{HTTPD_PORT}/', timeout=5).read().decode().strip())"
    return docker_exec(host, "python3", "-c", script).strip()


def test_add_nodes_in_check_mode_finishes_and_changes_nothing(inventory):
    """The operator's preview: nothing installed on the new host, nothing changed on the others."""
    hosts = [*UNITS, NEW]
    paths = ("/etc/kubernetes", "/etc/containerd", "/etc/nginx", "/etc/hosts", "/etc/systemd/system", "/var/lib/kubeforge")
    check_run_changes_nothing(inventory, ADD_NODES, "-e", f"add_nodes_hosts={NEW}",
                              state=lambda: {host: host_state(host, SERVICES, paths) for host in hosts})
    assert docker("exec", NEW, "test", "-e", "/opt/kubeforge", check=False).returncode != 0, f"--check installed binaries on {NEW}"
    assert NEW not in [node["metadata"]["name"] for node in kubectl_json(KUBECTL_HOST, "get", "nodes")["items"]]


def test_add_nodes_adds_a_worker_and_restarts_nothing_on_the_others(inventory):
    before = service_starts()
    counts = recap(playbook(inventory, ADD_NODES, "-e", f"add_nodes_hosts={NEW}"))
    assert counts[NEW]["changed"] > 0 and counts[NEW]["failed"] == 0, counts
    assert service_starts() == before, "a service restarted on a host already in the cluster"
    assert nodes_ready(KUBECTL_HOST, [*CONTROL_PLANE, WORKER, NEW])
    # The hosts already in the cluster learned the new address; the firewall by a reload.
    for host in UNITS:
        assert f"{NEW_ADDRESS} {NEW}" in docker_exec(host, "cat", "/etc/hosts"), host
        assert NEW_ADDRESS in docker_exec(host, "nft", "list", "table", "inet", "kubeforge"), host
    for host in CONTROL_PLANE:
        assert NEW in json.loads(docker_exec(host, "cat", "/etc/kubernetes/kubelet-csr-nodes.json")), host


def test_the_new_node_runs_a_pod_of_the_deployment_reached_across_the_pod_network():
    create_namespace(KUBECTL_HOST, NAMESPACE)
    kubectl_apply(KUBECTL_HOST, deployment())
    wait_for(lambda: ready_on(NEW) and ready_on(WORKER), timeout=180, what=f"a Ready {APP} pod on {NEW} and on {WORKER}", interval=2)
    pod = ready_on(NEW)[0]
    # From the other worker to the pod on the new node: VXLAN between them passes both firewalls.
    assert fetch(WORKER, pod["status"]["podIP"]) == pod["metadata"]["name"]


def test_add_nodes_run_again_changes_nothing(inventory):
    counts = recap(playbook(inventory, ADD_NODES, "-e", f"add_nodes_hosts={NEW}"))
    assert {host: c["changed"] for host, c in counts.items() if c["changed"]} == {}, counts


def test_remove_nodes_is_refused_while_a_disruption_budget_blocks_the_drain(inventory):
    kubectl_apply(KUBECTL_HOST, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": APP, "namespace": NAMESPACE},
                                 "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": APP}}}})
    command = playbook_command(inventory, REMOVE_NODES, "-e", f"remove_nodes_hosts={NEW}", "-e", "remove_nodes_drain_timeout=20")
    run = subprocess.run(command, capture_output=True, text=True, env=ansible_env(), check=False, timeout=900)
    assert run.returncode != 0, run.stdout[-4000:]
    assert "disruption budget" in run.stdout, run.stdout[-4000:]
    # Refused before anything left the node: it is cordoned, its pod and services still run.
    node = kubectl_json(KUBECTL_HOST, "get", "node", NEW)
    assert node["spec"].get("unschedulable") is True
    assert ready_on(NEW)
    assert docker("exec", NEW, "systemctl", "is-active", "kubelet", check=False).stdout.strip() == "active"


def test_remove_nodes_drains_the_node_and_moves_its_state_aside(inventory):
    host_kubectl(KUBECTL_HOST, "-n", NAMESPACE, "delete", "poddisruptionbudget", APP)
    before = service_starts()
    # The first run is killed once it has drained the node and stopped its kubelet, before the node's state moves aside
    # and its Node object is deleted: the second run finishes.
    playbook_killed_when(inventory, REMOVE_NODES, "-e", f"remove_nodes_hosts={NEW}", condition=lambda: not unit_active(NEW, "kubelet"),
                         what=f"{NEW}'s kubelet is stopped")
    counts = recap(playbook(inventory, REMOVE_NODES, "-e", f"remove_nodes_hosts={NEW}"))
    assert counts[NEW]["failed"] == 0, counts
    assert NEW not in [node["metadata"]["name"] for node in kubectl_json(KUBECTL_HOST, "get", "nodes")["items"]]
    # Its pod rescheduled on the other worker.
    wait_for(lambda: len(ready_on(WORKER)) == 2, timeout=180, what=f"both {APP} pods Ready on {WORKER}", interval=2)
    assert service_starts() == before, "a service restarted on a host that stays"
    for unit in ("kubelet", "kube-proxy", "containerd", "nginx"):
        state = unit_properties(NEW, unit, "ActiveState", "UnitFileState")
        # Stopped (nginx's stop ends its master with a status systemd reports as failed) and disabled.
        assert state["ActiveState"] in ("inactive", "failed") and state["UnitFileState"] == "disabled", (unit, state)
    listing = docker_exec(NEW, "ls", "-a", "/etc", "/var/lib")
    for path in ("kubernetes", "kubelet"):
        assert re.search(rf"^{path}\.removed-\d{{8}}T\d{{6}}Z$", listing, re.M), listing
        assert not re.search(rf"^{path}$", listing, re.M), listing
    # The hosts that stay forgot its address.
    for host in UNITS:
        assert NEW_ADDRESS not in docker_exec(host, "nft", "list", "table", "inet", "kubeforge"), host
        assert NEW not in docker_exec(host, "cat", "/etc/hosts"), host
    for host in CONTROL_PLANE:
        assert NEW not in json.loads(docker_exec(host, "cat", "/etc/kubernetes/kubelet-csr-nodes.json")), host
    # Its pod network's devices are gone: the bridge held its pod subnet's gateway address.
    assert not re.search(r"^\d+: (cni0|flannel\.\d+)[:@]", docker_exec(NEW, "ip", "-o", "link"), re.M)
    # A second run finds nothing left to do.
    again = recap(playbook(inventory, REMOVE_NODES, "-e", f"remove_nodes_hosts={NEW}"))
    assert {host: c["changed"] for host, c in again.items() if c["changed"]} == {}, again


def test_a_removed_worker_added_again_runs_pods_then_is_removed_again(inventory):
    """The operator takes a worker out (a repair, say) and adds the same host back: it joins with a new Node object and
    pod subnet, and pods start on it (the bridge of its first subnet is gone: the bridge plugin would refuse them)."""
    before = service_starts()
    counts = recap(playbook(inventory, ADD_NODES, "-e", f"add_nodes_hosts={NEW}"))
    assert counts[NEW]["changed"] > 0 and counts[NEW]["failed"] == 0, counts
    assert service_starts() == before, "a service restarted on a host already in the cluster"
    assert nodes_ready(KUBECTL_HOST, [NEW])
    # A third replica: spread over the workers, it can only go to the new node.
    host_kubectl(KUBECTL_HOST, "-n", NAMESPACE, "scale", "deployment", APP, "--replicas=3")
    wait_for(lambda: ready_on(NEW), timeout=120, what=f"a Ready {APP} pod on {NEW} added again", interval=2)
    pod = ready_on(NEW)[0]
    assert fetch(WORKER, pod["status"]["podIP"]) == pod["metadata"]["name"]
    # What the first removal moved aside is still there.
    assert re.search(r"^kubelet\.removed-\d{8}T\d{6}Z$", docker_exec(NEW, "ls", "-a", "/var/lib"), re.M)
    # Out again, as the later tests expect (the operator then takes it out of the inventory).
    host_kubectl(KUBECTL_HOST, "-n", NAMESPACE, "scale", "deployment", APP, "--replicas=2")
    counts = recap(playbook(inventory, REMOVE_NODES, "-e", f"remove_nodes_hosts={NEW}"))
    assert counts[NEW]["failed"] == 0, counts
    assert NEW not in node_names()
    wait_for(lambda: len(ready_on(WORKER)) == 2, timeout=180, what=f"both {APP} pods Ready on {WORKER}", interval=2)
    assert service_starts() == before, "a service restarted on a host that stays"


def voters(hosts: list[str]) -> list[str]:
    """The names of the etcd voters, read through ``hosts``' members; fails on a learner."""
    urls = [f"https://{ADDRESSES[host]}:2379" for host in hosts]
    members, _revision = etcd_client(urls).member_list()
    assert not [m.name for m in members if m.is_learner], members
    return sorted(m.name for m in members)


def run_polled(inventory: str, path: str, *extra: str, changed_hosts: int) -> None:
    """Runs a playbook under api_polled, the poller on the worker."""
    with api_polled(WORKER, changed_hosts):
        playbook(inventory, path, *extra, *FOUR_MEMBERS)


def member_state(host: str, through: list[str]) -> str:
    """What the etcd cluster has at ``host``'s peer URL, read through the members of ``through``: '' (no member),
    'unstarted learner', 'learner' or 'voter'."""
    members, _revision = etcd_client([f"https://{ADDRESSES[member]}:2379" for member in through], timeout=2).member_list()
    for member in members:
        if f"https://{ADDRESSES[host]}:2380" in member.peer_urls:
            return "voter" if not member.is_learner else "learner" if member.started else "unstarted learner"
    return ""


def node_names() -> list[str]:
    return [node["metadata"]["name"] for node in kubectl_json(KUBECTL_HOST, "get", "nodes")["items"]]


def test_add_nodes_killed_once_the_new_kubelet_runs_is_finished_by_a_second_run(gone_inventory):
    before = service_starts()
    # Killed before the new kubelet's serving certificate is approved and the other hosts learn its address.
    playbook_killed_when(gone_inventory, ADD_NODES, "-e", f"add_nodes_hosts={GONE}", condition=lambda: unit_active(GONE, "kubelet"),
                         what=f"{GONE}'s kubelet runs")
    counts = recap(playbook(gone_inventory, ADD_NODES, "-e", f"add_nodes_hosts={GONE}"))
    assert counts[GONE]["failed"] == 0, counts
    assert service_starts() == before, "a service restarted on a host already in the cluster"
    assert nodes_ready(KUBECTL_HOST, [GONE])
    serving = kubectl_json(KUBECTL_HOST, "get", "csr")["items"]
    assert [csr for csr in serving if csr["spec"].get("username") == f"system:node:{GONE}"
            and csr["spec"].get("signerName") == "kubernetes.io/kubelet-serving"
            and any(c["type"] == "Approved" for c in csr.get("status", {}).get("conditions") or [])], serving
    for host in UNITS:
        assert f"{GONE_ADDRESS} {GONE}" in docker_exec(host, "cat", "/etc/hosts"), host
        assert GONE_ADDRESS in docker_exec(host, "nft", "list", "table", "inet", "kubeforge"), host
    for host in CONTROL_PLANE:
        assert GONE in json.loads(docker_exec(host, "cat", "/etc/kubernetes/kubelet-csr-nodes.json")), host


def test_remove_nodes_forgets_a_host_gone_for_good_and_refuses_one_whose_kubelet_reports(gone_inventory):
    gone = ("-e", f"remove_nodes_hosts={GONE}", "-e", "remove_nodes_hosts_gone=true")
    refused = subprocess.run(playbook_command(gone_inventory, REMOVE_NODES, *gone), capture_output=True, text=True, env=ansible_env(),
                             check=False, timeout=900)
    assert refused.returncode != 0 and f"{GONE} is Ready: its kubelet still reports" in refused.stdout, refused.stdout[-4000:]
    assert GONE in node_names()
    # The host dies: its container stops for good (the fixture removes it at the end).
    docker("stop", GONE)
    wait_for(lambda: not nodes_ready(KUBECTL_HOST, [GONE]), timeout=180, what=f"{GONE} NotReady", interval=2)
    before = service_starts()
    counts = recap(playbook(gone_inventory, REMOVE_NODES, *gone))
    assert counts[GONE]["failed"] == 0 and counts[GONE]["unreachable"] == 0, counts
    assert GONE not in node_names()
    assert service_starts() == before, "a service restarted on a host that stays"
    for host in UNITS:
        assert GONE_ADDRESS not in docker_exec(host, "nft", "list", "table", "inet", "kubeforge"), host
        assert GONE not in docker_exec(host, "cat", "/etc/hosts"), host
    for host in CONTROL_PLANE:
        assert GONE not in json.loads(docker_exec(host, "cat", "/etc/kubernetes/kubelet-csr-nodes.json")), host
    # The API deletes the pods bound to the node it no longer has (flannel's among them).
    wait_for(lambda: not [pod for pod in kubectl_json(KUBECTL_HOST, "get", "pods", "-A")["items"] if pod["spec"].get("nodeName") == GONE],
             timeout=180, what=f"no pod bound to {GONE}", interval=5)
    again = recap(playbook(gone_inventory, REMOVE_NODES, *gone))
    assert {host: c["changed"] for host, c in again.items() if c["changed"]} == {}, again


def test_add_control_plane_in_check_mode_finishes_and_changes_nothing(control_plane_inventory):
    """The preview of a 4th control-plane host: no etcd member added, nothing changed on any host."""
    hosts = [*CONTROL_PLANE, WORKER, NEW_CP]
    paths = ("/etc/kubernetes", "/etc/etcd", "/etc/nginx", "/etc/hosts", "/etc/systemd/system", "/var/lib/kubeforge")
    check_run_changes_nothing(control_plane_inventory, ADD_CONTROL_PLANE, "-e", f"add_control_plane_hosts={NEW_CP}", *FOUR_MEMBERS,
                              state=lambda: {"hosts": {host: host_state(host, SERVICES, paths) for host in hosts}, "etcd voters": voters(CONTROL_PLANE)})
    assert not member_state(NEW_CP, CONTROL_PLANE)


def test_add_control_plane_killed_once_its_member_is_added_then_finished_without_api_downtime(control_plane_inventory):
    extra = ("-e", f"add_control_plane_hosts={NEW_CP}", *FOUR_MEMBERS)
    # The three apiservers restart (new certificate and etcd list) and a fourth starts, in the second run: the first is
    # killed in the etcd phase, before any apiserver changes.
    with api_polled(WORKER, changed_hosts=4):
        playbook_killed_when(control_plane_inventory, ADD_CONTROL_PLANE, *extra, condition=lambda: member_state(NEW_CP, CONTROL_PLANE),
                             what=f"the cluster has {NEW_CP}'s etcd member")
        playbook(control_plane_inventory, ADD_CONTROL_PLANE, *extra)
    assert voters(CONTROL_PLANE) == sorted([*CONTROL_PLANE, NEW_CP])
    assert nodes_ready(KUBECTL_HOST, [*CONTROL_PLANE, WORKER, NEW_CP])
    for host in [*CONTROL_PLANE, WORKER, NEW_CP]:
        assert f"server {NEW_CP_ADDRESS}:6443" in docker_exec(host, "cat", "/etc/nginx/nginx.conf"), host
        assert probe(host)[0] == 200, host
    for host in [*CONTROL_PLANE, NEW_CP]:
        assert f"https://{NEW_CP_ADDRESS}:2379" in docker_exec(host, "cat", "/etc/systemd/system/kube-apiserver.service"), host


def test_remove_control_plane_removes_an_original_host_without_api_downtime(control_plane_inventory):
    staying = [host for host in [*CONTROL_PLANE, NEW_CP] if host != LEAVING_CP]
    extra = ("-e", f"remove_control_plane_hosts={LEAVING_CP}", *FOUR_MEMBERS)
    # Three apiservers restart (etcd list) and one leaves, in the first run: it is killed once the leaving member is
    # removed, before that host's services stop and its data moves aside. The second run finishes.
    with api_polled(WORKER, changed_hosts=4):
        playbook_killed_when(control_plane_inventory, REMOVE_CONTROL_PLANE, *extra,
                             condition=lambda: member_state(LEAVING_CP, staying) == "", what=f"{LEAVING_CP}'s etcd member is removed")
        playbook(control_plane_inventory, REMOVE_CONTROL_PLANE, *extra)
    assert voters(staying) == sorted(staying)
    assert LEAVING_CP not in [node["metadata"]["name"] for node in kubectl_json(KUBECTL_HOST, "get", "nodes")["items"]]
    leaving_address = ADDRESSES[LEAVING_CP]
    for host in [*staying, WORKER]:
        assert f"server {leaving_address}:6443" not in docker_exec(host, "cat", "/etc/nginx/nginx.conf"), host
        assert probe(host)[0] == 200, host
    for host in staying:
        assert f"https://{leaving_address}:2379" not in docker_exec(host, "cat", "/etc/systemd/system/kube-apiserver.service"), host
    for unit in ("etcd", "kube-apiserver", "kubelet"):
        assert unit_properties(LEAVING_CP, unit, "ActiveState")["ActiveState"] == "inactive", unit
    listing = docker_exec(LEAVING_CP, "ls", "/var/lib")
    assert re.search(r"^etcd\.removed-\d{8}T\d{6}Z$", listing, re.M) and not re.search(r"^etcd$", listing, re.M), listing
    # A second run finds nothing left to do.
    again = recap(playbook(control_plane_inventory, REMOVE_CONTROL_PLANE, *extra))
    assert {host: c["changed"] for host, c in again.items() if c["changed"]} == {}, again


def test_remove_control_plane_forgets_a_host_gone_for_good(gone_control_plane_inventory):
    staying = [host for host in CONTROL_PLANE if host != LEAVING_CP]
    gone = ("-e", f"remove_control_plane_hosts={NEW_CP}", "-e", "remove_control_plane_hosts_gone=true")
    # Refused while its node is Ready, before any host changes.
    refused = subprocess.run(playbook_command(gone_control_plane_inventory, REMOVE_CONTROL_PLANE, *gone), capture_output=True, text=True,
                             env=ansible_env(), check=False, timeout=900)
    assert refused.returncode != 0 and f"{NEW_CP} is Ready: its kubelet still reports" in refused.stdout, refused.stdout[-4000:]
    assert f"server {NEW_CP_ADDRESS}:6443" in docker_exec(WORKER, "cat", "/etc/nginx/nginx.conf")
    # The host dies: its container stops for good (the fixture removes it at the end).
    docker("stop", NEW_CP)
    wait_for(lambda: not nodes_ready(KUBECTL_HOST, [NEW_CP]), timeout=180, what=f"{NEW_CP} NotReady", interval=2)
    # The two apiservers that stay restart (etcd list); the dead one's requests went elsewhere already.
    run_polled(gone_control_plane_inventory, REMOVE_CONTROL_PLANE, *gone, changed_hosts=2)
    assert voters(staying) == sorted(staying)
    assert NEW_CP not in node_names()
    for host in [*staying, WORKER]:
        assert f"server {NEW_CP_ADDRESS}:6443" not in docker_exec(host, "cat", "/etc/nginx/nginx.conf"), host
        assert NEW_CP_ADDRESS not in docker_exec(host, "nft", "list", "table", "inet", "kubeforge"), host
        assert probe(host)[0] == 200, host
    for host in staying:
        assert f"https://{NEW_CP_ADDRESS}:2379" not in docker_exec(host, "cat", "/etc/systemd/system/kube-apiserver.service"), host
    again = recap(playbook(gone_control_plane_inventory, REMOVE_CONTROL_PLANE, *gone))
    assert {host: c["changed"] for host, c in again.items() if c["changed"]} == {}, again

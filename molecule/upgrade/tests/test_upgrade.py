# SPDX-License-Identifier: GPL-3.0-or-later
"""upgrade.yml on the converged upgrade scenario, as an operator runs it (the tests run in file order
and change the cluster):

- upgrade.yml in check mode finishes and changes nothing: no version, service, file or snapshot;
- Kubernetes 1.36 -> 1.37, etcd 3.5 -> 3.6 and CoreDNS to its next version (its image new in the images
  directory, as an offline operator brings it) in one run, while a client on the worker polls the API
  through its HA endpoint every 200 ms, another polls a Service, and a writer puts keys into etcd:
  the first run is killed once the control plane has started to change, a second run finishes it;
  every component then reports the new version, CoreDNS runs its new image and answers, at most one
  failed request per host restarted or node drained (each followed by a success), 0 etcd writes lost;
- a third run changes nothing;
- a downgrade is refused before anything changes (a skipped minor is refused by the preflight, which
  finds no artifacts of an unknown release; the policy itself is unit-tested)."""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import time

from kubeforge_verify import (HTTPD_PORT, HTTPD_SCRIPT, SERVICES, ApiPoller, Writer, ansible_env, busybox_image, check_run_changes_nothing,
                              create_namespace, docker_exec, etcd_client, host_kubectl, host_state, inventory_file, kubectl_apply, kubectl_json, node_images,
                              playbook, playbook_command, playbook_killed_when, poll_failures, project_dir, recap, wait_for)

UPGRADE = os.path.join(project_dir(), "playbooks", "upgrade.yml")
CONTROL_PLANE = {"upgrade-cp1": "172.30.43.11", "upgrade-cp2": "172.30.43.12", "upgrade-cp3": "172.30.43.13"}
WORKER = "upgrade-w1"
HOSTS = [*CONTROL_PLANE, WORKER]
# What an upgrade writes on the hosts besides the binaries (compared by their --version): configurations, units, the
# staged links, the etcd snapshot on the member.
CHECKED_PATHS = ("/etc/kubernetes", "/etc/etcd", "/etc/nginx", "/etc/systemd/system", "/opt/kubeforge/staged", "/var/backups/etcd")
KUBECTL_HOST = "upgrade-cp1"


def components() -> dict:
    with open(os.path.join(project_dir(), "tests", "harness", "upstream", "components.json"), encoding="utf-8") as handle:
        return json.load(handle)["components"]


OLD_KUBE, NEW_KUBE = components()["kubernetes"][:2]
OLD_ETCD, NEW_ETCD = components()["etcd"][:2]
# The scenario starts on the second CoreDNS (its images directory: images-previous) and upgrades to the lab's.
NEW_COREDNS, OLD_COREDNS = components()["coredns"][:2]
COREDNS_IMAGE = "registry.k8s.io/coredns/coredns:v{}"
TARGET = ("-e", f"kube_version={NEW_KUBE}", "-e", f"etcd_version={NEW_ETCD}",
          "-e", f"kubeforge_images_dir={os.path.join(project_dir(), '.cache', 'images')}", "-e", f"coredns_image_tag=v{NEW_COREDNS}")
NAMESPACE, APP = "kubeforge-upgrade", "upgrade-httpd"
PREFIX = "/kubeforge-upgrade/"
# Runs inside the worker: GET the Service every 0.2 s until the stop file exists; prints [[seconds, ok]].
SERVICE_POLLER = r"""
import json, os, sys, time, urllib.request
url, stop, results, start = sys.argv[1], sys.argv[2], [], time.monotonic()
while not os.path.exists(stop):
    began = time.monotonic()
    try:
        body = urllib.request.urlopen(url, timeout=2).read().decode(errors="replace").strip()
        results.append([round(began - start, 2), 1, round(time.time(), 2), body])
    except Exception as error:
        results.append([round(began - start, 2), 0, round(time.time(), 2), repr(error)])
    time.sleep(max(0.0, 0.2 - (time.monotonic() - began)))
print(json.dumps(results))
"""


def versions(host: str) -> dict:
    """{program: first line of --version} of the programs installed on a host."""
    found = {}
    for program in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "etcd"):
        run = subprocess.run(["docker", "exec", host, f"/usr/local/bin/{program}", "--version"], capture_output=True, text=True, check=False)
        if run.returncode == 0:
            found[program] = run.stdout.splitlines()[0].strip()
    return found


def coredns_images() -> list[str]:
    """The image of every CoreDNS container: the Deployment's, then each pod's, sorted."""
    deployment = kubectl_json(KUBECTL_HOST, "-n", "kube-system", "get", "deployment", "coredns")
    pods = kubectl_json(KUBECTL_HOST, "-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns")["items"]
    return [container["image"] for container in deployment["spec"]["template"]["spec"]["containers"]] + sorted(
        container["image"] for pod in pods for container in pod["spec"]["containers"])


def etcd_urls() -> list[str]:
    return [f"https://{address}:2379" for address in CONTROL_PLANE.values()]


def service_misses_explained(results: list, misses: list) -> str:
    """Each failed Service request (poller time, error), the pods that answered just before and after it, and
    the cluster's events of those seconds (cordons, kills, kube-proxy starts): what a double miss came from."""
    events = kubectl_json(KUBECTL_HOST, "get", "events", "-A")["items"]
    lines = []
    for miss in misses:
        index = results.index(miss)
        around = [entry[3] for entry in results[max(0, index - 3):index + 4] if entry[1]]
        moment = miss[2]
        near = sorted(f"{event.get('lastTimestamp') or event.get('eventTime')} {event['involvedObject'].get('kind')}/"
                      f"{event['involvedObject'].get('name')} {event.get('reason')}: {event.get('message', '')[:120]}"
                      for event in events
                      if abs(_epoch(event.get("lastTimestamp") or event.get("eventTime")) - moment) <= 3)
        lines.append(f"{miss[0]} s ({miss[2]}): {miss[3]}; answered around it: {around}; events: {near}")
    return "\n".join(lines)


def _epoch(stamp) -> float:
    """An event's RFC 3339 time as seconds since the epoch (0 when it has none)."""
    if not stamp:
        return 0.0
    return datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


def test_upgrade_in_check_mode_finishes_and_changes_nothing():
    """The operator's preview: the whole run in check mode (the etcd snapshot only reported), nothing upgraded."""
    backups = os.path.join(os.path.dirname(inventory_file()), "etcd-backups")
    assert coredns_images() == [COREDNS_IMAGE.format(OLD_COREDNS)] * 3, "the scenario starts on the earlier CoreDNS"
    check_run_changes_nothing(inventory_file(), UPGRADE, *TARGET, state=lambda: {
        "versions": {host: versions(host) for host in HOSTS}, "hosts": {host: host_state(host, SERVICES, CHECKED_PATHS) for host in HOSTS},
        "coredns": coredns_images(), "node images": {host: node_images(host) for host in HOSTS},
        "controller snapshots": sorted(os.listdir(backups)) if os.path.isdir(backups) else []})
    assert not [node["metadata"]["name"] for node in kubectl_json(KUBECTL_HOST, "get", "nodes")["items"] if node["spec"].get("unschedulable")]


def test_upgrade_killed_half_way_then_finished_without_downtime():
    create_namespace(KUBECTL_HOST, NAMESPACE)
    labels = {"app": APP}
    image = busybox_image(HOSTS)
    kubectl_apply(KUBECTL_HOST, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP, "namespace": NAMESPACE},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
            "terminationGracePeriodSeconds": 1, "enableServiceLinks": False,
            "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}],
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
                                           "labelSelector": {"matchLabels": labels}}],
            "containers": [{"name": "main", "image": image, "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", HTTPD_SCRIPT],
                            "readinessProbe": {"httpGet": {"path": "/", "port": HTTPD_PORT}, "periodSeconds": 1}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": APP, "namespace": NAMESPACE},
         "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": HTTPD_PORT}]}})
    wait_for(lambda: len([p for p in kubectl_json(KUBECTL_HOST, "-n", NAMESPACE, "get", "pods")["items"]
                          if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])]) == 2,
             timeout=180, what="the Service's two pods Ready", interval=2)
    cluster_ip = kubectl_json(KUBECTL_HOST, "-n", NAMESPACE, "get", "service", APP)["spec"]["clusterIP"]

    stop_file = "/tmp/kubeforge-service-poller.stop"
    docker_exec(WORKER, "rm", "-f", stop_file)
    service = subprocess.Popen(["docker", "exec", "-i", WORKER, "python3", "-", f"http://{cluster_ip}/", stop_file],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    service.stdin.write(SERVICE_POLLER)
    service.stdin.close()
    api = ApiPoller(WORKER).start()
    writer = Writer(lambda: etcd_client(etcd_urls()), PREFIX, retry_seconds=10)
    writer.start()
    try:
        # First run, killed once an apiserver runs the new version (the control plane phase has begun).
        playbook_killed_when(inventory_file(), UPGRADE, *TARGET, what="a first apiserver runs the new version", timeout=1800, interval=2,
                             condition=lambda: any(versions(host).get("kube-apiserver") == f"Kubernetes v{NEW_KUBE}" for host in CONTROL_PLANE))
        time.sleep(5)
        finished = recap(playbook(inventory_file(), UPGRADE, *TARGET))
        assert all(counts["failed"] == 0 for counts in finished.values()), finished
    finally:
        writer.finish()
        api_results = api.stop()
        docker_exec(WORKER, "touch", stop_file)
        service_results = json.loads(service.stdout.read())
        service.wait(timeout=60)

    for host in HOSTS:
        found = versions(host)
        assert {name: line for name, line in found.items() if name != "etcd"} == {
            name: f"Kubernetes v{NEW_KUBE}" for name in found if name != "etcd"}, (host, found)
        if host in CONTROL_PLANE:
            assert found["etcd"] == f"etcd Version: {NEW_ETCD}", (host, found)
    assert {node["status"]["nodeInfo"]["kubeletVersion"] for node in kubectl_json(KUBECTL_HOST, "get", "nodes")["items"]} == {f"v{NEW_KUBE}"}
    status = etcd_client(etcd_urls()).status()
    assert status["version"] == NEW_ETCD, status
    # CoreDNS: its new image, which upgrade.yml imported on every node, in every pod (the old ones may still be
    # terminating), and the cluster's names answered through the kube-dns Service.
    assert all(COREDNS_IMAGE.format(NEW_COREDNS) in node_images(host) for host in HOSTS)
    wait_for(lambda: coredns_images() == [COREDNS_IMAGE.format(NEW_COREDNS)] * 3, timeout=120, what="CoreDNS on its new image only", interval=2)
    lookup = host_kubectl(KUBECTL_HOST, "-n", NAMESPACE, "exec", f"deployment/{APP}", "--", "nslookup", "kubernetes.default.svc.cluster.local",
                          check=False)
    assert lookup.returncode == 0 and "10.96.0.1" in lookup.stdout, (lookup.stdout, lookup.stderr)
    # 0 writes lost: every acknowledged put reads back, none failed for good.
    reader = etcd_client(etcd_urls())
    stored = {kv.key.decode(): kv.value.decode() for page in reader.pages(PREFIX, PREFIX[:-1] + "0") for kv in page.kvs}
    lost = [key for key, value in writer.written.items() if stored.get(key) != value]
    print(f"writer: {len(writer.written)} puts, {writer.retried} retried, {len(writer.failed)} failed")
    assert len(writer.written) > 100 and not lost and not writer.failed, (lost[:5], writer.failed[:5])
    # The API through the worker's HA endpoint: at most one failed request per apiserver restarted
    # (the killed run may have restarted one twice), each followed by a success.
    failed, unanswered = poll_failures(api_results)
    print(f"API poller: {len(api_results)} requests, {len(failed)} failed: {failed}")
    assert not unanswered and len(failed) <= len(CONTROL_PLANE) + 1, failed
    # The Service: at most one failed request per node drained, each followed by a success.
    misses = [entry for entry in service_results if not entry[1]]
    twice = [entry for entry, after in zip(service_results, service_results[1:]) if not entry[1] and not after[1]]
    print(f"Service poller: {len(service_results)} requests, {len(misses)} failed")
    explained = service_misses_explained(service_results, misses) if misses else ""
    print(explained)
    assert not twice and len(misses) <= len(HOSTS), explained


def test_upgrade_run_again_changes_nothing():
    counts = recap(playbook(inventory_file(), UPGRADE, *TARGET))
    assert {host: c["changed"] for host, c in counts.items() if c["changed"]} == {}, counts


def test_a_downgrade_is_refused_before_anything_changes():
    """Back to the old release (its artifacts are there, so the preflight passes): upgrade.yml's own check refuses."""
    command = playbook_command(inventory_file(), UPGRADE, "-e", f"kube_version={OLD_KUBE}", "-e", f"etcd_version={NEW_ETCD}")
    run = subprocess.run(command, capture_output=True, text=True, env=ansible_env(), check=False, timeout=900)
    assert run.returncode != 0
    assert "downgrades are refused" in run.stdout, run.stdout[-3000:]
    assert all(versions(host).get("kubelet") == f"Kubernetes v{NEW_KUBE}" for host in HOSTS)

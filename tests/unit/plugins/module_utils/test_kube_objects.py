# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_kube_objects: server-side apply with change detection, rollout waits, node labels and taints.

The API here is a stand-in (FakeAPI: discovery, GET, an apply that merges maps, merge patches of nodes, dry
runs, resource versions): the real kube-apiserver runs these modules in every molecule scenario (site.yml's
converge, its idempotence and check-mode runs)."""

from __future__ import annotations

import contextlib
import copy
import io
import json

import pytest
from ansible.module_utils.testing import patch_module_args
from fake_clock import Clock  # pylint: disable=import-error  # beside this file

from ansible_collections.kubeforge.cluster.plugins.module_utils import _kube_objects as ko
from ansible_collections.kubeforge.cluster.plugins.module_utils._kubelet_csr import APIError
from ansible_collections.kubeforge.cluster.plugins.modules import kube_apply

DISCOVERY = {
    "/api/v1": [("Namespace", "namespaces", False), ("Secret", "secrets", True), ("ConfigMap", "configmaps", True),
                ("Node", "nodes", False), ("ServiceAccount", "serviceaccounts", True)],
    "/apis/apps/v1": [("Deployment", "deployments", True), ("DaemonSet", "daemonsets", True)],
    "/apis/rbac.authorization.k8s.io/v1": [("ClusterRoleBinding", "clusterrolebindings", False)],
}


def merged(base: dict, patch: dict) -> dict:
    """A JSON merge patch (RFC 7386): maps merged, null removes the key."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else copy.deepcopy(value)
    return out


class FakeAPI:
    """A stand-in for the API server, in memory; ``requests`` records (method, path, query, content type)."""

    def __init__(self, objects=(), forbidden=False):
        self.store = {}
        self.requests = []
        self.forbidden = forbidden
        self.version = 10
        self.conflicts = 0
        self.pods = {}  # {list path: [pods]}
        for obj in objects:
            self.store[self.path_of(obj)] = self.stamped(obj)

    @staticmethod
    def path_of(obj):
        for prefix, kinds in DISCOVERY.items():
            for kind, plural, namespaced in kinds:
                if kind == obj["kind"] and prefix.endswith(obj["apiVersion"]):
                    scope = f"/namespaces/{obj['metadata'].get('namespace', 'default')}" if namespaced else ""
                    return f"{prefix}{scope}/{plural}/{obj['metadata']['name']}"
        raise AssertionError(obj)

    def stamped(self, obj):
        self.version += 1
        out = copy.deepcopy(obj)
        out["metadata"].update(resourceVersion=str(self.version), managedFields=[{"manager": "kubeforge", "time": str(self.version)}],
                               uid="u-" + out["metadata"]["name"])
        return out

    def request(self, method, path, body=None, query=None, content_type="application/json"):
        self.requests.append((method, path, dict(query or {}), content_type))
        if self.forbidden:
            raise APIError(f"{method} {path}: HTTP 403: forbidden", status=403)
        if path in DISCOVERY:
            return {"resources": [{"kind": k, "name": n, "namespaced": ns} for k, n, ns in DISCOVERY[path]]
                    + [{"kind": "Scale", "name": "deployments/scale", "namespaced": True}]}
        if method == "GET" and path in self.pods:  # a list of pods, by label selector
            return {"items": [copy.deepcopy(pod) for pod in self.pods[path] if all(
                pod["metadata"]["labels"].get(key) == value for key, value in (term.split("=") for term in query["labelSelector"].split(",")))]}
        if method == "GET" and path == "/api/v1/nodes":
            return {"items": [copy.deepcopy(v) for k, v in sorted(self.store.items()) if k.startswith("/api/v1/nodes/")]}
        current = self.store.get(path)
        if method == "GET":
            if current is None:
                raise APIError(f"GET {path}: HTTP 404: not found", status=404)
            return copy.deepcopy(current)
        if method == "PATCH" and content_type == ko.APPLY_PATCH:
            assert query["fieldManager"] == "kubeforge" and query["force"] == "true"
            result = merged(current or {}, body)
            plain = ko.comparable(result)
            if current is not None and plain == ko.comparable(current):
                return copy.deepcopy(current)  # a no-op apply writes nothing
            result = self.stamped(result) if query.get("dryRun") != "All" else result
            if query.get("dryRun") != "All":
                self.store[path] = result
            return copy.deepcopy(result)
        if method == "PATCH" and content_type == ko.MERGE_PATCH:
            wanted = body.get("metadata", {}).get("resourceVersion")
            if self.conflicts:
                self.conflicts -= 1
                current["metadata"]["resourceVersion"] = str(int(current["metadata"]["resourceVersion"]) + 100)
                raise APIError(f"PATCH {path}: HTTP 409: modified", status=409)
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                raise APIError(f"PATCH {path}: HTTP 409: modified", status=409)
            self.store[path] = self.stamped(merged(current, body))
            return copy.deepcopy(self.store[path])
        raise AssertionError((method, path))

    def writes(self):
        return [(m, p) for m, p, q, _type in self.requests if m == "PATCH" and q.get("dryRun") != "All"]


def configmap(name="cfg", data=None, namespace="kube-system"):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data or {"a": "1"}}


def binding(name="admins"):
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "admins"}]}


def test_new_objects_are_created_and_reported_changed_then_nothing_changes():
    api = FakeAPI()
    first = ko.apply(api, [configmap(), binding()])
    assert [(e["kind"], e["namespace"], e["name"], e["changed"]) for e in first] == [
        ("ConfigMap", "kube-system", "cfg", True), ("ClusterRoleBinding", None, "admins", True)]
    assert "/api/v1/namespaces/kube-system/configmaps/cfg" in api.store
    assert "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/admins" in api.store
    again = ko.apply(api, [configmap(), binding()])
    assert [e["changed"] for e in again] == [False, False]


def test_discovery_is_asked_once_per_group_version_and_subresources_are_not_kinds():
    api = FakeAPI()
    ko.apply(api, [configmap("a"), configmap("b"), binding()])
    assert [p for m, p, q, c in api.requests if p in DISCOVERY] == ["/api/v1", "/apis/rbac.authorization.k8s.io/v1"]
    with pytest.raises(ko.KubeObjectsError, match="no kind Scale in apps/v1"):
        ko.apply(api, [{"apiVersion": "apps/v1", "kind": "Scale", "metadata": {"name": "x"}}])


def test_a_changed_field_is_a_change_and_server_kept_fields_are_not():
    api = FakeAPI([configmap()])
    [entry] = ko.apply(api, [configmap(data={"a": "2"})])
    assert entry["changed"] and entry["before"]["data"] == {"a": "1"} and entry["after"]["data"] == {"a": "2"}
    assert "resourceVersion" not in entry["after"]["metadata"] and "managedFields" not in entry["after"]["metadata"]
    # Status and the server's metadata moving on their own are not the apply's doing.
    path = FakeAPI.path_of(configmap())
    api.store[path]["status"] = {"observed": 3}
    api.store[path]["metadata"]["managedFields"] = [{"time": "later"}]
    assert ko.apply(api, [configmap(data={"a": "2"})])[0]["changed"] is False


def test_check_mode_applies_as_a_dry_run_and_writes_nothing():
    api = FakeAPI([configmap()])
    results = ko.apply(api, [configmap(data={"a": "2"}), binding()], check_mode=True)
    assert [e["changed"] for e in results] == [True, True]
    assert all(q.get("dryRun") == "All" for m, p, q, c in api.requests if m == "PATCH")
    assert api.writes() == [] and api.store[FakeAPI.path_of(configmap())]["data"] == {"a": "1"}


def test_check_mode_does_not_ask_the_api_about_objects_in_a_namespace_it_would_create():
    api = FakeAPI()
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-flannel"}}
    results = ko.apply(api, [namespace, configmap(namespace="kube-flannel")], check_mode=True)
    assert [e["changed"] for e in results] == [True, True]
    assert [p for m, p, q, c in api.requests if m == "PATCH"] == ["/api/v1/namespaces/kube-flannel"]


def test_secret_values_never_appear_in_what_is_returned():
    api = FakeAPI()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
              "stringData": {"token-secret": "0123456789abcdef"}}
    [entry] = ko.apply(api, [secret])
    shown = json.dumps({k: v for k, v in entry.items() if k != "applied"})
    assert "0123456789abcdef" not in shown and ko.REDACTED in shown


def test_an_api_refusal_keeps_its_status_and_reason_and_what_was_applied_before():
    with pytest.raises(ko.KubeObjectsError) as caught:
        ko.apply(FakeAPI(forbidden=True), [binding()])
    details = ko.failure_details(caught.value)
    assert details["status"] == 403 and details["reason"] == "Forbidden"

    class RefusesTheSecond(FakeAPI):
        def request(self, method, path, body=None, query=None, content_type="application/json"):
            if method == "PATCH" and path.endswith("/b"):
                raise APIError("PATCH b: HTTP 422: invalid", status=422)
            return super().request(method, path, body, query, content_type)

    with pytest.raises(ko.KubeObjectsError, match="cannot apply ConfigMap kube-system/b: PATCH b: HTTP 422") as caught:
        ko.apply(RefusesTheSecond(), [configmap("a"), configmap("b")])
    assert ko.failure_details(caught.value) == {"status": 422, "reason": "Invalid", "objects": [
        {"kind": "ConfigMap", "namespace": "kube-system", "name": "a", "changed": True}]}


@pytest.mark.parametrize("obj, problem", [
    ({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
      "status": {"observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 2, "replicas": 2}}, "not seen its current generation"),
    ({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
      "status": {"observedGeneration": 2, "updatedReplicas": 1, "availableReplicas": 2, "replicas": 3}}, "1 updated, 3 in all of 2"),
    ({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
      "status": {"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2, "replicas": 2}}, None),
    ({"kind": "DaemonSet", "metadata": {"generation": 1},
      "status": {"observedGeneration": 1, "desiredNumberScheduled": 4, "updatedNumberScheduled": 4, "numberAvailable": 3}}, "3 available of 4"),
    ({"kind": "DaemonSet", "metadata": {"generation": 1},
      "status": {"observedGeneration": 1, "desiredNumberScheduled": 4, "updatedNumberScheduled": 4, "numberAvailable": 4}}, None),
])
def test_a_rollout_is_done_when_its_generation_runs_updated_and_available_everywhere(obj, problem):
    found = ko.rollout_problem(obj)
    assert found == problem if problem is None else problem in found


def deployment(available):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "coredns", "namespace": "kube-system", "generation": 1},
            "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": available, "replicas": 2}}


def test_rollouts_are_waited_for_and_a_timeout_names_what_is_not_done():
    api = FakeAPI([deployment(available=1)])
    entry = {"kind": "Deployment", "applied": deployment(1)}
    clock = Clock()

    def become_available(seconds):
        clock.sleep(seconds)
        if clock.now >= 3:
            api.store[FakeAPI.path_of(deployment(1))]["status"]["availableReplicas"] = 2

    ko.wait_rollouts(api, [entry, {"kind": "ConfigMap", "applied": configmap()}], timeout=10, clock=clock, sleep=become_available)
    assert clock.now == 3
    api.store[FakeAPI.path_of(deployment(1))]["status"]["availableReplicas"] = 0
    clock = Clock()
    with pytest.raises(ko.KubeObjectsError, match="not rolled out after 5 s: Deployment kube-system/coredns: 0 available of 2"):
        ko.wait_rollouts(api, [entry], timeout=5, clock=clock, sleep=clock.sleep)


def node(name, ready=True, labels=None, taints=None):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": dict(labels or {})},
            "spec": {"taints": list(taints)} if taints else {},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True" if ready else "False"}]}}


ROLE = "node-role.kubernetes.io/control-plane"
TAINT = {"key": ROLE, "effect": "NoSchedule"}


def test_only_a_ready_condition_that_is_true_is_ready():
    assert ko.is_ready(node("a")) and not ko.is_ready(node("b", ready=False))
    assert not ko.is_ready({"metadata": {"name": "c"}, "status": {}})


def test_a_node_is_waited_for_until_its_pod_network_reports_it_is_up():
    # Ready comes with the CNI configuration; flannel reports NetworkUnavailable False once flanneld has the subnet.
    api, clock = FakeAPI([node("w1")]), Clock()
    network = {"NetworkUnavailable": "False"}
    assert not ko.is_ready(node("w1"), network)

    def later(seconds):
        clock.sleep(seconds)
        if clock.now == 1:
            api.store["/api/v1/nodes/w1"]["status"]["conditions"].append({"type": "NetworkUnavailable", "status": "False"})

    result = ko.reconcile_nodes(api, ["w1"], {}, [], ready=True, conditions=network, timeout=10, clock=clock, sleep=later)
    assert result["ready"] == ["w1"] and clock.now == 1
    api, clock = FakeAPI([node("w1")]), Clock()
    with pytest.raises(ko.KubeObjectsError, match=r"after 2 s, nodes not Ready, NetworkUnavailable False: w1"):
        ko.reconcile_nodes(api, ["w1"], {}, [], ready=True, conditions=network, timeout=2, clock=clock, sleep=clock.sleep)


def test_nodes_get_the_label_and_taint_once_and_other_taints_are_kept():
    other = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
    api = FakeAPI([node("cp1"), node("cp2", labels={ROLE: ""}, taints=[TAINT]), node("cp3", taints=[other])])
    result = ko.reconcile_nodes(api, ["cp1", "cp2", "cp3"], {ROLE: ""}, [TAINT])
    assert result == {"patched": ["cp1", "cp3"], "ready": ["cp1", "cp2", "cp3"], "waiting": []}
    assert api.store["/api/v1/nodes/cp3"]["spec"]["taints"] == [other, TAINT]
    assert api.store["/api/v1/nodes/cp1"]["metadata"]["labels"] == {ROLE: ""}
    assert ko.reconcile_nodes(api, ["cp1", "cp2", "cp3"], {ROLE: ""}, [TAINT])["patched"] == []


def test_taints_state_absent_takes_only_that_taint_away():
    other = {"key": "dedicated", "value": "x", "effect": "NoSchedule"}
    api = FakeAPI([node("cp1", taints=[TAINT, other]), node("cp2")])
    result = ko.reconcile_nodes(api, ["cp1", "cp2"], {}, [TAINT], taints_state="absent")
    assert result["patched"] == ["cp1"] and api.store["/api/v1/nodes/cp1"]["spec"]["taints"] == [other]


def test_a_taint_patch_on_a_changed_node_is_made_again_on_a_fresh_read():
    api = FakeAPI([node("cp1")])
    api.conflicts = 2
    assert ko.reconcile_nodes(api, ["cp1"], {}, [TAINT])["patched"] == ["cp1"]
    assert [m for m, p, q, c in api.requests if p == "/api/v1/nodes/cp1"] == ["PATCH", "GET", "PATCH", "GET", "PATCH"]
    api = FakeAPI([node("cp1")])
    api.conflicts = ko.CONFLICT_RETRIES + 1
    with pytest.raises(ko.KubeObjectsError, match="cannot patch the node cp1"):
        ko.reconcile_nodes(api, ["cp1"], {}, [TAINT])


def test_nodes_are_cordoned_and_uncordoned_only_when_they_are_not_already():
    cordoned = node("w1")
    cordoned["spec"]["unschedulable"] = True
    api = FakeAPI([cordoned, node("w2")])
    assert ko.reconcile_nodes(api, ["w1", "w2"], {}, [], unschedulable=False)["patched"] == ["w1"]
    assert "unschedulable" not in api.store["/api/v1/nodes/w1"]["spec"]  # removed, as kubectl uncordon does
    assert ko.reconcile_nodes(api, ["w1", "w2"], {}, [], unschedulable=False)["patched"] == []
    assert ko.reconcile_nodes(api, ["w2"], {}, [TAINT], unschedulable=True)["patched"] == ["w2"]
    assert api.store["/api/v1/nodes/w2"]["spec"] == {"unschedulable": True, "taints": [TAINT]}
    # Not set: the cordon is left as it is.
    assert ko.reconcile_nodes(api, ["w2"], {}, [TAINT])["patched"] == []


def test_a_node_is_waited_for_until_a_pod_of_its_daemonset_has_started_on_it():
    # flannel's container has started once flanneld wrote the node's subnet (its startup probe): only then can a pod get
    # its network. Its Ready condition comes a pod sync later and is not waited for.
    def pod(name, node_name, started, labels=None):
        return {"metadata": {"name": name, "namespace": "kube-flannel", "labels": {"app": "flannel"} if labels is None else labels},
                "spec": {"nodeName": node_name},
                "status": {"conditions": [{"type": "Ready", "status": "False"}],
                           "containerStatuses": [{"name": "kube-flannel", "started": started, "state": {"running": {}}}]}}

    api, clock = FakeAPI([node("w1"), node("w2")]), Clock()
    path = "/api/v1/namespaces/kube-flannel/pods"
    api.pods = {path: [pod("a", "w1", True), pod("b", "w2", False), pod("c", "w2", True, labels={})]}
    wanted = {"namespace": "kube-flannel", "label_selector": "app=flannel"}
    status = api.pods[path][1]["status"]["containerStatuses"][0]

    def later(seconds):
        clock.sleep(seconds)
        if clock.now == 1:
            status["started"] = True

    result = ko.reconcile_nodes(api, ["w1", "w2"], {}, [], ready=True, pods=wanted, timeout=10, clock=clock, sleep=later)
    assert result["ready"] == ["w1", "w2"] and clock.now == 1
    # Started but no longer running (the container ended, its restart is pending): not up.
    status["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    # Nor a pod on its way out (a rollout replaces it), even while its container still runs.
    api.pods[path][2]["metadata"]["labels"] = {"app": "flannel"}
    api.pods[path][2]["metadata"]["deletionTimestamp"] = "2026-12-04T22:00:00Z"
    clock = Clock()
    with pytest.raises(ko.KubeObjectsError, match=r"not Ready, with a started pod app=flannel in kube-flannel: w2"):
        ko.reconcile_nodes(api, ["w1", "w2"], {}, [], ready=True, pods=wanted, timeout=1, clock=clock, sleep=clock.sleep)


def test_check_mode_patches_nothing():
    api = FakeAPI([node("cp1")])
    assert ko.reconcile_nodes(api, ["cp1"], {ROLE: ""}, [TAINT], check_mode=True)["patched"] == ["cp1"]
    assert api.writes() == []


def test_check_mode_reads_the_nodes_once_and_names_those_a_run_would_wait_for():
    # A node being added is not registered in check mode (its kubelet was not started): no wait, no failure.
    api, clock = FakeAPI([node("cp1"), node("w1", ready=False)]), Clock()
    result = ko.reconcile_nodes(api, ["cp1", "w1", "w2"], {ROLE: ""}, [], ready=True, timeout=60, check_mode=True,
                                clock=clock, sleep=clock.sleep)
    assert result == {"patched": ["cp1", "w1"], "ready": ["cp1"], "waiting": ["w1", "w2"]} and clock.now == 0
    assert api.writes() == []
    assert ko.reconcile_nodes(api, ["cp1"], {}, [], ready=True)["waiting"] == []


def test_nodes_are_waited_for_until_registered_and_ready_and_a_timeout_names_them():
    api = FakeAPI([node("w1", ready=False)])
    clock = Clock()

    def later(seconds):
        clock.sleep(seconds)
        if clock.now == 2:
            api.store["/api/v1/nodes/w1"]["status"]["conditions"][1]["status"] = "True"
            api.store["/api/v1/nodes/w2"] = node("w2")

    result = ko.reconcile_nodes(api, ["w1", "w2"], {}, [], ready=True, timeout=10, clock=clock, sleep=later)
    assert result["ready"] == ["w1", "w2"] and clock.now == 2
    api, clock = FakeAPI([node("w1", ready=False)]), Clock()
    with pytest.raises(ko.KubeObjectsError, match=r"after 3 s, nodes not registered: w2; not Ready: w1"):
        ko.reconcile_nodes(api, ["w1", "w2"], {}, [], ready=True, timeout=3, clock=clock, sleep=clock.sleep)
    # Registered is enough without ready.
    assert ko.reconcile_nodes(FakeAPI([node("w1", ready=False)]), ["w1"], {}, [])["ready"] == []


class Failed(Exception):
    pass


class Module:
    """The part of AnsibleModule run_module uses: its params, and fail_json (which never returns)."""

    def __init__(self, kubeconfig):
        self.params = {"kubeconfig": kubeconfig}

    def fail_json(self, **result):
        raise Failed(result)


def test_run_module_fails_with_the_apis_status_and_reason_or_the_kubeconfigs_problem(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": "http://127.0.0.1:1"}}], "users": [{"name": "u", "user": {}}]}))

    def refused(_client):
        raise ko.KubeObjectsError("cannot apply ClusterRoleBinding admins: HTTP 403", status=403)

    with pytest.raises(Failed) as caught:
        ko.run_module(Module(str(kubeconfig)), refused, "kube-apply")
    assert caught.value.args[0] == {"msg": "cannot apply ClusterRoleBinding admins: HTTP 403", "status": 403, "reason": "Forbidden"}
    assert ko.run_module(Module(str(kubeconfig)), lambda client: client.user_agent, "kube-apply") == "kubeforge-kube-apply"
    with pytest.raises(Failed) as caught:
        ko.run_module(Module(str(tmp_path / "absent")), refused, "kube-apply")
    assert caught.value.args[0]["status"] == 0 and "cannot read the kubeconfig" in caught.value.args[0]["msg"]


def stuck_deployment():
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "coredns", "namespace": "kube-system", "generation": 1},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"k8s-app": "kube-dns"}}},
            "status": {"observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 0, "replicas": 2}}


def test_a_rollout_timeout_says_why_its_pods_are_not_ready():
    def pod(name, node_name, status, labels=None):
        return {"metadata": {"name": name, "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"} if labels is None else labels},
                "spec": {"nodeName": node_name} if node_name else {}, "status": status}

    api = FakeAPI([stuck_deployment()])
    pulling = {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "registry.k8s.io/coredns/coredns:v9"'}
    api.pods = {"/api/v1/namespaces/kube-system/pods": [
        pod("coredns-a", "w1", {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}],
                                "containerStatuses": [{"name": "coredns", "state": {"waiting": pulling}}]}),
        pod("coredns-b", None, {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "message": "0/4 nodes are available: 4 node(s) had untolerated taint."}]}),
        pod("coredns-c", "w2", {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}),
        pod("other", "w2", {"phase": "Pending"}, labels={"app": "other"}),
    ]}
    clock = Clock()
    with pytest.raises(ko.KubeObjectsError) as caught:
        ko.wait_rollouts(api, [{"kind": "Deployment", "applied": stuck_deployment()}], timeout=2, clock=clock, sleep=clock.sleep)
    assert str(caught.value) == (
        "not rolled out after 2 s: Deployment kube-system/coredns: 0 available of 2 (pod coredns-a on w1: ImagePullBackOff: Back-off pulling "
        'image "registry.k8s.io/coredns/coredns:v9", pod coredns-b: Pending: 0/4 nodes are available: 4 node(s) had untolerated taint.)')
    # Pods that cannot be read leave the timeout as it was.
    api.forbidden = True
    assert ko.pods_not_ready(api, stuck_deployment()) == []


def test_kube_apply_reports_what_it_changed_when_its_wait_fails(monkeypatch):
    api = FakeAPI()
    monkeypatch.setattr(ko, "client_from_kubeconfig", lambda path, user_agent: api)
    out = io.StringIO()
    with patch_module_args({"kubeconfig": "/k", "objects": [stuck_deployment()], "wait": "changed", "wait_timeout": 0}):
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            kube_apply.main()
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert result["failed"] and result["msg"].startswith("not rolled out after 0 s: Deployment kube-system/coredns: 0 available of 2")
    assert result["changed"] is True and result["objects"] == [{"kind": "Deployment", "namespace": "kube-system", "name": "coredns", "changed": True}]

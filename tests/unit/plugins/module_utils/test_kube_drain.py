# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The drain and the node deletion of _kube_objects (the kube_drain module's backend), against an API in memory
that places pods on nodes, refuses evictions a budget forbids (HTTP 429), and ends an evicted pod after a delay."""

from __future__ import annotations

import copy

import pytest
from fake_clock import Clock  # pylint: disable=import-error  # beside this file

from ansible_collections.kubeforge.cluster.plugins.module_utils import _kube_objects as ko
from ansible_collections.kubeforge.cluster.plugins.module_utils._kubelet_csr import APIError

NODE = "kf-w2"


def pod(name, owner_kind="ReplicaSet", namespace="default", node=NODE, phase="Running", mirror=False):
    metadata = {"name": name, "namespace": namespace, "uid": "u-" + name}
    if owner_kind:
        metadata["ownerReferences"] = [{"kind": owner_kind, "name": "owner", "controller": True}]
    if mirror:
        metadata["annotations"] = {ko.MIRROR_ANNOTATION: "x"}
    return {"metadata": metadata, "spec": {"nodeName": node}, "status": {"phase": phase}}


class DrainAPI:
    """Nodes and pods in memory. ``refusals`` {namespace/name: times a budget refuses its eviction};
    ``lingers`` {namespace/name: lists of the node's pods that still show it after its eviction}."""

    def __init__(self, pods=(), unschedulable=False, node_exists=True, refusals=None, lingers=None, clock=None):
        self.nodes = {NODE: {"metadata": {"name": NODE}, "spec": {"unschedulable": True} if unschedulable else {}}} if node_exists else {}
        self.pods = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in pods}
        self.refusals = dict(refusals or {})
        self.lingers = dict(lingers or {})
        self.evicting = set()
        self.requests = []

    def request(self, method, path, body=None, query=None, content_type="application/json"):
        self.requests.append((method, path))
        if path == "/api/v1/pods":
            for key in list(self.evicting):
                if self.lingers.get(key, 0) > 0:
                    self.lingers[key] -= 1
                else:
                    self.pods.pop(key, None)
                    self.evicting.discard(key)
            node = query["fieldSelector"].split("=", 1)[1]
            return {"items": [copy.deepcopy(p) for p in self.pods.values() if p["spec"]["nodeName"] == node]}
        if path.startswith("/api/v1/nodes/"):
            name = path.rsplit("/", 1)[1]
            if name not in self.nodes:
                raise APIError(f"{method} {path}: HTTP 404: not found", status=404)
            if method == "GET":
                return copy.deepcopy(self.nodes[name])
            if method == "PATCH":
                assert content_type == ko.MERGE_PATCH
                self.nodes[name]["spec"].update(body["spec"])
                return copy.deepcopy(self.nodes[name])
            if method == "DELETE":
                del self.nodes[name]
                return {"kind": "Status", "status": "Success"}
        if method == "POST" and path.endswith("/eviction"):
            parts = path.split("/")  # /api/v1/namespaces/NS/pods/NAME/eviction
            namespace, name = parts[4], parts[6]
            key = f"{namespace}/{name}"
            assert body["kind"] == "Eviction" and body["metadata"] == {"name": name, "namespace": namespace}
            if key not in self.pods:
                raise APIError(f"POST {path}: HTTP 404: not found", status=404)
            if self.refusals.get(key, 0) > 0:
                self.refusals[key] -= 1
                raise APIError(f"POST {path}: HTTP 429: Cannot evict pod as it would violate the pod's disruption budget.", status=429)
            self.evicting.add(key)
            return {"kind": "Status", "status": "Success"}
        raise AssertionError((method, path))

    def evictions(self):
        return [path.split("/")[-2] for method, path in self.requests if method == "POST"]


def test_the_node_is_cordoned_and_its_pods_evicted_except_daemonset_and_mirror_pods():
    api = DrainAPI([pod("web-1"), pod("done", owner_kind=None, phase="Succeeded"), pod("flannel", owner_kind="DaemonSet", namespace="kube-flannel"),
                    pod("static", owner_kind="Node", mirror=True), pod("elsewhere", node="kf-w1")])
    clock = Clock()
    result = ko.drain_node(api, NODE, timeout=30, clock=clock, sleep=clock.sleep)
    assert result == {"found": True, "cordoned": True, "evicted": ["default/done", "default/web-1"], "drained": True}
    assert api.nodes[NODE]["spec"]["unschedulable"] is True
    assert sorted(api.evictions()) == ["done", "web-1"]
    assert "kube-flannel/flannel" in api.pods and "default/elsewhere" in api.pods


def test_a_drained_node_is_not_written_again_and_an_unknown_node_has_nothing_to_drain():
    api = DrainAPI([pod("flannel", owner_kind="DaemonSet")], unschedulable=True)
    assert ko.drain_node(api, NODE, timeout=30) == {"found": True, "cordoned": False, "evicted": [], "drained": True}
    assert [method for method, _path in api.requests] == ["GET", "GET"]
    gone = DrainAPI(node_exists=False)
    assert ko.drain_node(gone, NODE, timeout=30) == {"found": False, "cordoned": False, "evicted": [], "drained": True}


def test_a_pod_no_controller_owns_is_refused_with_the_node_cordoned_and_nothing_evicted():
    api = DrainAPI([pod("web-1"), pod("bare", owner_kind=None)])
    with pytest.raises(ko.KubeObjectsError, match="no controller would start these pods again elsewhere.*default/bare") as caught:
        ko.drain_node(api, NODE, timeout=30)
    assert caught.value.result["drained"] is False
    assert api.nodes[NODE]["spec"]["unschedulable"] is True and api.evictions() == []


def test_an_eviction_a_budget_refuses_is_asked_again_every_second_until_it_is_allowed():
    api = DrainAPI([pod("web-1"), pod("web-2")], refusals={"default/web-2": 3})
    clock = Clock()
    result = ko.drain_node(api, NODE, timeout=30, clock=clock, sleep=clock.sleep)
    assert result["evicted"] == ["default/web-1", "default/web-2"] and result["drained"]
    assert api.evictions() == ["web-1", "web-2", "web-2", "web-2", "web-2"]
    assert clock.sleeps[:3] == [ko.EVICTION_RETRY_INTERVAL] * 3


def test_a_budget_that_refuses_until_the_timeout_fails_the_drain_naming_the_pod_and_the_budget():
    api = DrainAPI([pod("web-1"), pod("web-2")], refusals={"default/web-2": 1000})
    clock = Clock()
    with pytest.raises(ko.KubeObjectsError, match=r"kf-w2 is cordoned but not drained: after 5 s a disruption budget still refuses "
                                                  r"evicting default/web-2 \(.*would violate the pod's disruption budget") as caught:
        ko.drain_node(api, NODE, timeout=5, clock=clock, sleep=clock.sleep)
    assert caught.value.status == 429
    assert caught.value.result == {"found": True, "cordoned": True, "evicted": ["default/web-1"], "drained": False, "blocked": ["default/web-2"]}
    assert clock.now == 5


def test_the_drain_waits_until_the_evicted_pods_are_gone_and_fails_naming_those_that_stay():
    api = DrainAPI([pod("web-1")], lingers={"default/web-1": 2})
    clock = Clock()
    assert ko.drain_node(api, NODE, timeout=30, interval=0.25, clock=clock, sleep=clock.sleep)["drained"]
    assert clock.sleeps == [0.25, 0.25]
    stuck = DrainAPI([pod("web-1")], lingers={"default/web-1": 1000})
    clock = Clock()
    with pytest.raises(ko.KubeObjectsError, match="its pods evicted, but after 3 s these still run there: default/web-1") as caught:
        ko.drain_node(stuck, NODE, timeout=3, interval=0.25, clock=clock, sleep=clock.sleep)
    assert caught.value.result["terminating"] == ["default/web-1"]


def test_check_mode_names_what_it_would_evict_and_writes_nothing():
    api = DrainAPI([pod("web-1"), pod("flannel", owner_kind="DaemonSet")])
    result = ko.drain_node(api, NODE, timeout=30, check_mode=True)
    assert result == {"found": True, "cordoned": True, "evicted": ["default/web-1"], "drained": True}
    assert [method for method, _path in api.requests] == ["GET", "GET"]
    assert not api.nodes[NODE]["spec"].get("unschedulable")


def test_the_node_object_is_deleted_once_and_check_mode_only_reads_it():
    api = DrainAPI()
    assert ko.delete_node(api, NODE, check_mode=True) is True and NODE in api.nodes
    assert ko.delete_node(api, NODE) is True and NODE not in api.nodes
    assert ko.delete_node(api, NODE) is False
    assert ko.delete_node(api, NODE, refuse_ready=True) is False


def test_a_node_still_ready_is_not_deleted_when_its_host_should_be_gone():
    api = DrainAPI()
    api.nodes[NODE]["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    with pytest.raises(ko.KubeObjectsError, match="kf-w2 is Ready: its kubelet still reports"):
        ko.delete_node(api, NODE, refuse_ready=True)
    assert NODE in api.nodes
    api.nodes[NODE]["status"]["conditions"][0]["status"] = "Unknown"
    assert ko.delete_node(api, NODE, refuse_ready=True) is True and NODE not in api.nodes


def test_an_api_refusal_of_the_cordon_keeps_its_status():
    class Refusing(DrainAPI):
        def request(self, method, path, body=None, query=None, content_type="application/json"):
            if method == "PATCH":
                raise APIError(f"PATCH {path}: HTTP 403: forbidden", status=403)
            return super().request(method, path, body, query, content_type)

    with pytest.raises(ko.KubeObjectsError, match="cannot cordon the node kf-w2") as caught:
        ko.drain_node(Refusing([pod("web-1")]), NODE, timeout=30)
    assert caught.value.status == 403 and caught.value.result["drained"] is False

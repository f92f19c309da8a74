# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Kubernetes objects kubeforge owns, kept with server-side apply, and the nodes' role label and taint.

The backends of the kube_apply and kube_nodes modules. They talk to the API with the standard-library
client of ``_kubelet_csr`` (that file must stand alone on the control-plane hosts, so the client lives
there): a module run costs a few requests, not the import of the Kubernetes Python client, which is most
of a kubernetes.core module's time on the controller.

``apply()`` reads each object, applies it (``fieldManager=kubeforge``, conflicts forced: kubeforge owns
these fields), and compares the two without the fields the server keeps (managed fields, resource
version, generation, status); check mode applies with ``dryRun=All``. ``wait_rollouts()`` waits for
Deployments and DaemonSets to run their current generation everywhere. ``reconcile_nodes()`` waits for
named nodes (registered, or Ready) and patches a label or a taint only where it is not as wanted.
"""

from __future__ import annotations

import copy
import time
import urllib.parse
from typing import Callable

from ansible_collections.kubeforge.cluster.plugins.module_utils._kubelet_csr import APIError, KubeletCSRError, client_from_kubeconfig

FIELD_MANAGER = "kubeforge"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
# Kept by the server, not by whoever applies: left out when telling whether an apply changed an object.
SERVER_METADATA = ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid")
ROLLOUT_KINDS = ("Deployment", "DaemonSet")
WAIT_CHOICES = ("none", "changed", "all")
# Seconds between two reads of a wait (one GET or list each): a node or rollout that becomes ready is seen
# within a quarter of a second, which a day-2 run that waits for one node feels.
POLL_INTERVAL = 0.25
# The pods a rollout's timeout explains, at most (a DaemonSet stuck on every node repeats one reason).
PODS_NAMED = 3
# Times a node patch is made again on a fresh read when the API answers 409 Conflict (the node changed).
CONFLICT_RETRIES = 3
REDACTED = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


class KubeObjectsError(KubeletCSRError):
    """A failure explained to the operator; ``status`` is the API's HTTP status (0 without one)."""

    def __init__(self, message: str, status: int = 0, result: dict | None = None) -> None:
        super().__init__(message, result)
        self.status = status


# The reason the API gives with each status (the Status object's reason), for a task to tell them apart.
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
           422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


def _fail(exc: APIError, what: str, result: dict | None = None) -> KubeObjectsError:
    return KubeObjectsError(f"{what}: {exc}", status=exc.status, result=result)


def failure_details(exc: KubeObjectsError) -> dict:
    """What a module returns with its failure: the HTTP status, its reason, and what was done before it."""
    return {"status": exc.status, "reason": REASONS.get(exc.status, ""), **exc.result}


def run_module(module, work: Callable, name: str) -> dict:
    """``work(client)`` with a client for the module's ``kubeconfig``; a failure fails the module with the API's
    status and reason (the kubeconfig's problems with status 0)."""
    try:
        return work(client_from_kubeconfig(module.params["kubeconfig"], user_agent=f"kubeforge-{name}"))
    except KubeObjectsError as exc:
        module.fail_json(msg=str(exc), **failure_details(exc))
    except KubeletCSRError as exc:
        module.fail_json(msg=str(exc), status=0, reason="")
    raise AssertionError("fail_json does not return")


def summary(entry: dict) -> dict:
    """An apply() entry as a module returns it."""
    return {key: entry[key] for key in ("kind", "namespace", "name", "changed")}


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


class Resources:
    """Where each kind lives in the API, from discovery: one request per group version, then remembered."""

    def __init__(self, client) -> None:
        self.client = client
        self._kinds: dict[str, dict[str, tuple[str, bool]]] = {}

    @staticmethod
    def prefix(api_version: str) -> str:
        return ("/apis/" if "/" in api_version else "/api/") + api_version

    def path(self, obj: dict) -> str:
        """The object's own path (``…/namespaces/NS/PLURAL/NAME``); a namespaced object without one is in ``default``."""
        api_version, kind = obj.get("apiVersion") or "", obj.get("kind") or ""
        metadata = obj.get("metadata") or {}
        name = metadata.get("name") or ""
        if not api_version or not kind or not name:
            raise KubeObjectsError(f"an object needs apiVersion, kind and metadata.name: {describe(obj)}")
        if api_version not in self._kinds:
            try:
                document = self.client.request("GET", self.prefix(api_version))
            except APIError as exc:
                raise _fail(exc, f"cannot discover the resources of {api_version}") from exc
            self._kinds[api_version] = {entry["kind"]: (entry["name"], bool(entry.get("namespaced")))
                                        for entry in document.get("resources") or []
                                        if isinstance(entry, dict) and "/" not in entry.get("name", "/")}
        found = self._kinds[api_version].get(kind)
        if found is None:
            raise KubeObjectsError(f"the API serves no kind {kind} in {api_version}")
        plural, namespaced = found
        scope = f"/namespaces/{_quote(metadata.get('namespace') or 'default')}" if namespaced else ""
        return f"{self.prefix(api_version)}{scope}/{plural}/{_quote(name)}"


def describe(obj: dict) -> str:
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    return f"{obj.get('kind')} {namespace + '/' if namespace else ''}{metadata.get('name')}"


def comparable(obj: dict | None) -> dict | None:
    """``obj`` without what the server keeps; Secret values redacted (the result is shown as a diff)."""
    if obj is None:
        return None
    kept = copy.deepcopy(obj)
    kept.pop("status", None)
    metadata = kept.get("metadata") or {}
    for key in SERVER_METADATA:
        metadata.pop(key, None)
    if kept.get("kind") == "Secret":
        for field in ("data", "stringData"):
            if isinstance(kept.get(field), dict):
                kept[field] = {key: REDACTED for key in kept[field]}
    return kept


def _get(client, path: str) -> dict | None:
    try:
        return client.request("GET", path)
    except APIError as exc:
        if exc.status == 404:
            return None
        raise


def apply(client, objects: list, check_mode: bool = False, field_manager: str = FIELD_MANAGER) -> list[dict]:
    """Server-side apply each object in order; one entry per object: kind, namespace, name, changed, and
    the object (as applied, or as a dry run would leave it) with its ``before``, both comparable."""
    resources = Resources(client)
    created_namespaces: set[str] = set()
    results = []
    for obj in objects:
        if not isinstance(obj, dict):
            raise KubeObjectsError(f"each object must be a mapping, got {obj!r}")
        path = resources.path(obj)
        metadata = obj["metadata"]
        entry = {"kind": obj["kind"], "namespace": metadata.get("namespace"), "name": metadata["name"]}
        try:
            before = _get(client, path)
            if check_mode and before is None and metadata.get("namespace") in created_namespaces:
                # A dry run cannot create in a namespace that only this batch would create.
                after = obj
            else:
                query = {"fieldManager": field_manager, "force": "true"}
                if check_mode:
                    query["dryRun"] = "All"
                after = client.request("PATCH", path, body=obj, query=query, content_type=APPLY_PATCH)
        except APIError as exc:
            raise _fail(exc, f"cannot apply {describe(obj)}", {"objects": [summary(done) for done in results]}) from exc
        if obj["kind"] == "Namespace" and before is None:
            created_namespaces.add(metadata["name"])
        entry.update(changed=comparable(before) != comparable(after), before=comparable(before), after=comparable(after),
                     applied=after)
        results.append(entry)
    return results


def rollout_problem(obj: dict) -> str | None:
    """Why a Deployment or DaemonSet has not finished rolling out its current generation (None once it has)."""
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation") or 0
    if (status.get("observedGeneration") or 0) < generation:
        return "the controller has not seen its current generation yet"
    if obj.get("kind") == "DaemonSet":
        wanted = status.get("desiredNumberScheduled") or 0
        counts = {"updated": status.get("updatedNumberScheduled") or 0, "available": status.get("numberAvailable") or 0}
    else:
        wanted = (obj.get("spec") or {}).get("replicas", 1)
        counts = {"updated": status.get("updatedReplicas") or 0, "available": status.get("availableReplicas") or 0,
                  "in all": status.get("replicas") or 0}
    short = [f"{count} {what}" for what, count in counts.items() if count != wanted]
    return f"{', '.join(short)} of {wanted}" if short else None


def pods_not_ready(client, workload: dict, limit: int = PODS_NAMED) -> list[str]:
    """Why pods of a Deployment or DaemonSet are not ready, for a rollout that timed out: each waiting container's reason
    and message (ImagePullBackOff, CrashLoopBackOff, ...), else the pod's phase and why it is not scheduled. At most
    ``limit`` pods; none when they cannot be read (the timeout is the failure, this only explains it)."""
    namespace = (workload.get("metadata") or {}).get("namespace") or "default"
    labels = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not labels:
        return []
    try:
        answer = client.request("GET", f"/api/v1/namespaces/{_quote(namespace)}/pods",
                                query={"labelSelector": ",".join(f"{key}={value}" for key, value in sorted(labels.items()))})
    except APIError:
        return []
    found = []
    for pod in answer.get("items") or []:
        status = pod.get("status") or {}
        conditions = status.get("conditions") or []
        if any(condition.get("type") == "Ready" and condition.get("status") == "True" for condition in conditions):
            continue
        waiting = [(container.get("state") or {}).get("waiting") or {}
                   for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])]
        reasons = [": ".join(filter(None, (state.get("reason"), (state.get("message") or "")[:200]))) for state in waiting if state.get("reason")]
        if not reasons:
            unscheduled = [condition.get("message") or "" for condition in conditions
                           if condition.get("type") == "PodScheduled" and condition.get("status") == "False"]
            reasons = [": ".join(filter(None, (status.get("phase") or "no status yet", unscheduled[0][:200] if unscheduled else "")))]
        node = (pod.get("spec") or {}).get("nodeName")
        found.append(f"pod {pod['metadata']['name']}{f' on {node}' if node else ''}: {'; '.join(reasons)}")
    return found[:limit]


def wait_rollouts(client, applied: list[dict], timeout: float, interval: float = POLL_INTERVAL,
                  clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
    """Wait until every Deployment and DaemonSet of ``applied`` (entries of apply()) has rolled out; a timeout names
    each one that has not, and why some of its pods are not ready."""
    resources = Resources(client)
    waiting = {resources.path(entry["applied"]): describe(entry["applied"]) for entry in applied
               if entry["kind"] in ROLLOUT_KINDS}
    deadline = clock() + timeout
    while True:
        problems = {}
        for path, name in waiting.items():
            try:
                current = client.request("GET", path)
            except APIError as exc:
                raise _fail(exc, f"cannot read {name}") from exc
            problem = rollout_problem(current)
            if problem:
                problems[path] = (f"{name}: {problem}", current)
        if not problems:
            return
        if clock() >= deadline:
            explained = []
            for text, current in problems.values():
                pods = pods_not_ready(client, current)
                explained.append(f"{text} ({', '.join(pods)})" if pods else text)
            raise KubeObjectsError(f"not rolled out after {timeout:g} s: {'; '.join(explained)}")
        waiting = {path: waiting[path] for path in problems}
        sleep(interval)


# ---------------------------------------------------------------------------------------------------------
# Nodes


def is_ready(node: dict, conditions: dict | None = None) -> bool:
    """Ready, and each of ``conditions`` ({type: status}, such as the pod network's NetworkUnavailable: False) reported."""
    reported = {condition.get("type"): condition.get("status") for condition in (node.get("status") or {}).get("conditions") or []}
    return reported.get("Ready") == "True" and all(reported.get(kind) == status for kind, status in (conditions or {}).items())


def _has_taint(node: dict, taint: dict) -> bool:
    return any(existing.get("key") == taint["key"] and existing.get("effect") == taint["effect"]
               for existing in (node.get("spec") or {}).get("taints") or [])


def node_patch(node: dict, labels: dict, taints: list[dict], taints_present: bool, unschedulable: bool | None = None) -> dict | None:
    """The merge patch that gives ``node`` the labels and the taints (or takes the taints away), and cordons or
    uncordons it unless ``unschedulable`` is None; None when it is as wanted. Taints are a list, which a merge
    patch replaces whole: the patch carries the node's resourceVersion, so a node changed since it was read is
    refused (409) and read again. Uncordoning removes the field, as kubectl does (false is its default)."""
    patch: dict = {}
    if unschedulable is not None and bool((node.get("spec") or {}).get("unschedulable")) != unschedulable:
        patch["spec"] = {"unschedulable": True if unschedulable else None}
    missing = {key: value for key, value in labels.items() if ((node.get("metadata") or {}).get("labels") or {}).get(key) != value}
    if missing:
        patch["metadata"] = {"labels": missing}
    current = list((node.get("spec") or {}).get("taints") or [])
    if taints_present:
        wanted = current + [taint for taint in taints if not _has_taint(node, taint)]
    else:
        wanted = [existing for existing in current
                  if not any(existing.get("key") == t["key"] and existing.get("effect") == t["effect"] for t in taints)]
    if wanted != current:
        patch.setdefault("spec", {})["taints"] = wanted
        patch.setdefault("metadata", {})["resourceVersion"] = node["metadata"].get("resourceVersion")
    return patch or None


def list_nodes(client) -> dict[str, dict]:
    try:
        answer = client.request("GET", "/api/v1/nodes")
    except APIError as exc:
        raise _fail(exc, "cannot list the nodes") from exc
    return {node["metadata"]["name"]: node for node in answer.get("items") or [] if isinstance(node, dict)}


def nodes_with_a_started_pod(client, namespace: str, selector: str) -> set[str]:
    """The nodes on which a pod of ``namespace`` matching the label ``selector``, not being deleted, runs with every
    container started (past its startup probe, when it has one), in one list. The kubelet reports a started
    container at once, and the pod's Ready condition only at its next sync of the pod (about 0.7 s later)."""
    try:
        answer = client.request("GET", f"/api/v1/namespaces/{_quote(namespace)}/pods", query={"labelSelector": selector})
    except APIError as exc:
        raise _fail(exc, f"cannot list the pods {selector} in {namespace}") from exc
    return {(pod.get("spec") or {}).get("nodeName") for pod in answer.get("items") or []
            if not (pod.get("metadata") or {}).get("deletionTimestamp")
            and (statuses := (pod.get("status") or {}).get("containerStatuses") or [])
            and all(status.get("started") is True and "running" in (status.get("state") or {}) for status in statuses)}


def wait_nodes(client, names: list[str], ready: bool, timeout: float, interval: float = POLL_INTERVAL,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
               conditions: dict | None = None, pods: dict | None = None) -> dict[str, dict]:
    """Every node, once all of ``names`` are registered (and Ready, with ``conditions`` and a started pod of ``pods``
    ({namespace, label_selector}) on it, when ``ready``): one list per attempt."""
    deadline = clock() + timeout
    while True:
        nodes = list_nodes(client)
        with_pod = nodes_with_a_started_pod(client, pods["namespace"], pods["label_selector"]) if ready and pods else None
        absent = [name for name in names if name not in nodes]
        not_ready = [name for name in names if name in nodes and ready
                     and not (is_ready(nodes[name], conditions) and (with_pod is None or name in with_pod))]
        if not absent and not not_ready:
            return nodes
        if clock() >= deadline:
            wanted = "Ready" + "".join(f", {kind} {status}" for kind, status in (conditions or {}).items()) + (
                f", with a started pod {pods['label_selector']} in {pods['namespace']}" if pods else "")
            parts = ([f"not registered: {', '.join(absent)}"] if absent else []) + ([f"not {wanted}: {', '.join(not_ready)}"] if not_ready else [])
            raise KubeObjectsError(f"after {timeout:g} s, nodes {'; '.join(parts)}")
        sleep(interval)


def _reread_node(client, name: str) -> dict:
    try:
        return client.request("GET", f"/api/v1/nodes/{_quote(name)}")
    except APIError as exc:
        raise _fail(exc, f"cannot read the node {name}") from exc


def reconcile_nodes(client, names: list[str], labels: dict, taints: list[dict], taints_state: str = "present",
                    ready: bool = False, timeout: float = 180, check_mode: bool = False, unschedulable: bool | None = None,
                    conditions: dict | None = None, pods: dict | None = None, **waiting) -> dict:
    """Wait for the nodes, then patch the ones whose labels, taints or (unless ``unschedulable`` is None)
    cordon are not as wanted. {patched: [names], ready: [names], waiting: [names]}.

    In check mode nothing was started that a node could wait for (a node being added has no kubelet): the nodes are
    read once, and those a run would wait for are named in ``waiting`` instead of failing the run at the timeout."""
    nodes = list_nodes(client) if check_mode else wait_nodes(client, names, ready, timeout, conditions=conditions, pods=pods, **waiting)
    waited = [name for name in names if name not in nodes or (ready and not is_ready(nodes[name], conditions))]
    patched = []
    for name in names:
        if name not in nodes:
            continue
        node = nodes[name]
        for attempt in range(CONFLICT_RETRIES + 1):
            patch = node_patch(node, labels, taints, taints_state == "present", unschedulable)
            if patch is None:
                break
            if check_mode:
                patched.append(name)
                break
            try:
                client.request("PATCH", f"/api/v1/nodes/{_quote(name)}", body=patch, content_type=MERGE_PATCH)
            except APIError as exc:
                if exc.status == 409 and attempt < CONFLICT_RETRIES:
                    node = _reread_node(client, name)
                    continue
                raise _fail(exc, f"cannot patch the node {name}", {"patched": patched}) from exc
            patched.append(name)
            break
    return {"patched": patched, "ready": [name for name in names if name in nodes and is_ready(nodes[name], conditions)], "waiting": waited}


# Draining, as `kubectl drain --ignore-daemonsets --delete-emptydir-data` does it: a DaemonSet's pods stay (their
# controller would put them back at once) and so do mirror pods (the kubelet's static pods); a running pod that no
# controller owns is refused, since nothing would start it again elsewhere.
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# Seconds between two attempts at the evictions a PodDisruptionBudget refused (HTTP 429): the budget allows one
# once a replacement pod elsewhere is Ready, which takes seconds.
EVICTION_RETRY_INTERVAL = 1.0


def _pod_key(pod: dict) -> str:
    metadata = pod.get("metadata") or {}
    return f"{metadata.get('namespace')}/{metadata.get('name')}"


def pods_on_node(client, name: str) -> list[dict]:
    """Every pod the API places on the node (one list, all namespaces)."""
    try:
        answer = client.request("GET", "/api/v1/pods", query={"fieldSelector": f"spec.nodeName={name}"})
    except APIError as exc:
        raise _fail(exc, f"cannot list the pods on {name}") from exc
    return [pod for pod in answer.get("items") or [] if isinstance(pod, dict)]


def drain_plan(pods: list[dict]) -> tuple[list[dict], list[str]]:
    """(the pods to evict, the keys of the running pods no controller owns) for a drain."""
    evict, unmanaged = [], []
    for pod in pods:
        metadata = pod.get("metadata") or {}
        if MIRROR_ANNOTATION in (metadata.get("annotations") or {}) or metadata.get("deletionTimestamp"):
            continue
        controller = next((owner for owner in metadata.get("ownerReferences") or [] if owner.get("controller")), None)
        if controller is not None and controller.get("kind") == "DaemonSet":
            continue
        finished = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if controller is None and not finished:
            unmanaged.append(_pod_key(pod))
            continue
        evict.append(pod)
    return evict, unmanaged


def _evict(client, pod: dict) -> str | None:
    """Ask for the pod's eviction: None once asked (or the pod is gone), the API's message when a budget refuses."""
    metadata = pod["metadata"]
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]}}
    try:
        client.request("POST", f"/api/v1/namespaces/{_quote(metadata['namespace'])}/pods/{_quote(metadata['name'])}/eviction", body=body)
    except APIError as exc:
        if exc.status == 404:
            return None
        if exc.status == 429:
            return str(exc)
        raise _fail(exc, f"cannot evict the pod {_pod_key(pod)}") from exc
    return None


def drain_node(client, name: str, timeout: float, check_mode: bool = False, interval: float = POLL_INTERVAL,
               retry_interval: float = EVICTION_RETRY_INTERVAL, clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> dict:
    """Cordon the node, evict its pods (drain_plan) and wait until they are gone. Evictions a PodDisruptionBudget
    refuses are asked again every ``retry_interval`` until ``timeout``, then the drain fails naming them, the node
    left cordoned. A node the API does not know has nothing to drain.
    {found, cordoned (patched now), evicted: [namespace/name], drained}."""
    try:
        node = client.request("GET", f"/api/v1/nodes/{_quote(name)}")
    except APIError as exc:
        if exc.status == 404:
            return {"found": False, "cordoned": False, "evicted": [], "drained": True}
        raise _fail(exc, f"cannot read the node {name}") from exc
    cordoned = not (node.get("spec") or {}).get("unschedulable")
    if cordoned and not check_mode:
        try:
            client.request("PATCH", f"/api/v1/nodes/{_quote(name)}", body={"spec": {"unschedulable": True}}, content_type=MERGE_PATCH)
        except APIError as exc:
            raise _fail(exc, f"cannot cordon the node {name}", {"cordoned": False, "evicted": [], "drained": False}) from exc
    pods, unmanaged = drain_plan(pods_on_node(client, name))
    result = {"found": True, "cordoned": cordoned, "evicted": [], "drained": False}
    if unmanaged:
        raise KubeObjectsError(f"{name} is cordoned but not drained: no controller would start these pods again elsewhere, "
                               f"delete them or give them one: {', '.join(sorted(unmanaged))}", result=result)
    if check_mode or not pods:
        return {**result, "evicted": sorted(_pod_key(pod) for pod in pods), "drained": True}
    deadline = clock() + timeout
    pending = {_pod_key(pod): pod for pod in pods}
    while True:
        refused = {}
        for key, pod in sorted(pending.items()):
            message = _evict(client, pod)
            if message is None:
                result["evicted"].append(key)
            else:
                refused[key] = message
        pending = {key: pending[key] for key in refused}
        if not pending:
            break
        if clock() >= deadline:
            raise KubeObjectsError(
                f"{name} is cordoned but not drained: after {timeout:g} s a disruption budget still refuses evicting "
                f"{', '.join(sorted(refused))} ({next(iter(refused.values()))})", status=429, result={**result, "blocked": sorted(refused)})
        sleep(retry_interval)
    # Evicted pods end on their grace period; the node is drained once none of them is left there.
    uids = {(pod.get("metadata") or {}).get("uid") for pod in pods}
    while True:
        left = sorted(_pod_key(pod) for pod in pods_on_node(client, name) if (pod.get("metadata") or {}).get("uid") in uids)
        if not left:
            return {**result, "drained": True}
        if clock() >= deadline:
            raise KubeObjectsError(f"{name} is cordoned, its pods evicted, but after {timeout:g} s these still run there: {', '.join(left)}",
                                   result={**result, "terminating": left})
        sleep(interval)


def delete_node(client, name: str, check_mode: bool = False, refuse_ready: bool = False) -> bool:
    """Delete the Node object; whether it existed. Its kubelet must be stopped first, or it registers the node again:
    with ``refuse_ready``, a node still Ready (its kubelet reports) is refused."""
    path = f"/api/v1/nodes/{_quote(name)}"
    try:
        node = client.request("GET", path) if check_mode or refuse_ready else None
        if refuse_ready and is_ready(node):
            raise KubeObjectsError(f"{name} is Ready: its kubelet still reports, and would register the node again once deleted; "
                                   "stop the host (or its kubelet) first, and run this again once the node is NotReady")
        if not check_mode:
            client.request("DELETE", path)
    except APIError as exc:
        if exc.status == 404:
            return False
        raise _fail(exc, f"cannot delete the node {name}") from exc
    return True

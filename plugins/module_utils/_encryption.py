# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which key encrypts what the apiservers keep in etcd, and the rewrite that moves it to the encrypting key.

The backend of the encryption_key_usage module (host side, standard library only).

Where an object lives in etcd (kube-apiserver's storage factory, Kubernetes 1.35-1.37):
``<etcd prefix>/<resource prefix>/<namespace>/<name>``, without the namespace for a cluster-scoped
object. The resource prefix is
- a special one for the resources of SPECIAL_PREFIXES (services -> services/specs, nodes -> minions, ...);
- ``<group>/<resource>`` for the groups of GROUP_PREFIXED (served by the apiextensions and aggregator
  servers inside kube-apiserver) and for custom resources (a group with a dot that kube-apiserver
  does not serve itself: foo.example.com -> example.com/foo);
- the resource's plural name for every other resource of a built-in group (deployments.apps -> deployments).
Anything else is refused rather than guessed, since a wrong prefix counts nothing: wildcards
(``*.*``, ``*.apps``), a core resource not in CORE_RESOURCES, a group without a dot that is not
built in, and a ``*.k8s.io`` group kube-apiserver does not serve (a new built-in group this list
lacks would otherwise be read at a custom resource's prefix).

A value the apiserver encrypted starts with ``k8s:enc:<provider>:v<N>:<key name>:`` (aescbc,
aesgcm, secretbox: v1; kms: v1 or v2); anything else was written in plain by identity (protobuf
``k8s\\0``, or JSON for custom resources). etcd's range cannot return part of a value: values are
read a page at a time, only their first bytes are looked at, and nothing of a value is kept.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from collections.abc import Callable

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.codec import prefix_range
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import EtcdError

DEFAULT_ETCD_PREFIX = "/registry"
ENCRYPTED_MARK = b"k8s:enc:"
IDENTITY = "identity"
# The part of a value looked at: the marker, the provider, the version and the key name.
HEAD_BYTES = 256
# A page read at a revision that etcd compacted meanwhile (the apiserver compacts every 5 minutes) is read again.
COMPACTED_RETRIES = 3

CORE_RESOURCES = frozenset({
    "configmaps", "endpoints", "events", "limitranges", "namespaces", "nodes", "persistentvolumeclaims", "persistentvolumes",
    "pods", "podtemplates", "replicationcontrollers", "resourcequotas", "secrets", "serviceaccounts", "services"})
SPECIAL_PREFIXES = {
    ("", "replicationcontrollers"): "controllers", ("", "endpoints"): "services/endpoints", ("", "nodes"): "minions",
    ("", "services"): "services/specs", ("extensions", "ingresses"): "ingress", ("networking.k8s.io", "ingresses"): "ingress"}
BUILTIN_GROUPS = frozenset({
    "apps", "autoscaling", "batch", "extensions", "policy", "admissionregistration.k8s.io", "authentication.k8s.io",
    "authorization.k8s.io", "certificates.k8s.io", "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io",
    "flowcontrol.apiserver.k8s.io", "internal.apiserver.k8s.io", "networking.k8s.io", "node.k8s.io", "rbac.authorization.k8s.io",
    "resource.k8s.io", "scheduling.k8s.io", "storage.k8s.io", "storagemigration.k8s.io"})
GROUP_PREFIXED = frozenset({"apiextensions.k8s.io", "apiregistration.k8s.io"})

REWRITE_HINT = ("rewrite them with the encrypting key first: playbooks/rotate_encryption_key.yml -e rotate_encryption_key_step=rewrite, "
                "or the prune step with -e rotate_encryption_key_rewrite_before_prune=true")


class EncryptionError(KubeforgeError):
    """A resource that cannot be mapped to etcd, a key still in use, a rewrite that failed; ``result`` goes with the failure."""

    def __init__(self, message: str, result: dict | None = None) -> None:
        super().__init__(message)
        self.result = dict(result or {})


# --------------------------------------------------------------------------- pure parts

def storage_prefix(resource: str, etcd_prefix: str = DEFAULT_ETCD_PREFIX) -> str:
    """The etcd key prefix (with its trailing slash) of every object of an EncryptionConfiguration resource."""
    name, group = (str(resource).split(".", 1) + [""])[:2]
    if "*" in resource:
        raise EncryptionError(f"resource {resource!r}: wildcards are not supported, list the resources one by one")
    if not name or name != name.lower() or not all(c.isalnum() or c == "-" for c in name):
        raise EncryptionError(f"resource {resource!r} is not a lower-case plural resource name such as secrets or foos.example.com")
    if (group, name) in SPECIAL_PREFIXES:
        path = SPECIAL_PREFIXES[(group, name)]
    elif not group:
        if name not in CORE_RESOURCES:
            raise EncryptionError(f"resource {resource!r} is not a core resource stored in etcd ({', '.join(sorted(CORE_RESOURCES))})")
        path = name
    elif group in GROUP_PREFIXED:
        path = f"{group}/{name}"
    elif group in BUILTIN_GROUPS:
        path = name
    elif "." not in group or group.endswith(".k8s.io"):
        raise EncryptionError(f"resource {resource!r}: group {group!r} is neither one kube-apiserver serves "
                              f"({', '.join(sorted(BUILTIN_GROUPS | GROUP_PREFIXED))}) nor a custom resource group outside *.k8s.io")
    else:
        path = f"{group}/{name}"  # a custom resource
    return f"{etcd_prefix.rstrip('/')}/{path}/"


def value_key(value: bytes) -> str:
    """Which key a stored value is encrypted with: ``<provider>:<key name>``, or ``identity`` for a plain value."""
    head = bytes(value[:HEAD_BYTES])
    if not head.startswith(ENCRYPTED_MARK):
        return IDENTITY
    parts = head[len(ENCRYPTED_MARK):].split(b":", 3)
    if len(parts) < 4 or not parts[0] or not parts[2]:
        return "unknown:" + head[:40].decode("ascii", "replace")
    return f"{parts[0].decode('ascii', 'replace')}:{parts[2].decode('utf-8', 'replace')}"


def uses(label: str, key: str) -> bool:
    """Whether a value_key() label is the key named ``key`` (a key name under any provider, ``provider:name``, or identity)."""
    return label == key or (":" in label and label.split(":", 1)[1] == key)


def object_ref(etcd_key: bytes, prefix: str) -> tuple[str, str]:
    """(namespace, name) of the object stored at etcd_key under a resource's prefix; namespace "" when cluster-scoped."""
    rest = etcd_key[len(prefix):].decode("utf-8", "replace")
    namespace, name = ([""] + rest.rsplit("/", 1))[-2:]
    return namespace, name


def describe(counts: dict) -> str:
    """'2 under secretbox:key-b, 1 identity (plain)' for {label: count}."""
    parts = [f"{count} {'identity (plain)' if label == IDENTITY else 'under ' + label}" for label, count in sorted(counts.items())]
    return ", ".join(parts) or "none"


def refusal(usage: dict, drop: list) -> str | None:
    """The message refusing to drop keys that values still use, naming the count per key and resource; None when none does.

    usage is {resource: {label: count}}; drop lists key names (and ``identity`` for plain values).
    """
    found = []
    for key in drop:
        where = [(resource, count) for resource, counts in usage.items() for label, count in sorted(counts.items())
                 if count and uses(label, key)]
        if where:
            total = sum(count for _resource, count in where)
            found.append(f"{key}: {total} ({', '.join(f'{count} {resource}' for resource, count in where)})")
    if not found:
        return None
    return (f"refusing to drop encryption keys still in use, or the objects below would become unreadable: {'; '.join(found)}. "
            f"Nothing was changed; {REWRITE_HINT}")


def summary(usage: dict, rewritten: dict, check_mode: bool = False) -> list:
    """One line per resource for the operator: values read, the key of each, objects rewritten."""
    lines = []
    for resource, counts in usage.items():
        line = f"{resource}: {sum(counts.values())} in etcd, {describe(counts)}"
        if resource in rewritten:
            line += f"; {rewritten[resource]} {'would be ' if check_mode else ''}rewritten"
        lines.append(line)
    return lines


def replace_problems(stderr: str) -> list:
    """The lines of kubectl replace's errors that are failures: a conflict (the object changed since it was read, so it
    was written again anyway) or a NotFound (deleted since) is not one, and neither is a warning."""
    problems = []
    for line in stderr.splitlines():
        line = line.strip()
        if not line or line.startswith("Warning:") or "(Conflict)" in line or "(NotFound)" in line:
            continue
        problems.append(line)
    return problems


# --------------------------------------------------------------------------- etcd and the API

@dataclasses.dataclass
class Count:
    """What one read of a resource's values found."""

    counts: dict  # {label: count}
    stale: list   # etcd keys of the values not under the encrypting key (when one was given)
    revision: int


def count_resource(client, prefix: str, primary: str | None = None, page_size: int = 100) -> Count:
    """The values under one prefix, counted per key at one revision, page by page."""
    for attempt in range(COMPACTED_RETRIES):
        counts: collections.Counter = collections.Counter()
        stale, revision = [], 0
        try:
            for page in client.pages(*prefix_range(prefix), page_size=page_size):
                revision = page.revision
                for kv in page.kvs:
                    label = value_key(kv.value)
                    counts[label] += 1
                    if primary is not None and not uses(label, primary):
                        stale.append(kv.key)
        except EtcdError as exc:
            if exc.compacted and attempt + 1 < COMPACTED_RETRIES:
                continue
            raise
        return Count(dict(counts), stale, revision)
    raise AssertionError("unreachable")  # pragma: no cover


class Kubectl:
    """kubectl with the admin kubeconfig: get a batch of objects by name and replace them as they are."""

    def __init__(self, run: Callable, kubectl: str, kubeconfig: str, timeout: int = 60) -> None:
        self.run = run  # run(argv, data=None) -> (rc, stdout, stderr)
        self.base = [kubectl, f"--kubeconfig={kubeconfig}", f"--request-timeout={timeout}s"]

    def replace(self, resource: str, namespace: str, names: list) -> int:
        """Objects read and written back unchanged (the apiserver encrypts them with its first key); the count replaced."""
        scope = ["-n", namespace] if namespace else []
        rc, out, err = self.run(self.base + ["get", resource, *scope, "--ignore-not-found", "-o", "json", *names])
        if rc != 0:
            raise EncryptionError(f"kubectl get {resource} {' '.join(scope)} failed: {err.strip() or out.strip()}")
        try:
            listed = json.loads(out) if out.strip() else {}
        except ValueError as exc:
            raise EncryptionError(f"kubectl get {resource} {' '.join(scope)} printed something that is not JSON: {out[:200]!r}") from exc
        if not (listed.get("items") if listed.get("kind", "").endswith("List") else listed):
            return 0  # every one was deleted since etcd was read
        rc, replaced, err = self.run(self.base + ["replace", "-f", "-"], data=out)
        problems = replace_problems(err) if rc != 0 else []
        if rc != 0 and (problems or not err.strip()):
            raise EncryptionError(f"kubectl replace of {resource} {' '.join(scope)} failed: {'; '.join(problems) or 'exit ' + str(rc)}")
        return sum(1 for line in replaced.splitlines() if line.rstrip().endswith(" replaced"))


@dataclasses.dataclass
class UsageSettings:
    resources: list
    etcd_prefix: str = DEFAULT_ETCD_PREFIX
    page_size: int = 100
    drop: list = dataclasses.field(default_factory=list)
    rewrite: bool = False
    primary: str | None = None
    batch_size: int = 100


def settings_from_params(params: dict) -> UsageSettings:
    settings = UsageSettings(
        resources=list(params.get("resources") or []), etcd_prefix=params.get("etcd_prefix") or DEFAULT_ETCD_PREFIX,
        page_size=int(params.get("page_size") or 100), drop=list(params.get("drop") or []), rewrite=bool(params.get("rewrite")),
        primary=params.get("primary"), batch_size=int(params.get("batch_size") or 100))
    problems = []
    if not settings.resources:
        problems.append("resources is empty: list the resources of the EncryptionConfiguration")
    for resource in settings.resources:
        try:
            storage_prefix(resource, settings.etcd_prefix)
        except EncryptionError as exc:
            problems.append(str(exc))
    if settings.page_size < 1 or settings.batch_size < 1:
        problems.append("page_size and batch_size must be positive")
    if settings.rewrite and not settings.primary:
        problems.append("rewrite needs primary, the key the apiservers encrypt with")
    if settings.primary and settings.primary in settings.drop:
        problems.append(f"the encrypting key {settings.primary} cannot be dropped")
    if problems:
        raise EncryptionError("; ".join(problems))
    return settings


class EncryptionKeyUsage:
    """Count the values of each resource per key; rewrite the ones not under the encrypting key; refuse a drop in use."""

    def __init__(self, client, settings: UsageSettings, kubectl: Kubectl | None = None) -> None:
        self.client = client
        self.s = settings
        self.kubectl = kubectl

    def _count(self) -> dict:
        primary = self.s.primary if self.s.rewrite else None
        return {resource: count_resource(self.client, storage_prefix(resource, self.s.etcd_prefix), primary, self.s.page_size)
                for resource in self.s.resources}

    def _rewrite(self, resource: str, stale: list) -> int:
        prefix = storage_prefix(resource, self.s.etcd_prefix)
        by_namespace: dict = collections.defaultdict(list)
        for key in stale:
            namespace, name = object_ref(key, prefix)
            by_namespace[namespace].append(name)
        replaced = 0
        for namespace, names in sorted(by_namespace.items()):
            for start in range(0, len(names), self.s.batch_size):
                replaced += self.kubectl.replace(resource, namespace, names[start:start + self.s.batch_size])
        return replaced

    def run(self, check_mode: bool = False) -> dict:
        found = self._count()
        usage = {resource: count.counts for resource, count in found.items()}
        rewritten: dict = {}
        if self.s.rewrite:
            for resource, count in found.items():
                rewritten[resource] = len(count.stale) if check_mode else 0
                if count.stale and not check_mode:
                    try:
                        rewritten[resource] = self._rewrite(resource, count.stale)
                    except EncryptionError as exc:
                        raise EncryptionError(str(exc), {"usage": usage, "rewritten": rewritten}) from exc
            if check_mode:
                # What the counts would be: every value the rewrite reaches under the encrypting key.
                usage = {resource: _moved(counts, self.s.primary) for resource, counts in usage.items()}
            elif any(count.stale for count in found.values()):
                found = self._count()
                usage = {resource: count.counts for resource, count in found.items()}
            left = {resource: len(count.stale) for resource, count in found.items() if count.stale}
            if left and not check_mode:
                raise EncryptionError(
                    f"after the rewrite, values are still not under the encrypting key {self.s.primary}: "
                    f"{', '.join(f'{n} {resource}' for resource, n in left.items())} ({'; '.join(summary(usage, rewritten))}). "
                    "Is it the first key of every apiserver? A rotation that stopped half-way leaves some apiservers on the old "
                    "configuration: site.yml --tags control_plane writes the controller's keys to each host, one at a time; then "
                    "run this again",
                    {"usage": usage, "rewritten": rewritten})
        result = {"changed": any(rewritten.values()), "usage": usage, "rewritten": rewritten,
                  "revision": max((count.revision for count in found.values()), default=0),
                  "summary": summary(usage, rewritten, check_mode)}
        message = refusal(usage, self.s.drop)
        if message:
            raise EncryptionError(message, result)
        return result


def _moved(counts: dict, primary: str) -> dict:
    """counts with every value not under primary counted under it (the label of primary kept when present)."""
    target = next((label for label in counts if uses(label, primary)), primary)
    moved: collections.Counter = collections.Counter()
    for label, count in counts.items():
        moved[label if uses(label, primary) else target] += count
    return dict(moved)

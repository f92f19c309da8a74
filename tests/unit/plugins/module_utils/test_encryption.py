# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which key each object in etcd is under (module_utils/_encryption): the value prefixes, the etcd
paths of resources, counting through the collection's etcd client over a fake store (pagination
included), the refusal to drop a key in use, and the rewrite through a fake kubectl."""
from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils import _encryption as enc
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.client import EtcdClient
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.codec import b64, unb64
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import OUT_OF_RANGE, EtcdError

PROTOBUF = b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret"  # what identity stores for a built-in type


def sealed(provider: str, name: str, version: str = "v1") -> bytes:
    return f"k8s:enc:{provider}:{version}:{name}:".encode() + b"\x8f\x01ciphertext\x00:\xff"


class FakeEtcd:
    """An etcd store behind the real EtcdClient: /v3/kv/range with limit, more and revision, as etcd answers."""

    def __init__(self, store: dict, revision: int = 40) -> None:
        self.store = {k.encode() if isinstance(k, str) else k: v for k, v in store.items()}
        self.revision = revision
        self.ranges: list = []
        self.fail_next: list = []
        self.client = EtcdClient(self)

    def call(self, path: str, body: dict) -> dict:
        """The transport's one call the client makes here."""
        assert path == "/v3/kv/range", path
        return self.range(body)

    def range(self, body: dict) -> dict:
        self.ranges.append(body)
        if self.fail_next:
            raise self.fail_next.pop(0)
        start, end, limit = unb64(body["key"]), unb64(body.get("range_end")), int(body.get("limit", 0))
        keys = sorted(k for k in self.store if start <= k < end)
        page = keys[:limit] if limit else keys
        return {"header": {"revision": str(self.revision)}, "count": str(len(keys)), "more": len(page) < len(keys),
                "kvs": [{"key": b64(k), "value": b64(self.store[k]), "mod_revision": "3"} for k in page]}

    def put(self, key: str, value: bytes) -> None:
        self.store[key.encode()] = value
        self.revision += 1


# --------------------------------------------------------------------------- pure parts

@pytest.mark.parametrize("value, label", [
    (sealed("secretbox", "key1"), "secretbox:key1"),
    (sealed("aescbc", "key-20250101T000000000000Z"), "aescbc:key-20250101T000000000000Z"),
    (sealed("aesgcm", "g1"), "aesgcm:g1"),
    (sealed("kms", "vault", "v2"), "kms:vault"),
    (PROTOBUF, "identity"),
    (b'{"apiVersion":"example.com/v1","kind":"Foo"}', "identity"),  # a custom resource in plain JSON
    (b"", "identity"),
    (b"k8s:enc:secretbox", "unknown:k8s:enc:secretbox"),  # cut short: never taken for a key
])
def test_value_key(value, label):
    assert enc.value_key(value) == label


@pytest.mark.parametrize("label, key, used", [
    ("secretbox:key1", "key1", True), ("secretbox:key1", "secretbox:key1", True), ("aescbc:key1", "key1", True),
    ("secretbox:key1", "key10", False), ("secretbox:key1", "aescbc:key1", False), ("identity", "identity", True),
    ("secretbox:key1", "identity", False), ("unknown:k8s:enc:x", "x", False),
])
def test_uses(label, key, used):
    assert enc.uses(label, key) is used


@pytest.mark.parametrize("resource, prefix", [
    ("secrets", "/registry/secrets/"),
    ("configmaps", "/registry/configmaps/"),
    ("services", "/registry/services/specs/"),
    ("endpoints", "/registry/services/endpoints/"),
    ("nodes", "/registry/minions/"),
    ("replicationcontrollers", "/registry/controllers/"),
    ("deployments.apps", "/registry/deployments/"),
    ("roles.rbac.authorization.k8s.io", "/registry/roles/"),
    ("ingresses.networking.k8s.io", "/registry/ingress/"),
    ("customresourcedefinitions.apiextensions.k8s.io", "/registry/apiextensions.k8s.io/customresourcedefinitions/"),
    ("apiservices.apiregistration.k8s.io", "/registry/apiregistration.k8s.io/apiservices/"),
    ("foos.example.com", "/registry/example.com/foos/"),
    ("clusters.cluster.x-k8s.io", "/registry/cluster.x-k8s.io/clusters/"),
])
def test_storage_prefix(resource, prefix):
    assert enc.storage_prefix(resource) == prefix
    assert enc.storage_prefix(resource, "/kube/") == prefix.replace("/registry/", "/kube/", 1)


@pytest.mark.parametrize("resource, message", [
    ("*.*", "wildcards are not supported"),
    ("*.apps", "wildcards are not supported"),
    ("secret", "not a core resource stored in etcd"),
    ("Secrets", "not a lower-case plural resource name"),
    ("foos.mygroup", "group 'mygroup' is neither"),
    ("gateways.gateway.networking.k8s.io", "outside \\*.k8s.io"),
    ("", "not a lower-case plural resource name"),
])
def test_resources_that_cannot_be_mapped_are_refused(resource, message):
    with pytest.raises(enc.EncryptionError, match=message):
        enc.storage_prefix(resource)


def test_object_ref():
    assert enc.object_ref(b"/registry/secrets/default/token-a", "/registry/secrets/") == ("default", "token-a")
    assert enc.object_ref(b"/registry/minions/node-1", "/registry/minions/") == ("", "node-1")


@pytest.mark.parametrize("stderr, problems", [
    ('Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled on secrets "a": '
     "the object has been modified; please apply your changes to the latest version and try again", []),
    ('Error from server (NotFound): error when replacing "STDIN": secrets "a" not found', []),
    ("Warning: a deprecation\n", []),
    ('Error from server (InternalError): Internal error occurred: no matching key was found for the provided Secretbox transformer',
     ["Error from server (InternalError): Internal error occurred: no matching key was found for the provided Secretbox transformer"]),
    ("error: the server doesn't have a resource type \"foos\"", ["error: the server doesn't have a resource type \"foos\""]),
])
def test_replace_problems(stderr, problems):
    assert enc.replace_problems(stderr) == problems


# --------------------------------------------------------------------------- counting

STORE = {
    "/registry/secrets/default/a": sealed("secretbox", "old"),
    "/registry/secrets/default/b": sealed("secretbox", "new"),
    "/registry/secrets/kube-system/c": sealed("secretbox", "old"),
    "/registry/secrets/kube-system/d": PROTOBUF,
    "/registry/secrets/team/e": sealed("secretbox", "new"),
    "/registry/configmaps/default/f": sealed("aescbc", "old"),
    "/registry/configmaps/default/g": PROTOBUF,
    "/registry/secretsx/default/h": sealed("secretbox", "old"),  # another prefix: never counted as a secret
    "/registry/example.com/foos/default/i": sealed("secretbox", "new"),
}


@pytest.mark.parametrize("page_size", [1, 2, 100])
def test_objects_are_counted_per_key_and_resource_page_by_page(page_size):
    etcd = FakeEtcd(STORE)
    usage = enc.EncryptionKeyUsage(etcd.client, enc.UsageSettings(
        resources=["secrets", "configmaps", "foos.example.com"], page_size=page_size)).run()
    assert usage["usage"] == {"secrets": {"secretbox:old": 2, "secretbox:new": 2, "identity": 1},
                              "configmaps": {"aescbc:old": 1, "identity": 1}, "foos.example.com": {"secretbox:new": 1}}
    assert usage["changed"] is False and usage["rewritten"] == {} and usage["revision"] == 40
    assert usage["summary"][0] == "secrets: 5 in etcd, 1 identity (plain), 2 under secretbox:new, 2 under secretbox:old"
    # Pages of page_size; every page after the first is read at the first one's revision.
    secrets = [body for body in etcd.ranges if unb64(body["key"]).startswith(b"/registry/secrets/")]
    assert len(secrets) == -(-5 // page_size)
    assert all(int(body["limit"]) == page_size for body in secrets)
    assert [body.get("revision") for body in secrets[1:]] == ["40"] * (len(secrets) - 1)


def test_a_compacted_revision_is_read_again_from_the_start():
    etcd = FakeEtcd(STORE)
    etcd.fail_next = [EtcdError("etcdserver: mvcc: required revision has been compacted", code=OUT_OF_RANGE)]
    count = enc.count_resource(etcd.client, "/registry/secrets/", page_size=100)
    assert count.counts == {"secretbox:old": 2, "secretbox:new": 2, "identity": 1}


def test_other_etcd_errors_fail():
    etcd = FakeEtcd(STORE)
    etcd.fail_next = [EtcdError("etcdserver: request timed out", code=14)]
    with pytest.raises(EtcdError, match="timed out"):
        enc.count_resource(etcd.client, "/registry/secrets/")


# --------------------------------------------------------------------------- the refusal

def test_a_drop_of_a_key_in_use_is_refused_naming_the_count_per_key_and_resource():
    etcd = FakeEtcd(STORE)
    with pytest.raises(enc.EncryptionError) as refused:
        enc.EncryptionKeyUsage(etcd.client, enc.UsageSettings(resources=["secrets", "configmaps"], drop=["old"])).run()
    message = str(refused.value)
    assert "refusing to drop encryption keys still in use" in message
    assert "old: 3 (2 secrets, 1 configmaps)" in message, message
    assert "rotate_encryption_key_step=rewrite" in message and "Nothing was changed" in message
    assert refused.value.result["usage"]["secrets"]["secretbox:old"] == 2  # the counts go with the failure


@pytest.mark.parametrize("usage, drop, expected", [
    ({"secrets": {"secretbox:new": 4}}, ["old"], None),
    ({"secrets": {"secretbox:new": 4, "secretbox:old": 0}}, ["old"], None),
    ({"secrets": {"secretbox:new": 4, "identity": 2}}, ["old"], None),
    ({"secrets": {"secretbox:new": 4, "identity": 2}}, ["identity"], "identity: 2 (2 secrets)"),
    ({"secrets": {"secretbox:a": 1, "aescbc:b": 2}, "configmaps": {"aescbc:b": 5}}, ["a", "b"], "a: 1 (1 secrets); b: 7 (2 secrets, 5 configmaps)"),
])
def test_refusal(usage, drop, expected):
    message = enc.refusal(usage, drop)
    assert (message is None) if expected is None else (expected in message), message


def test_nothing_under_the_dropped_key_passes():
    etcd = FakeEtcd({k: v for k, v in STORE.items() if b"old" not in v})
    result = enc.EncryptionKeyUsage(etcd.client, enc.UsageSettings(resources=["secrets", "configmaps"], drop=["old"])).run()
    assert result["usage"]["secrets"] == {"secretbox:new": 2, "identity": 1}


@pytest.mark.parametrize("params, message", [
    ({"resources": []}, "resources is empty"),
    ({"resources": ["*.*", "secret"]}, "wildcards are not supported.*; resource 'secret' is not a core resource"),
    ({"resources": ["secrets"], "rewrite": True}, "rewrite needs primary"),
    ({"resources": ["secrets"], "primary": "new", "drop": ["new"]}, "the encrypting key new cannot be dropped"),
    ({"resources": ["secrets"], "page_size": -1}, "must be positive"),
])
def test_settings_problems_are_reported_together(params, message):
    with pytest.raises(enc.EncryptionError, match=message):
        enc.settings_from_params(params)


# --------------------------------------------------------------------------- the rewrite

class FakeKubectl:
    """kubectl get/replace against the fake store: a replace writes each object under the apiserver's first key."""

    def __init__(self, etcd: FakeEtcd, first_key: str = "new", replace_stderr: str = "", replace_rc: int = 0, writes: bool = True):
        self.etcd, self.first_key, self.calls = etcd, first_key, []
        self.replace_stderr, self.replace_rc, self.writes = replace_stderr, replace_rc, writes

    def __call__(self, argv, data=None):
        self.calls.append((argv, data))
        verb = argv[3]
        if verb == "get":
            resource = argv[4]
            namespace = argv[argv.index("-n") + 1] if "-n" in argv else ""
            names = argv[argv.index("json") + 1:]
            prefix = enc.storage_prefix(resource)
            items = [{"kind": "Secret", "metadata": {"namespace": namespace, "name": name}} for name in names
                     if f"{prefix}{namespace}/{name}".encode() in self.etcd.store]
            return 0, json.dumps({"kind": "List", "items": items} if len(names) > 1 else (items[0] if items else {})), ""
        assert verb == "replace" and argv[4:] == ["-f", "-"], argv
        listed = json.loads(data)
        lines = []
        for item in listed.get("items", [listed]):
            key = f"/registry/secrets/{item['metadata']['namespace']}/{item['metadata']['name']}"
            if self.writes:
                self.etcd.put(key, sealed("secretbox", self.first_key))
            lines.append(f"secret/{item['metadata']['name']} replaced")
        return self.replace_rc, "\n".join(lines) + "\n", self.replace_stderr


def rewriter(etcd: FakeEtcd, kubectl: FakeKubectl, **settings) -> enc.EncryptionKeyUsage:
    values = {"resources": ["secrets"], "rewrite": True, "primary": "new", "batch_size": 1, **settings}
    return enc.EncryptionKeyUsage(etcd.client, enc.UsageSettings(**values), enc.Kubectl(kubectl, "kubectl", "/etc/kubernetes/admin.kubeconfig"))


def test_the_rewrite_replaces_only_what_is_not_under_the_encrypting_key_then_the_drop_passes():
    etcd = FakeEtcd(STORE)
    kubectl = FakeKubectl(etcd)
    result = rewriter(etcd, kubectl, batch_size=100, drop=["old"]).run()
    assert result["changed"] is True and result["rewritten"] == {"secrets": 3}
    assert result["usage"] == {"secrets": {"secretbox:new": 5}}
    assert result["summary"] == ["secrets: 5 in etcd, 5 under secretbox:new; 3 rewritten"]
    gets = [argv for argv, _data in kubectl.calls if argv[3] == "get"]
    assert gets == [
        ["kubectl", "--kubeconfig=/etc/kubernetes/admin.kubeconfig", "--request-timeout=60s", "get", "secrets", "-n", "default",
         "--ignore-not-found", "-o", "json", "a"],
        ["kubectl", "--kubeconfig=/etc/kubernetes/admin.kubeconfig", "--request-timeout=60s", "get", "secrets", "-n", "kube-system",
         "--ignore-not-found", "-o", "json", "c", "d"],
    ]
    # A second run finds nothing to rewrite and changes nothing.
    kubectl.calls.clear()
    again = rewriter(etcd, kubectl, drop=["old"]).run()
    assert (again["changed"], again["rewritten"], kubectl.calls) == (False, {"secrets": 0}, [])


def test_the_rewrite_goes_in_batches():
    etcd = FakeEtcd({f"/registry/secrets/default/s{n}": sealed("secretbox", "old") for n in range(5)})
    kubectl = FakeKubectl(etcd)
    result = rewriter(etcd, kubectl, batch_size=2).run()
    assert result["rewritten"] == {"secrets": 5}
    assert [argv[10:] for argv, _data in kubectl.calls if argv[3] == "get"] == [["s0", "s1"], ["s2", "s3"], ["s4"]]


def test_the_rewrite_in_check_mode_changes_nothing_and_reports_what_it_would_leave():
    etcd = FakeEtcd(STORE)
    kubectl = FakeKubectl(etcd)
    result = rewriter(etcd, kubectl, drop=["old"]).run(check_mode=True)
    assert kubectl.calls == [] and result["changed"] is True and result["rewritten"] == {"secrets": 3}
    assert result["usage"] == {"secrets": {"secretbox:new": 5}}
    assert result["summary"] == ["secrets: 5 in etcd, 5 under secretbox:new; 3 would be rewritten"]


def test_objects_changed_or_deleted_meanwhile_are_not_failures():
    conflict = ('Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled on secrets "a": '
                "the object has been modified")
    etcd = FakeEtcd(STORE)
    result = rewriter(etcd, FakeKubectl(etcd, replace_rc=1, replace_stderr=conflict)).run()
    assert result["usage"] == {"secrets": {"secretbox:new": 5}}
    # Every stale object deleted before the rewrite reached it: nothing to replace, and nothing left.
    etcd = FakeEtcd({"/registry/secrets/default/a": sealed("secretbox", "old")})

    class Deleting(FakeKubectl):
        def __call__(self, argv, data=None):
            self.etcd.store.clear()
            return super().__call__(argv, data)
    kubectl = Deleting(etcd)
    result = rewriter(etcd, kubectl).run()
    assert result["usage"] == {"secrets": {}} and [argv[3] for argv, _data in kubectl.calls] == ["get"]


def test_a_replace_that_fails_otherwise_stops_the_rewrite_with_the_counts():
    etcd = FakeEtcd(STORE)
    kubectl = FakeKubectl(etcd, replace_rc=1, replace_stderr="Error from server (Forbidden): secrets \"a\" is forbidden")
    with pytest.raises(enc.EncryptionError, match="kubectl replace of secrets -n default failed: .*Forbidden") as failed:
        rewriter(etcd, kubectl).run()
    assert failed.value.result["usage"] == {"secrets": {"secretbox:old": 2, "secretbox:new": 2, "identity": 1}}


def test_a_rewrite_that_leaves_objects_under_another_key_fails():
    """An apiserver still encrypting with the old key (a rotation stopped half-way) writes them back under it."""
    etcd = FakeEtcd(STORE)
    with pytest.raises(enc.EncryptionError, match="still not under the encrypting key new: 3 secrets"):
        rewriter(etcd, FakeKubectl(etcd, first_key="old")).run()


def test_an_object_the_api_cannot_read_fails_the_rewrite_with_kubectls_message():
    etcd = FakeEtcd(STORE)

    def kubectl(argv, data=None):
        return 1, "", "Error from server (InternalError): Internal error occurred: no matching key was found for the provided Secretbox transformer"
    with pytest.raises(enc.EncryptionError, match="kubectl get secrets -n default failed: .*no matching key"):
        rewriter(etcd, kubectl).run()


def test_values_are_never_returned():
    secret = base64.b64encode(b"the-secret-value").decode()
    etcd = FakeEtcd({"/registry/secrets/default/a": sealed("secretbox", "k") + secret.encode()})
    result = enc.EncryptionKeyUsage(etcd.client, enc.UsageSettings(resources=["secrets"])).run()
    assert secret not in json.dumps(result) and "ciphertext" not in json.dumps(result)

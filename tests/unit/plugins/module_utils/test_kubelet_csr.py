# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The kubelet serving-certificate approver: decide() on real CSRs, reconcile() and wait() against a recording fake,
the kubeconfig loader against HTTP(S) stubs of the API server (mutual TLS), and the script's CLI."""
from __future__ import annotations

import ast
import base64
import copy
import datetime
import io
import ipaddress
import json
import os
import ssl
import stat
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.kubeforge.cluster.plugins.module_utils import _kubelet_csr as kc
from fake_clock import Clock  # pylint: disable=import-error  # beside this file

SERVING = "kubernetes.io/kubelet-serving"
EXPECTED = {
    "kf-w1": {"dns_names": ["kf-w1"], "ip_addresses": ["10.0.0.21"]},
    "kf-w2": {"dns_names": ["kf-w2"], "ip_addresses": ["10.0.0.22", "fd00::22"]},
}
NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


# ---------------------------------------------------------------------------------------------------------
# Building requests


def new_key():
    return ec.generate_private_key(ec.SECP256R1())


def make_request_pem(node="kf-w1", cn=None, orgs=("system:nodes",), dns=None, ips=None, emails=(), uris=(),
                     extra_subject=(), san=True, key=None) -> bytes:
    """A PEM CSR as a kubelet builds it for ``node`` (EC P-256), with whatever a case changes."""
    entry = EXPECTED.get(node, {"dns_names": [node], "ip_addresses": ["10.0.0.99"]})
    dns = entry["dns_names"] if dns is None else dns
    ips = entry["ip_addresses"] if ips is None else ips
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn if cn is not None else f"system:node:{node}")]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in orgs]
    attributes += [x509.NameAttribute(oid, value) for oid, value in extra_subject]
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    names = ([x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
             + [x509.RFC822Name(e) for e in emails] + [x509.UniformResourceIdentifier(u) for u in uris])
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key or new_key(), hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def csr_object(pem: bytes | None = None, name="csr-1", node="kf-w1", username=None, groups=None,
               usages=("digital signature", "server auth"), signer=SERVING, conditions=None, request=None,
               resource_version="1", created="2026-03-01T11:00:00Z") -> dict:
    """A certificates.k8s.io/v1 CertificateSigningRequest as the API lists it."""
    if request is None:
        request = base64.b64encode(pem if pem is not None else make_request_pem(node)).decode()
    obj = {
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name, "resourceVersion": resource_version, "creationTimestamp": created},
        "spec": {
            "request": request, "signerName": signer, "usages": list(usages),
            "username": username if username is not None else f"system:node:{node}",
            "groups": list(groups) if groups is not None else ["system:nodes", "system:authenticated"],
        },
        "status": {},
    }
    if conditions:
        obj["status"]["conditions"] = [{"type": kind, "status": "True", "reason": "Test", "message": ""} for kind in conditions]
    return obj


def bad_signature_pem() -> bytes:
    der = x509.load_pem_x509_csr(make_request_pem()).public_bytes(serialization.Encoding.DER)
    der = der[:-1] + bytes([der[-1] ^ 0x01])  # the last byte is in the signature
    return b"-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE REQUEST-----\n"


# ---------------------------------------------------------------------------------------------------------
# decide()


@pytest.mark.parametrize("node, pem_args, obj_args", [
    ("kf-w1", {}, {}),
    ("kf-w1", {}, {"usages": ["digital signature", "key encipherment", "server auth"]}),  # an RSA-keyed kubelet
    ("kf-w1", {}, {"usages": ["server auth"]}),
    ("kf-w1", {"dns": ["KF-W1"]}, {}),  # DNS names compare without case
    ("kf-w2", {}, {}),  # dual stack
    ("kf-w2", {"ips": ["fd00:0:0::22", "10.0.0.22"]}, {}),  # another spelling and order of the same addresses
])
def test_approves_a_request_for_exactly_the_inventory_names(node, pem_args, obj_args):
    decision = kc.decide(csr_object(make_request_pem(node, **pem_args), node=node, **obj_args), EXPECTED)
    assert decision.action == kc.APPROVE, decision.reason
    assert node in decision.reason


DENIALS = [
    # (case, make_request_pem arguments, csr_object arguments, fragment of the reason)
    ("foreign SAN IP", {"ips": ["10.0.0.21", "192.0.2.66"]}, {}, "unexpected ['192.0.2.66'], missing []"),
    ("other SAN IP", {"ips": ["10.0.0.22"]}, {}, "unexpected ['10.0.0.22'], missing ['10.0.0.21']"),
    ("extra DNS name", {"dns": ["kf-w1", "kubernetes.default"]}, {}, "unexpected ['kubernetes.default']"),
    ("missing DNS name", {"dns": []}, {}, "SAN DNS names [] are not the inventory's ['kf-w1']"),
    ("missing IP", {"ips": []}, {}, "missing ['10.0.0.21']"),
    ("email SAN", {"emails": ["kubelet@example.com"]}, {}, "email:kubelet@example.com"),
    ("URI SAN", {"uris": ["spiffe://cluster/ns/x"]}, {}, "URI:spiffe://cluster/ns/x"),
    ("empty SAN set", {"dns": [], "ips": []}, {}, "subject alternative names are empty"),
    ("no SAN extension", {"san": False}, {}, "has no subject alternative names"),
    ("wrong CN", {"cn": "kf-w1"}, {}, "subject CN is 'kf-w1', want 'system:node:kf-w1'"),
    ("CN of another node", {"cn": "system:node:kf-w2"}, {}, "names node 'kf-w2', but the requester is node 'kf-w1'"),
    ("wrong O", {"orgs": ["system:masters"]}, {}, "subject O is ['system:masters']"),
    ("extra O", {"orgs": ["system:nodes", "system:masters"]}, {}, "subject O is ['system:nodes', 'system:masters']"),
    ("no O", {"orgs": []}, {}, "subject O is []"),
    ("extra subject attribute", {"extra_subject": [(NameOID.ORGANIZATIONAL_UNIT_NAME, "ops")]}, {}, "besides CN and O"),
    ("unknown node", {}, {"node": "kf-x"}, "node 'kf-x' is not in the inventory"),
    ("missing system:nodes group", {}, {"groups": ["system:authenticated"]}, "not in the group system:nodes"),
    ("client auth usage", {}, {"usages": ["digital signature", "server auth", "client auth"]}, "usages ['client auth'] are not for a serving"),
    ("no server auth usage", {}, {"usages": ["digital signature", "key encipherment"]}, "lack 'server auth'"),
    ("no usages", {}, {"usages": []}, "lack 'server auth'"),
    ("garbage PEM", {}, {"request": base64.b64encode(b"garbage, not PEM").decode()}, "want one PEM block CERTIFICATE REQUEST, found []"),
    ("not base64", {}, {"request": "%%% not base64 %%%"}, "is not base64"),
    ("empty request", {}, {"request": ""}, "spec.request is empty"),
    ("broken DER in the PEM", {}, {"request": base64.b64encode(
        b"-----BEGIN CERTIFICATE REQUEST-----\nMIIBADCB\n-----END CERTIFICATE REQUEST-----\n").decode()}, "cannot parse the PEM block"),
    ("two PEM blocks", {}, {"request": base64.b64encode(make_request_pem() + make_request_pem()).decode()},
     "found ['CERTIFICATE REQUEST', 'CERTIFICATE REQUEST']"),
    ("bad signature", {}, {"request": base64.b64encode(bad_signature_pem()).decode()}, "signature does not verify"),
]


@pytest.mark.parametrize("case, pem_args, obj_args, fragment", DENIALS, ids=[d[0] for d in DENIALS])
def test_denies_with_a_precise_reason(case, pem_args, obj_args, fragment):
    node = obj_args.get("node", "kf-w1")
    obj = csr_object(make_request_pem(node, **pem_args), **obj_args)
    decision = kc.decide(obj, EXPECTED)
    assert decision.action == kc.DENY, decision
    assert fragment in decision.reason, decision.reason


def test_a_certificate_is_not_a_request():
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "system:node:kf-w1")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(NOW).not_valid_after(NOW + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    obj = csr_object(request=base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode())
    assert kc.decide(obj, EXPECTED) == kc.Decision(kc.DENY, "spec.request is not a PEM certificate request: "
                                                            "want one PEM block CERTIFICATE REQUEST, found ['CERTIFICATE']")


@pytest.mark.parametrize("obj_args, fragment", [
    ({"signer": "kubernetes.io/kube-apiserver-client-kubelet"}, "is not kubernetes.io/kubelet-serving"),
    ({"signer": "example.com/serving"}, "is not kubernetes.io/kubelet-serving"),
    ({"conditions": ["Approved"]}, "already Approved"),
    ({"conditions": ["Denied"]}, "already Denied"),
    ({"conditions": ["Approved", "Failed"]}, "already Approved and Failed"),
    ({"username": "system:serviceaccount:kube-system:bootstrap"}, "is not a node"),
    ({"username": "kubelet-kf-w1"}, "is not a node"),
    ({"username": "system:node:"}, "is not a node"),
])
def test_ignores_what_is_not_ours_to_judge(obj_args, fragment):
    # Each of these requests would be denied (foreign IP) if it were judged.
    obj = csr_object(make_request_pem(ips=["192.0.2.66"]), **obj_args)
    decision = kc.decide(obj, EXPECTED)
    assert decision.action == kc.IGNORE and fragment in decision.reason, decision


def test_a_non_node_requester_is_ignored_even_when_unknown_and_groupless():
    obj = csr_object(make_request_pem("kf-x"), username="alice", groups=["developers"])
    assert kc.decide(obj, EXPECTED).action == kc.IGNORE


@pytest.mark.parametrize("raw, fragment", [
    ([], "must be a mapping"),
    ({"kf-w1": ["10.0.0.21"]}, "expected a mapping"),
    ({"kf-w1": {"dns_names": ["kf-w1"], "ips": ["10.0.0.21"]}}, "unknown keys ['ips']"),
    ({"kf-w1": {"dns_names": "kf-w1", "ip_addresses": []}}, "dns_names must be a list"),
    ({"kf-w1": {"dns_names": ["kf-w1"], "ip_addresses": ["10.0.0.300"]}}, "does not appear to be an IPv4 or IPv6 address"),
    ({"kf-w1": {"dns_names": [], "ip_addresses": []}}, "neither dns_names nor ip_addresses"),
    ({"": {"dns_names": ["x"]}}, "is not a non-empty string"),
])
def test_a_malformed_nodes_map_is_an_error(raw, fragment):
    with pytest.raises(kc.KubeletCSRError, match=None) as caught:
        kc.normalize_nodes(raw)
    assert fragment in str(caught.value)


def test_the_nodes_map_is_normalized():
    assert kc.normalize_nodes({"n": {"dns_names": ["N", "n"], "ip_addresses": ["fd00:0::1", "10.0.0.1"]}}) == {
        "n": {"dns_names": ["n"], "ip_addresses": ["10.0.0.1", "fd00::1"]}}


def test_missing_cryptography_is_an_error_not_a_denial(monkeypatch):
    monkeypatch.setattr(kc, "HAS_CRYPTOGRAPHY", False)
    monkeypatch.setattr(kc, "CRYPTOGRAPHY_IMPORT_ERROR", "Traceback...\nModuleNotFoundError: No module named 'cryptography'")
    with pytest.raises(kc.KubeletCSRError, match="cryptography is needed.*No module named 'cryptography'"):
        kc.decide(csr_object(), EXPECTED)
    with pytest.raises(kc.KubeletCSRError, match="cryptography is needed"):
        kc.reconcile(FakeClient([]), EXPECTED)


def test_with_condition_adds_one_condition_to_a_copy():
    obj = csr_object(conditions=None)
    obj["status"] = {"conditions": [{"type": "Other", "status": "True"}]}
    updated = kc.with_condition(obj, kc.Decision(kc.DENY, "because"), now=NOW)
    assert obj["status"]["conditions"] == [{"type": "Other", "status": "True"}]
    assert updated["status"]["conditions"][1] == {"type": "Denied", "status": "True", "reason": "KubeforgeDenied",
                                                  "message": "because", "lastUpdateTime": "2026-03-01T12:00:00Z"}
    assert updated["metadata"] == obj["metadata"] and updated["spec"] == obj["spec"]


# ---------------------------------------------------------------------------------------------------------
# reconcile() and wait() against a recording fake of the API


class FakeClient:
    """The API calls the approver makes, on a dict of requests: approvals are recorded and applied; a 409 or 404
    can be scripted for a request's next approval; ``arrivals`` maps a list call's number to requests appearing then."""

    def __init__(self, csrs, conflicts=None, gone=(), arrivals=None, fail_list=None):
        self.csrs = {c["metadata"]["name"]: copy.deepcopy(c) for c in csrs}
        self.conflicts = dict(conflicts or {})  # name -> what the request becomes (by someone else) before our write
        self.gone = set(gone)
        self.arrivals = dict(arrivals or {})
        self.fail_list = fail_list
        self.lists = 0
        self.approvals = []  # (name, condition type, reason, message)
        self.gets = []

    def list_csrs(self):
        if self.fail_list:
            raise self.fail_list
        self.lists += 1
        for csr in self.arrivals.pop(self.lists, []):
            self.csrs[csr["metadata"]["name"]] = copy.deepcopy(csr)
        return [copy.deepcopy(c) for c in self.csrs.values()]

    def get_csr(self, name):
        self.gets.append(name)
        if name not in self.csrs:
            raise kc.APIError("not found", status=404)
        return copy.deepcopy(self.csrs[name])

    def update_approval(self, csr):
        name = csr["metadata"]["name"]
        condition = csr["status"]["conditions"][-1]
        self.approvals.append((name, condition["type"], condition["reason"], condition["message"]))
        if name in self.gone:
            del self.csrs[name]
            raise kc.APIError("not found", status=404)
        if name in self.conflicts:
            self.csrs[name] = self.conflicts.pop(name)
            raise kc.APIError("the object has been modified", status=409)
        if csr["metadata"]["resourceVersion"] != self.csrs[name]["metadata"]["resourceVersion"]:
            raise AssertionError(f"{name}: written from a stale copy")
        stored = copy.deepcopy(csr)
        stored["metadata"]["resourceVersion"] = str(int(csr["metadata"]["resourceVersion"]) + 1)
        self.csrs[name] = stored
        return copy.deepcopy(stored)


def cluster_requests():
    return [
        csr_object(name="csr-good-w1", node="kf-w1"),
        csr_object(name="csr-good-w2", node="kf-w2"),
        csr_object(make_request_pem(ips=["192.0.2.66"]), name="csr-bad-w1", node="kf-w1"),
        csr_object(name="csr-client", node="kf-w1", signer="kubernetes.io/kube-apiserver-client-kubelet",
                   usages=["digital signature", "client auth"]),
        csr_object(name="csr-old-w1", node="kf-w1", conditions=["Approved"]),
        csr_object(name="csr-alice", username="alice", groups=["developers"]),
    ]


def by_name(decisions):
    return {d["name"]: d for d in decisions}


def test_reconcile_writes_one_decision_per_request():
    client = FakeClient(cluster_requests())
    decisions = by_name(kc.reconcile(client, EXPECTED))
    assert sorted(client.approvals) == [
        ("csr-bad-w1", "Denied", "KubeforgeDenied", decisions["csr-bad-w1"]["reason"]),
        ("csr-good-w1", "Approved", "KubeforgeApproved", decisions["csr-good-w1"]["reason"]),
        ("csr-good-w2", "Approved", "KubeforgeApproved", decisions["csr-good-w2"]["reason"]),
    ]
    assert set(decisions) == {"csr-good-w1", "csr-good-w2", "csr-bad-w1", "csr-old-w1", "csr-alice"}  # not csr-client
    assert {n: (d["node"], d["action"], d["state"]) for n, d in decisions.items()} == {
        "csr-good-w1": ("kf-w1", "approve", "approved"), "csr-good-w2": ("kf-w2", "approve", "approved"),
        "csr-bad-w1": ("kf-w1", "deny", "denied"), "csr-old-w1": ("kf-w1", "ignore", "approved"),
        "csr-alice": (None, "ignore", "pending"),
    }
    assert "192.0.2.66" in decisions["csr-bad-w1"]["reason"]
    assert client.csrs["csr-client"]["status"] == {} and client.csrs["csr-alice"]["status"] == {}
    # The next pass finds everything settled and writes nothing.
    again = kc.reconcile(client, EXPECTED)
    assert len(client.approvals) == 3
    assert all(d["action"] == "ignore" for d in again)


def test_reconcile_in_check_mode_decides_and_writes_nothing():
    client = FakeClient(cluster_requests())
    before = copy.deepcopy(client.csrs)
    decisions = by_name(kc.reconcile(client, EXPECTED, check_mode=True))
    assert client.approvals == [] and client.csrs == before
    assert {n: (d["action"], d["state"]) for n, d in decisions.items() if d["action"] != "ignore"} == {
        "csr-good-w1": ("approve", "pending"), "csr-good-w2": ("approve", "pending"), "csr-bad-w1": ("deny", "pending")}


def test_a_conflict_is_decided_again_on_a_fresh_copy():
    approved_elsewhere = csr_object(name="csr-a", node="kf-w1", conditions=["Approved"], resource_version="2")
    changed = csr_object(name="csr-b", node="kf-w2", resource_version="5")
    client = FakeClient([csr_object(name="csr-a", node="kf-w1"), csr_object(name="csr-b", node="kf-w2")],
                        conflicts={"csr-a": approved_elsewhere, "csr-b": changed})
    decisions = by_name(kc.reconcile(client, EXPECTED))
    assert client.gets == ["csr-a", "csr-b"]
    assert [a[:2] for a in client.approvals] == [("csr-a", "Approved"), ("csr-b", "Approved"), ("csr-b", "Approved")]
    assert (decisions["csr-a"]["action"], decisions["csr-a"]["reason"]) == ("ignore", "already Approved")
    assert (decisions["csr-b"]["action"], decisions["csr-b"]["state"]) == ("approve", "approved")
    assert client.csrs["csr-b"]["metadata"]["resourceVersion"] == "6"


def test_a_request_deleted_meanwhile_is_reported():
    client = FakeClient([csr_object(name="csr-a")], gone={"csr-a"})
    assert [(d["action"], d["state"]) for d in kc.reconcile(client, EXPECTED)] == [("ignore", "deleted")]


def test_an_api_error_while_writing_is_raised():
    class Failing(FakeClient):
        def update_approval(self, csr):
            raise kc.APIError("forbidden", status=403)
    with pytest.raises(kc.APIError, match="forbidden"):
        kc.reconcile(Failing([csr_object()]), EXPECTED)


def test_wait_returns_once_every_node_is_approved():
    clock = Clock()
    client = FakeClient([csr_object(name="csr-w1", node="kf-w1")], arrivals={3: [csr_object(name="csr-w2", node="kf-w2")]})
    decisions = by_name(kc.wait(client, EXPECTED, ["kf-w1", "kf-w2"], timeout=30, interval=2, clock=clock, sleep=clock.sleep))
    assert client.lists == 3 and clock.sleeps == [2, 2]
    assert {n: d["action"] for n, d in decisions.items()} == {"csr-w1": "approve", "csr-w2": "approve"}
    assert [a[0] for a in client.approvals] == ["csr-w1", "csr-w2"]


def test_wait_accepts_a_node_already_approved():
    clock = Clock()
    client = FakeClient([csr_object(name="csr-w1", conditions=["Approved"])])
    assert kc.wait(client, EXPECTED, ["kf-w1"], timeout=30, clock=clock, sleep=clock.sleep)[0]["state"] == "approved"
    assert client.lists == 1 and client.approvals == []


def test_wait_times_out_naming_the_missing_and_the_denied_nodes():
    clock = Clock()
    client = FakeClient([csr_object(make_request_pem(ips=["192.0.2.66"]), name="csr-bad-w1"),
                         csr_object(name="csr-w2", node="kf-w2", conditions=["Approved", "Failed"])])
    with pytest.raises(kc.KubeletCSRError) as caught:
        kc.wait(client, EXPECTED, ["kf-w1", "kf-w2", "kf-w1"], timeout=5, interval=2, clock=clock, sleep=clock.sleep)
    message = str(caught.value)
    assert "after 5s" in message and "kf-w1: csr-bad-w1 denied (" in message and "192.0.2.66" in message
    assert "kf-w2: csr-w2 failed (already Approved and Failed)" in message
    assert clock.sleeps == [2, 2, 1] and client.lists == 4
    assert caught.value.result["denied"] == ["csr-bad-w1"] and caught.value.result["changed"] is True


def client_request(node, name, created, username="system:bootstrap:abcdef"):
    """The kube-apiserver-client-kubelet request a kubelet's TLS bootstrap makes (its node in the subject only)."""
    return csr_object(make_request_pem(node, san=False), name=name, node=node, username=username, groups=["system:bootstrappers"],
                      signer=kc.KUBELET_CLIENT_SIGNER, usages=["digital signature", "client auth"], created=created)


def test_the_newest_client_request_of_each_node_is_read_from_its_subject():
    csrs = [client_request("kf-w1", "c1", "2026-03-01T11:00:00Z"), client_request("kf-w1", "c2", "2026-03-01T11:05:00Z"),
            client_request("kf-w2", "c3", "2026-03-01T10:00:00Z", username="system:node:kf-w2"),
            csr_object(name="c4", request="bm9wZQ==", signer=kc.KUBELET_CLIENT_SIGNER, created="2026-03-01T12:00:00Z"),  # not a request
            csr_object(name="s1", node="kf-w3", created="2026-03-01T13:00:00Z")]
    assert kc.newest_client_requests(csrs) == {"kf-w1": "2026-03-01T11:05:00Z", "kf-w2": "2026-03-01T10:00:00Z"}


def test_wait_does_not_count_an_earlier_kubelets_approved_request():
    """A host removed and added again within the hour: its first kubelet's approved request is still listed. The wait
    ends on the new kubelet's request (approved here), not on the old one."""
    clock = Clock()
    old = csr_object(name="csr-old-w1", conditions=["Approved"], created="2026-03-01T11:00:00Z")
    bootstrap = client_request("kf-w1", "csr-client-w1", "2026-03-01T11:20:00Z")
    new = csr_object(name="csr-new-w1", created="2026-03-01T11:20:01Z")
    client = FakeClient([old, bootstrap], arrivals={3: [new]})
    decisions = by_name(kc.wait(client, EXPECTED, ["kf-w1"], timeout=30, interval=2, clock=clock, sleep=clock.sleep))
    assert client.lists == 3 and [a[:2] for a in client.approvals] == [("csr-new-w1", "Approved")]
    assert decisions["csr-new-w1"]["state"] == "approved"


def test_wait_times_out_naming_an_earlier_kubelets_request():
    clock = Clock()
    client = FakeClient([csr_object(name="csr-old-w1", conditions=["Approved"], created="2026-03-01T11:00:00Z"),
                         client_request("kf-w1", "csr-client-w1", "2026-03-01T11:20:00Z")])
    with pytest.raises(kc.KubeletCSRError, match=r"kf-w1: csr-old-w1 approved \(.*\), an earlier kubelet's"):
        kc.wait(client, EXPECTED, ["kf-w1"], timeout=3, interval=2, clock=clock, sleep=clock.sleep)


def test_wait_names_a_node_that_never_asked():
    clock = Clock()
    with pytest.raises(kc.KubeletCSRError, match="kf-w2: never submitted a kubernetes.io/kubelet-serving request"):
        kc.wait(FakeClient([csr_object(name="csr-w1")]), EXPECTED, ["kf-w1", "kf-w2"], timeout=1, clock=clock, sleep=clock.sleep)


def test_wait_refuses_a_node_outside_the_map():
    with pytest.raises(kc.KubeletCSRError, match=r"not in the nodes map: \['kf-x'\]"):
        kc.wait(FakeClient([]), EXPECTED, ["kf-w1", "kf-x"], timeout=1)


@pytest.mark.parametrize("check_mode, wait_for, lists, approvals, changed", [
    (False, [], 1, 2, True),
    (True, [], 1, 0, True),
    (True, ["kf-w1"], 1, 0, True),  # check mode does not wait
    (False, ["kf-w1"], 1, 2, True),
])
def test_the_backend(check_mode, wait_for, lists, approvals, changed):
    client = FakeClient([csr_object(name="csr-w1"), csr_object(make_request_pem("kf-w2", cn="kf-w2"), name="csr-w2", node="kf-w2")])
    result = kc.KubeletCSRApprover(client, EXPECTED, wait_for=wait_for, timeout=0).run(check_mode=check_mode)
    assert (client.lists, len(client.approvals), result["changed"]) == (lists, approvals, changed)
    assert (result["approved"], result["denied"]) == (["csr-w1"], ["csr-w2"])


def test_the_backend_reports_no_change_when_all_is_settled():
    result = kc.KubeletCSRApprover(FakeClient([csr_object(conditions=["Approved"])]), EXPECTED).run()
    assert result == {"changed": False, "decisions": result["decisions"], "approved": [], "denied": []}
    assert len(result["decisions"]) == 1


# ---------------------------------------------------------------------------------------------------------
# The API client and the kubeconfig, against stubs of the API server


class ApiStub:
    """An API server holding CSRs: lists them (paged by limit/continue), gets one, and takes approvals with
    optimistic concurrency. Over HTTP, or HTTPS requiring a client certificate when ``tls`` is given."""

    def __init__(self, csrs=(), tls: ssl.SSLContext | None = None):
        self.csrs = {c["metadata"]["name"]: copy.deepcopy(c) for c in csrs}
        self.requests = []  # (method, path, query, headers, body)
        self.fail_status = None
        self.client_subjects = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_any(self, method):
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stub.requests.append((method, parts.path, query, dict(self.headers), json.loads(body) if body else None))
                if tls is not None:
                    stub.client_subjects.append(self.connection.getpeercert()["subject"])
                if stub.fail_status:
                    return self.answer(stub.fail_status, {"kind": "Status", "message": "etcdserver: request timed out"})
                base = kc.CSR_PATH
                if method == "GET" and parts.path == base:
                    names = sorted(stub.csrs)
                    start = int(query.get("continue", 0))
                    limit = int(query.get("limit", len(names) or 1))
                    page = names[start:start + limit]
                    meta = {"continue": str(start + limit)} if start + limit < len(names) else {}
                    return self.answer(200, {"kind": "CertificateSigningRequestList", "metadata": meta,
                                             "items": [stub.csrs[n] for n in page]})
                name = urllib.parse.unquote(parts.path[len(base) + 1:].split("/")[0])
                if name not in stub.csrs:
                    return self.answer(404, {"kind": "Status", "message": f"not found: {name}"})
                if method == "GET":
                    return self.answer(200, stub.csrs[name])
                if method == "PUT" and parts.path.endswith("/approval"):
                    sent = json.loads(body)
                    if sent["metadata"]["resourceVersion"] != stub.csrs[name]["metadata"]["resourceVersion"]:
                        return self.answer(409, {"kind": "Status", "message": "the object has been modified"})
                    sent["metadata"]["resourceVersion"] = str(int(sent["metadata"]["resourceVersion"]) + 1)
                    stub.csrs[name] = sent
                    return self.answer(200, sent)
                return self.answer(405, {"kind": "Status", "message": "no"})

            def do_GET(self):
                self.handle_any("GET")

            def do_PUT(self):
                self.handle_any("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def approvals(self):
        return [(r[1].split("/")[-2], r[4]["status"]["conditions"][-1]["type"]) for r in self.requests if r[0] == "PUT"]


@pytest.fixture
def stub():
    with ApiStub([csr_object(name="csr-good-w1"), csr_object(make_request_pem(ips=["192.0.2.66"]), name="csr-bad-w1"),
                  csr_object(name="csr-old-w1", conditions=["Approved"])]) as server:
        yield server


def write_kubeconfig(path, server, cluster=None, user=None, context="approver@kubeforge"):
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "other", "cluster": {"server": "https://192.0.2.1:6443"}},
                     {"name": "kubeforge", "cluster": dict({"server": server}, **(cluster or {}))}],
        "users": [{"name": "approver", "user": dict(user or {})}],
        "contexts": [{"name": "other", "context": {"cluster": "other", "user": "approver"}},
                     {"name": "approver@kubeforge", "context": {"cluster": "kubeforge", "user": "approver"}}],
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_list_follows_continue_tokens(stub, monkeypatch):
    monkeypatch.setattr(kc, "LIST_PAGE_SIZE", 2)
    names = [c["metadata"]["name"] for c in kc.KubeClient(stub.url).list_csrs()]
    assert names == ["csr-bad-w1", "csr-good-w1", "csr-old-w1"]
    assert [r[2] for r in stub.requests] == [{"limit": "2"}, {"limit": "2", "continue": "2"}]


def test_reconcile_over_http(stub, tmp_path):
    client = kc.client_from_kubeconfig(write_kubeconfig(tmp_path / "kubeconfig", stub.url, user={"token": "s3cret"}))
    decisions = by_name(kc.reconcile(client, EXPECTED))
    assert sorted(stub.approvals()) == [("csr-bad-w1", "Denied"), ("csr-good-w1", "Approved")]
    put = [r for r in stub.requests if r[0] == "PUT" and "csr-good-w1" in r[1]][0]
    assert put[1] == kc.CSR_PATH + "/csr-good-w1/approval"
    assert put[3]["Content-Type"] == "application/json" and put[3]["Authorization"] == "Bearer s3cret"
    assert put[4]["status"]["conditions"][-1]["reason"] == "KubeforgeApproved"
    assert put[4]["spec"] == stub.csrs["csr-good-w1"]["spec"]
    assert decisions["csr-good-w1"]["state"] == "approved" and stub.csrs["csr-good-w1"]["metadata"]["resourceVersion"] == "2"


def test_a_stale_copy_gets_a_conflict_and_is_read_again(stub):
    client = kc.KubeClient(stub.url)
    listed = client.list_csrs()
    stub.csrs["csr-good-w1"]["metadata"]["resourceVersion"] = "7"  # someone else wrote it after our list

    class Stale:
        def list_csrs(self):
            return listed
        get_csr = client.get_csr
        update_approval = client.update_approval

    kc.reconcile(Stale(), EXPECTED)
    puts = [r[4]["metadata"]["resourceVersion"] for r in stub.requests if r[0] == "PUT" and "csr-good-w1" in r[1]]
    assert puts == ["1", "7"] and stub.csrs["csr-good-w1"]["metadata"]["resourceVersion"] == "8"


def test_api_errors_carry_the_status_and_message(stub):
    stub.fail_status = 503
    with pytest.raises(kc.APIError, match="HTTP 503: etcdserver: request timed out") as caught:
        kc.KubeClient(stub.url).list_csrs()
    assert caught.value.status == 503


def test_an_unreachable_server_is_an_api_error():
    with ApiStub() as server:
        url = server.url
    with pytest.raises(kc.APIError) as caught:
        kc.KubeClient(url, timeout=2).list_csrs()
    assert caught.value.status == 0 and "GET " + url in str(caught.value)


def test_every_request_has_the_timeout():
    seen = []

    class Opener:
        def open(self, request, timeout=None):
            seen.append((request.get_method(), timeout))
            raise OSError("no network in this test")

    client = kc.KubeClient("https://api.example:6443", timeout=3.5, opener=Opener())
    for call in (client.list_csrs, lambda: client.get_csr("x"), lambda: client.update_approval(csr_object())):
        with pytest.raises(kc.APIError, match="no network"):
            call()
    assert seen == [("GET", 3.5), ("GET", 3.5), ("PUT", 3.5)]


# TLS material: a CA, the API server's certificate for 127.0.0.1, and the approver's client certificate.

def _cert(subject_cn, key, issuer_cert, issuer_key, ca=False, server=False):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    builder = (x509.CertificateBuilder().subject_name(name).public_key(key.public_key())
               .issuer_name(issuer_cert.subject if issuer_cert else name).serial_number(x509.random_serial_number())
               .not_valid_before(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1))
               .not_valid_after(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=ca, crl_sign=ca, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False, key_agreement=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key((issuer_key or key).public_key()), critical=False))
    if not ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """PEM bytes: ca, server cert/key, client cert/key; and a server context requiring a client certificate."""
    folder = tmp_path_factory.mktemp("tls")
    ca_key, server_key, client_key = new_key(), new_key(), new_key()
    ca = _cert("kubeforge-test-ca", ca_key, None, None, ca=True)
    pems = {"ca": _pem(ca), "server_cert": _pem(_cert("kube-apiserver", server_key, ca, ca_key, server=True)),
            "server_key": _pem(server_key), "client_cert": _pem(_cert("system:kubeforge:kubelet-csr-approver", client_key, ca, ca_key)),
            "client_key": _pem(client_key)}
    for name, data in pems.items():
        (folder / name).write_bytes(data)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(folder / "server_cert"), str(folder / "server_key"))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=pems["ca"].decode())
    return pems, context


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_kubeconfig_with_embedded_data_over_mutual_tls(tls, tmp_path):
    pems, server_context = tls
    with ApiStub([csr_object(name="csr-good-w1")], tls=server_context) as server:
        path = write_kubeconfig(tmp_path / "kubeconfig", server.url,
                                cluster={"certificate-authority-data": b64(pems["ca"])},
                                user={"client-certificate-data": b64(pems["client_cert"]), "client-key-data": b64(pems["client_key"])})
        config = kc.load_kubeconfig(path)
        assert (config.server, config.ca_pem, config.client_cert_pem, config.client_key_pem) == (
            server.url, pems["ca"], pems["client_cert"], pems["client_key"])
        assert (config.ca_file, config.client_cert_file, config.client_key_file, config.token) == (None, None, None, None)
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        context = kc.make_ssl_context(config, tmp_parent=str(scratch))
        assert list(scratch.iterdir()) == []  # the key written for load_cert_chain is gone
        assert [c["metadata"]["name"] for c in kc.KubeClient(config.server, ssl_context=context).list_csrs()] == ["csr-good-w1"]
        kc.reconcile(kc.client_from_kubeconfig(path), EXPECTED)
        assert server.approvals() == [("csr-good-w1", "Approved")]
        assert server.client_subjects[0] == ((("commonName", "system:kubeforge:kubelet-csr-approver"),),)


def test_kubeconfig_with_file_paths_relative_to_it(tls, tmp_path):
    pems, server_context = tls
    (tmp_path / "pki").mkdir()
    for name in ("ca", "client_cert", "client_key"):
        (tmp_path / "pki" / name).write_bytes(pems[name])
    with ApiStub([csr_object(name="csr-good-w1")], tls=server_context) as server:
        path = write_kubeconfig(tmp_path / "kubeconfig", server.url, cluster={"certificate-authority": "pki/ca"},
                                user={"client-certificate": "pki/client_cert", "client-key": str(tmp_path / "pki" / "client_key")})
        config = kc.load_kubeconfig(path)
        assert (config.ca_file, config.client_cert_file, config.client_key_file) == (
            str(tmp_path / "pki" / "ca"), str(tmp_path / "pki" / "client_cert"), str(tmp_path / "pki" / "client_key"))
        assert config.ca_pem is None and config.client_cert_pem is None
        assert len(kc.client_from_kubeconfig(path).list_csrs()) == 1
        assert server.client_subjects == [((("commonName", "system:kubeforge:kubelet-csr-approver"),),)]


def test_the_server_is_verified_against_the_kubeconfig_ca(tls, tmp_path):
    pems, server_context = tls
    other_ca = _pem(_cert("another-ca", new_key(), None, None, ca=True))
    with ApiStub(tls=server_context) as server:
        path = write_kubeconfig(tmp_path / "kubeconfig", server.url, cluster={"certificate-authority-data": b64(other_ca)},
                                user={"client-certificate-data": b64(pems["client_cert"]), "client-key-data": b64(pems["client_key"])})
        with pytest.raises(kc.APIError, match="CERTIFICATE_VERIFY_FAILED"):
            kc.client_from_kubeconfig(path).list_csrs()


def test_the_private_files_are_0600(tmp_path):
    path = kc._write_private(str(tmp_path), "client.key", b"secret")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(FileExistsError):
        kc._write_private(str(tmp_path), "client.key", b"other")


def test_a_bad_client_key_is_an_error_and_leaves_nothing(tls, tmp_path):
    pems = tls[0]
    config = kc.KubeConfig(server="https://127.0.0.1:1", ca_pem=pems["ca"], client_cert_pem=pems["client_cert"],
                           client_key_pem=_pem(new_key()))
    with pytest.raises(kc.KubeletCSRError, match="cannot load the kubeconfig's TLS material"):
        kc.make_ssl_context(config, tmp_parent=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_the_context_can_be_chosen(tmp_path):
    path = write_kubeconfig(tmp_path / "kubeconfig", "https://10.0.0.11:6443")
    assert kc.load_kubeconfig(path).server == "https://10.0.0.11:6443"
    assert kc.load_kubeconfig(path, context="other").server == "https://192.0.2.1:6443"


def test_a_token_file_is_read(tmp_path):
    (tmp_path / "token").write_text("abc\n")
    path = write_kubeconfig(tmp_path / "kubeconfig", "https://10.0.0.11:6443", user={"tokenFile": "token"})
    assert kc.load_kubeconfig(path).token == "abc"


@pytest.mark.parametrize("cluster, user, context, fragment", [
    ({}, {}, "missing", "no context named 'missing'"),
    ({"server": "10.0.0.11:6443"}, {}, None, "has no http(s) server URL"),
    ({"insecure-skip-tls-verify": True}, {}, None, "insecure-skip-tls-verify is refused"),
    ({}, {"client-certificate": "/x.crt"}, None, "needs its key"),
    ({}, {"client-key-data": b64(b"key")}, None, "needs its key"),
    ({}, {"exec": {"command": "aws"}}, None, "by ['exec'] is not supported"),
    ({"certificate-authority-data": "%%%"}, {}, None, "certificate-authority-data is not base64"),
])
def test_kubeconfig_errors(tmp_path, cluster, user, context, fragment):
    path = write_kubeconfig(tmp_path / "kubeconfig", "https://10.0.0.11:6443", cluster=cluster, user=user,
                            context=context or "approver@kubeforge")
    with pytest.raises(kc.KubeletCSRError) as caught:
        kc.load_kubeconfig(path)
    assert fragment in str(caught.value)


def test_an_unreadable_kubeconfig_is_an_error(tmp_path):
    with pytest.raises(kc.KubeletCSRError, match="cannot read the kubeconfig"):
        kc.load_kubeconfig(str(tmp_path / "absent"))
    (tmp_path / "bad").write_text("clusters: [\n")
    with pytest.raises(kc.KubeletCSRError, match="is not valid YAML"):
        kc.load_kubeconfig(str(tmp_path / "bad"))


def test_a_json_kubeconfig_is_read_without_pyyaml(tmp_path, monkeypatch):
    path = write_kubeconfig(tmp_path / "kubeconfig", "https://10.0.0.11:6443")
    (tmp_path / "kubeconfig.json").write_text(json.dumps(yaml.safe_load((tmp_path / "kubeconfig").read_text())))
    monkeypatch.setattr(kc, "HAS_YAML", False)
    assert kc.load_kubeconfig(str(tmp_path / "kubeconfig.json")).server == "https://10.0.0.11:6443"
    with pytest.raises(kc.KubeletCSRError, match="PyYAML"):
        kc.load_kubeconfig(path)


# ---------------------------------------------------------------------------------------------------------
# The script


SCRIPT = kc.__file__


@pytest.fixture
def nodes_file(tmp_path):
    path = tmp_path / "nodes.json"
    path.write_text(json.dumps(EXPECTED))
    return str(path)


def run_cli(argv, **kwargs):
    out, err = io.StringIO(), io.StringIO()
    saved, sys.stderr = sys.stderr, err
    try:
        code = kc.main(argv, out=out, **kwargs)
    finally:
        sys.stderr = saved
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def test_cli_one_pass_prints_a_line_per_decision(stub, tmp_path, nodes_file):
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", stub.url)
    code, lines, err = run_cli(["--kubeconfig", kubeconfig, "--nodes", nodes_file])
    assert (code, err) == (0, "")
    assert sorted((line["name"], line["action"], line["state"], line["dry_run"]) for line in lines) == [
        ("csr-bad-w1", "deny", "denied", False), ("csr-good-w1", "approve", "approved", False)]
    assert sorted(stub.approvals()) == [("csr-bad-w1", "Denied"), ("csr-good-w1", "Approved")]
    # Next run: all settled, nothing printed unless asked.
    assert run_cli(["--kubeconfig", kubeconfig, "--nodes", nodes_file]) == (0, [], "")
    code, lines, _err = run_cli(["--kubeconfig", kubeconfig, "--nodes", nodes_file, "--all"])
    assert sorted((line["name"], line["action"]) for line in lines) == [
        ("csr-bad-w1", "ignore"), ("csr-good-w1", "ignore"), ("csr-old-w1", "ignore")]
    assert len(stub.approvals()) == 2


def test_cli_dry_run_writes_nothing(stub, tmp_path, nodes_file):
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", stub.url)
    code, lines, _err = run_cli(["--kubeconfig", kubeconfig, "--nodes", nodes_file, "--dry-run"])
    assert code == 0 and stub.approvals() == []
    assert sorted((line["name"], line["action"], line["dry_run"]) for line in lines) == [
        ("csr-bad-w1", "deny", True), ("csr-good-w1", "approve", True)]


def test_cli_exits_1_on_an_api_error(stub, tmp_path, nodes_file):
    stub.fail_status = 500
    code, lines, err = run_cli(["--kubeconfig", write_kubeconfig(tmp_path / "kubeconfig", stub.url), "--nodes", nodes_file])
    assert (code, lines) == (1, []) and "HTTP 500" in err


@pytest.mark.parametrize("nodes_text, fragment", [
    ("not json", "cannot read the nodes file"),
    ('{"kf-w1": {"dns_names": ["kf-w1"], "ip_addresses": ["nope"]}}', "'nope' does not appear to be an IPv4 or IPv6 address"),
])
def test_cli_exits_2_on_a_bad_nodes_file(tmp_path, nodes_text, fragment):
    (tmp_path / "nodes.json").write_text(nodes_text)
    code, lines, err = run_cli(["--kubeconfig", "/nonexistent", "--nodes", str(tmp_path / "nodes.json")],
                               client_factory=lambda *a, **k: pytest.fail("no client for a bad nodes file"))
    assert (code, lines) == (2, []) and fragment in err


def test_cli_with_an_injected_client(nodes_file):
    client = FakeClient([csr_object(name="csr-w2", node="kf-w2")])
    made = []

    def factory(kubeconfig, context=None, timeout=None):
        made.append((kubeconfig, context, timeout))
        return client

    code, lines, _err = run_cli(["--kubeconfig", "/etc/k.conf", "--nodes", nodes_file, "--context", "c", "--request-timeout", "4"],
                                client_factory=factory)
    assert code == 0 and made == [("/etc/k.conf", "c", 4.0)]
    assert [(line["name"], line["node"], line["action"]) for line in lines] == [("csr-w2", "kf-w2", "approve")]
    assert client.approvals[0][:2] == ("csr-w2", "Approved")


def test_the_script_runs_as_the_timer_runs_it(stub, tmp_path, nodes_file):
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", stub.url)
    # -I: no PYTHONPATH and no current directory on the path, so the collection is not importable.
    done = subprocess.run([sys.executable, "-I", SCRIPT, "--kubeconfig", kubeconfig, "--nodes", nodes_file],
                          capture_output=True, text=True, timeout=60, cwd=str(tmp_path), check=False)
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(line)["name"] for line in done.stdout.splitlines()) == ["csr-bad-w1", "csr-good-w1"]
    assert sorted(stub.approvals()) == [("csr-bad-w1", "Denied"), ("csr-good-w1", "Approved")]


def test_the_script_imports_nothing_from_ansible():
    with open(SCRIPT, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imported and not [name for name in imported if name.split(".")[0] in ("ansible", "ansible_collections")]

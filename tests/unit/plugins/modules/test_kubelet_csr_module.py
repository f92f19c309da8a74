# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The kubelet_csr module: documentation against argument spec, EXAMPLES and RETURN, and main() on a fake API.

The decisions, the API client and the kubeconfig are tested in tests/unit/plugins/module_utils/test_kubelet_csr.py.
"""
from __future__ import annotations

import base64
import copy
import ipaddress

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.kubeforge.cluster.plugins.module_utils import _kubelet_csr
from ansible_collections.kubeforge.cluster.plugins.modules import kubelet_csr
from module_checks import run_main  # pylint: disable=import-error  # beside this file

DOC = yaml.safe_load(kubelet_csr.DOCUMENTATION)
NODES = {"kf-w1": {"dns_names": ["kf-w1"], "ip_addresses": ["172.30.40.21"]}}


def test_documentation_matches_the_argument_spec():
    spec = kubelet_csr.argument_spec()
    assert set(DOC["options"]) == set(spec)
    for name, option in spec.items():
        doc = DOC["options"][name]
        for key in ("type", "default", "elements", "choices"):
            assert doc.get(key) == option.get(key), f"{name}: {key}"
        assert bool(doc.get("required")) == bool(option.get("required")), name
        assert doc["description"], name


def test_documented_attributes():
    assert DOC["attributes"]["check_mode"]["support"] == "full"
    assert set(DOC["attributes"]) >= {"check_mode", "diff_mode", "idempotent"}
    assert all(attribute["description"] for attribute in DOC["attributes"].values())


def test_examples_use_only_options_that_exist():
    tasks = [task["kubeforge.cluster.kubelet_csr"] for task in yaml.safe_load(kubelet_csr.EXAMPLES)
             if "kubeforge.cluster.kubelet_csr" in task]
    assert len(tasks) >= 3
    for args in tasks:
        assert set(args) <= set(kubelet_csr.argument_spec()), args
        if isinstance(args["nodes"], dict):
            _kubelet_csr.normalize_nodes(args["nodes"])


def test_return_is_documented_with_samples():
    returned = yaml.safe_load(kubelet_csr.RETURN)
    assert set(returned) == {"decisions", "approved", "denied"}
    for key, entry in returned.items():
        assert {"description", "returned", "type"} <= set(entry), key
        assert "sample" in entry or "contains" in entry, key


def request_pem(node: str, ip: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes")])
    san = x509.SubjectAlternativeName([x509.DNSName(node), x509.IPAddress(ipaddress.ip_address(ip))])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).add_extension(san, critical=False).sign(key, hashes.SHA256())
    return base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode()


def csr(name: str, node: str = "kf-w1", ip: str = "172.30.40.21", approved: bool = False) -> dict:
    return {"metadata": {"name": name, "resourceVersion": "1"},
            "spec": {"signerName": _kubelet_csr.KUBELET_SERVING_SIGNER, "username": f"system:node:{node}",
                     "groups": ["system:nodes"], "usages": ["digital signature", "server auth"], "request": request_pem(node, ip)},
            "status": {"conditions": [{"type": "Approved", "status": "True"}]} if approved else {}}


class FakeClient:
    def __init__(self, csrs, error=None):
        self.csrs = csrs
        self.error = error
        self.written = []

    def list_csrs(self):
        if self.error:
            raise self.error
        return copy.deepcopy(self.csrs)

    def update_approval(self, obj):
        self.written.append((obj["metadata"]["name"], obj["status"]["conditions"][-1]["type"]))
        for stored in self.csrs:
            if stored["metadata"]["name"] == obj["metadata"]["name"]:
                stored["status"] = obj["status"]
        return obj


@pytest.fixture
def fake(monkeypatch):
    """Installs a FakeClient with a good request (csr-good) and a foreign-IP one (csr-bad) as the module's client."""
    client = FakeClient([csr("csr-good"), csr("csr-bad", ip="192.0.2.66")])
    opened = []

    def factory(path):
        opened.append(path)
        return client
    monkeypatch.setattr(kubelet_csr, "client_from_kubeconfig", factory)
    client.opened = opened
    return client


def test_approves_and_denies_then_changes_nothing(fake):
    result = run_main(kubelet_csr, {"kubeconfig": "/etc/kubernetes/approver.kubeconfig", "nodes": NODES})
    assert fake.opened == ["/etc/kubernetes/approver.kubeconfig"]
    assert (result["changed"], result["approved"], result["denied"]) == (True, ["csr-good"], ["csr-bad"])
    assert sorted(fake.written) == [("csr-bad", "Denied"), ("csr-good", "Approved")]
    assert {d["name"]: d["state"] for d in result["decisions"]} == {"csr-good": "approved", "csr-bad": "denied"}
    again = run_main(kubelet_csr, {"kubeconfig": "/k", "nodes": NODES})
    assert (again["changed"], again["approved"], again["denied"], len(fake.written)) == (False, [], [], 2)


def test_check_mode_reports_and_writes_nothing(fake):
    result = run_main(kubelet_csr, {"kubeconfig": "/k", "nodes": NODES, "wait_for": ["kf-w1"]}, check_mode=True)
    assert (result["changed"], result["approved"], result["denied"], fake.written) == (True, ["csr-good"], ["csr-bad"], [])


def test_wait_for_a_node_that_never_asks_fails_with_the_decisions(fake):
    nodes = dict(NODES, **{"kf-w2": {"dns_names": ["kf-w2"], "ip_addresses": ["172.30.40.22"]}})
    result = run_main(kubelet_csr, {"kubeconfig": "/k", "nodes": nodes, "wait_for": ["kf-w1", "kf-w2"], "timeout": 0})
    assert result["failed"] and "kf-w2: never submitted" in result["msg"]
    assert result["approved"] == ["csr-good"] and result["changed"] is True


def test_api_errors_are_failures(monkeypatch):
    client = FakeClient([], error=_kubelet_csr.APIError("GET https://10.0.0.11:6443/apis/...: HTTP 403: forbidden", status=403))
    monkeypatch.setattr(kubelet_csr, "client_from_kubeconfig", lambda path: client)
    result = run_main(kubelet_csr, {"kubeconfig": "/k", "nodes": NODES})
    assert result["failed"] and "HTTP 403: forbidden" in result["msg"]


def test_a_missing_kubeconfig_is_a_failure(tmp_path):
    result = run_main(kubelet_csr, {"kubeconfig": str(tmp_path / "absent"), "nodes": NODES})
    assert result["failed"] and "cannot read the kubeconfig" in result["msg"]


def test_a_malformed_nodes_option_is_a_failure(fake):
    result = run_main(kubelet_csr, {"kubeconfig": "/k", "nodes": {"kf-w1": {"dns_names": ["kf-w1"], "ip_addresses": ["300.1.1.1"]}}})
    assert result["failed"] and "node 'kf-w1'" in result["msg"] and fake.written == []


def test_missing_cryptography_is_reported(monkeypatch, fake):
    monkeypatch.setattr(kubelet_csr, "HAS_CRYPTOGRAPHY", False)
    monkeypatch.setattr(kubelet_csr, "CRYPTOGRAPHY_IMPORT_ERROR", "ModuleNotFoundError: No module named 'cryptography'")
    result = run_main(kubelet_csr, {"kubeconfig": "/k", "nodes": NODES})
    assert result["failed"] and "cryptography" in result["msg"] and fake.opened == []

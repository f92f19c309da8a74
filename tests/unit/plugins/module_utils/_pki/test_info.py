# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""x509_info's logic: parsing recorded openssl output, finding certificates in files and kubeconfigs, days left."""
from __future__ import annotations

import base64
import datetime
import shutil
import subprocess

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import info, issue
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.errors import PkiError

from .helpers import NOW, make_ca, make_spec, sign

# `openssl x509 <OPENSSL_X509_ARGS>` of OpenSSL 3.0.
OPENSSL3_LEAF = """subject=CN=admin,O=g2,O=system:masters
issuer=CN=test-ca
serial=581B68A101CAD8A1769CAFD352DE631A09EB38B7
notBefore=Nov 23 19:45:53 2026 GMT
notAfter=Nov 28 19:45:53 2026 GMT
sha256 Fingerprint=66:8F:C3:6F:82:71:6D:F8:7F:85:EC:73:63:C2:1F:14:0C:43:39:33:0B:60:C5:7E:E0:F8:68:1F:AC:3E:A3:B9
X509v3 Subject Alternative Name: \n    DNS:kubernetes, DNS:localhost, IP Address:127.0.0.1, IP Address:FD00:0:0:0:0:0:0:1
"""
OPENSSL3_CA = """subject=CN=test-ca
issuer=CN=test-ca
serial=4D5FA5F6F8B95A99F3D91E9732D7806A855140F8
notBefore=Nov 23 19:45:53 2026 GMT
notAfter=Dec  3 19:45:53 2026 GMT
sha256 Fingerprint=F8:57:53:D2:25:6F:B2:17:25:75:94:F0:50:27:8A:0F:64:94:35:60:66:50:E9:28:38:43:39:0D:16:3F:95:A5
X509v3 Basic Constraints: critical
    CA:TRUE
"""
# OpenSSL 1.1.1 prints the fingerprint label in upper case and an empty line after extensions.
OPENSSL111_SERVER = """subject=CN=kube-apiserver
issuer=CN=kubernetes-ca
serial=0A
notBefore=Mar  1 11:55:00 2026 GMT
notAfter=Mar  1 12:00:00 2027 GMT
SHA256 Fingerprint=AB:CD
X509v3 Basic Constraints: critical
    CA:FALSE
X509v3 Subject Alternative Name: \n    DNS:kubernetes.default.svc.cluster.local, IP Address:10.96.0.1

"""


def test_parse_openssl3_leaf():
    parsed = info.parse_x509_text(OPENSSL3_LEAF)
    assert parsed["subject"] == "CN=admin,O=g2,O=system:masters" and parsed["issuer"] == "CN=test-ca"
    assert parsed["dns_names"] == ["kubernetes", "localhost"] and parsed["ip_addresses"] == ["127.0.0.1", "fd00::1"]
    assert parsed["not_after"] == datetime.datetime(2026, 11, 28, 19, 45, 53, tzinfo=datetime.timezone.utc)
    assert parsed["fingerprint_sha256"].startswith("66:8F") and parsed["serial"] == "581B68A101CAD8A1769CAFD352DE631A09EB38B7"
    assert parsed["is_ca"] is False


def test_parse_openssl3_ca_with_padded_day():
    parsed = info.parse_x509_text(OPENSSL3_CA)
    assert parsed["is_ca"] is True and parsed["dns_names"] == [] and parsed["not_after"].day == 3


def test_parse_openssl111():
    parsed = info.parse_x509_text(OPENSSL111_SERVER)
    assert parsed["is_ca"] is False and parsed["fingerprint_sha256"] == "AB:CD"
    assert parsed["dns_names"] == ["kubernetes.default.svc.cluster.local"] and parsed["ip_addresses"] == ["10.96.0.1"]
    assert parsed["not_before"] == datetime.datetime(2026, 3, 1, 11, 55, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize("text, fragment", [
    ("subject=CN=x\n", "lacks issuer, not_after"),
    ("subject=CN=x\nissuer=CN=x\nnotAfter=Smarch 1 00:00:00 2027 GMT\n", "unexpected date"),
])
def test_parse_rejects_incomplete_output(text, fragment):
    with pytest.raises(PkiError, match=fragment):
        info.parse_x509_text(text)


@pytest.mark.parametrize("not_after, days", [
    (NOW + datetime.timedelta(days=30, hours=1), 30),
    (NOW + datetime.timedelta(hours=23), 0),
    (NOW - datetime.timedelta(hours=1), -1),
])
def test_days_left(not_after, days):
    assert info.days_left(not_after, NOW) == days


def _pems():
    ca = make_ca()
    leaf, _key = sign(make_spec(), ca)
    return issue.certificate_pem(ca[0]), issue.certificate_pem(leaf)


def test_certificates_in_pem_files_and_kubeconfigs():
    ca_pem, leaf_pem = _pems()
    bundle = b"# two certificates\n" + ca_pem + leaf_pem
    assert [source for source, _pem in info.pem_certificates(bundle)] == ["file", "file"]
    kubeconfig = (b"clusters:\n- cluster:\n    certificate-authority-data: " + base64.b64encode(ca_pem) + b"\n    server: https://x\n"
                  b"users:\n- user:\n    client-certificate-data: " + base64.b64encode(leaf_pem) + b"\n"
                  b"    client-key-data: " + base64.b64encode(b"-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n") + b"\n")
    found = info.pem_certificates(kubeconfig)
    assert found == [("kubeconfig cluster CA", ca_pem), ("kubeconfig client", leaf_pem)]
    assert info.pem_certificates(b"-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n") == []


def test_expand_paths(tmp_path):
    (tmp_path / "a.crt").write_text("")
    (tmp_path / "a.key").write_text("")
    (tmp_path / "a.crt.20260301T120000Z.bak").write_text("")
    (tmp_path / "admin.kubeconfig").write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.crt").write_text("")
    files, missing = info.expand_paths([str(tmp_path), str(tmp_path / "a.key"), str(tmp_path / "nope")])
    assert files == [str(tmp_path / "a.crt"), str(tmp_path / "admin.kubeconfig"), str(tmp_path / "a.key")]
    assert missing == [str(tmp_path / "nope")]


def test_backend_with_recorded_output(tmp_path):
    ca_pem, leaf_pem = _pems()
    (tmp_path / "ca.crt").write_bytes(ca_pem)
    (tmp_path / "bad.crt").write_bytes(leaf_pem)
    calls = []

    def fake_openssl(pem):
        calls.append(pem)
        return (0, OPENSSL3_CA, "") if pem == ca_pem else (1, "", "unable to load certificate\n")

    now = datetime.datetime(2026, 11, 23, 19, 45, 53, tzinfo=datetime.timezone.utc)
    result = info.X509InfoBackend([str(tmp_path)], fake_openssl, now=now).run()
    assert result["changed"] is False and result["missing"] == [] and len(calls) == 2
    bad, good = result["certificates"]
    assert bad == {"path": str(tmp_path / "bad.crt"), "source": "file", "error": "unable to load certificate"}
    assert good["days_left"] == 10 and good["is_ca"] and good["self_signed"] and good["not_after"] == "2026-12-03T19:45:53Z"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")
def test_backend_with_the_real_openssl(tmp_path):
    ca_pem, leaf_pem = _pems()
    (tmp_path / "ca.crt").write_bytes(ca_pem)
    (tmp_path / "leaf.crt").write_bytes(leaf_pem)

    def openssl(pem):
        done = subprocess.run(["openssl", *info.OPENSSL_X509_ARGS], input=pem, capture_output=True, check=False)
        return done.returncode, done.stdout.decode(), done.stderr.decode()

    certs = info.X509InfoBackend([str(tmp_path)], openssl, now=NOW).run()["certificates"]
    assert [(c["subject"], c["issuer"], c["is_ca"]) for c in certs] == [("CN=test-ca", "CN=test-ca", True), ("CN=leaf", "CN=test-ca", False)]
    assert certs[1]["dns_names"] == ["leaf.example"] and certs[1]["days_left"] == 365

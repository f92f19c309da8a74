# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import inspect, issue
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.errors import PkiError

from .helpers import make_ca, make_spec, sign


def test_read_file_missing_and_present(tmp_path):
    assert inspect.read_file(str(tmp_path / "nope"), "certificate") is None
    (tmp_path / "f").write_bytes(b"x")
    assert inspect.read_file(str(tmp_path / "f"), "certificate") == b"x"


def test_read_file_unreadable(tmp_path, monkeypatch):
    path = tmp_path / "f"
    path.write_bytes(b"x")

    def denied(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr("builtins.open", denied)
    with pytest.raises(PkiError, match="cannot read private key .*Permission denied"):
        inspect.read_file(str(path), "private key")


def test_read_file_directory(tmp_path):
    with pytest.raises(PkiError, match="cannot read certificate"):
        inspect.read_file(str(tmp_path), "certificate")


def test_parse_certificate_errors():
    with pytest.raises(PkiError, match="ca_cert /x is not a PEM certificate"):
        inspect.parse_certificate(b"garbage", "/x", "ca_cert")


@pytest.mark.parametrize("data, fragment", [
    (b"garbage", "is not a readable PEM private key"),
    (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "is not a readable PEM private key"),
])
def test_parse_private_key_errors(data, fragment):
    with pytest.raises(PkiError, match=fragment):
        inspect.parse_private_key(data, "/k")


def test_parse_encrypted_private_key():
    key = issue.generate_private_key("ecdsa", 256)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw"))
    with pytest.raises(PkiError, match="is encrypted"):
        inspect.parse_private_key(pem, "/k")


@pytest.mark.parametrize("key_type, key_size, label", [("ecdsa", 256, "ecdsa-256"), ("ecdsa", 521, "ecdsa-521"), ("rsa", 2048, "rsa-2048")])
def test_key_kind(key_type, key_size, label):
    key = issue.generate_private_key(key_type, key_size)
    assert inspect.key_kind(key) == (key_type, key_size)
    assert inspect.key_label(key) == label


def test_key_kind_other_types():
    from cryptography.hazmat.primitives.asymmetric import ed25519
    assert inspect.key_kind(ed25519.Ed25519PrivateKey.generate()) == ("Ed25519PrivateKey", None)


def test_key_matches_and_issued_by(ca):
    cert, key = sign(make_spec(), ca)
    assert inspect.key_matches_certificate(key, cert)
    assert not inspect.key_matches_certificate(ca[1], cert)
    assert inspect.issued_by(cert, ca[0])
    assert not inspect.issued_by(cert, make_ca()[0])  # same subject, other key
    assert not inspect.issued_by(cert, make_ca(common_name="other")[0])
    assert inspect.issued_by(ca[0], ca[0])


def test_subject_attributes_ignore_order(ca):
    cert, _key = sign(make_spec(common_name="admin", organizations=["b", "a"]), ca)
    assert inspect.subject_attributes(cert) == inspect.expected_subject_attributes("admin", ("a", "b"))
    assert inspect.subject_names(cert) == ("admin", ["b", "a"])


def test_describe(ca):
    cert, _key = sign(make_spec(common_name="admin", organizations=["system:masters"], profile="client", dns_names=[], ip_addresses=["::1"]), ca)
    facts = inspect.describe(cert)
    assert facts == {
        "common_name": "admin", "organizations": ["system:masters"], "dns_names": [], "ip_addresses": ["::1"], "profile": "client",
        "subject": "CN=admin,O=system:masters", "issuer": "CN=test-ca", "not_after": "2027-03-01T12:00:00Z",
    }


def test_serial_and_fingerprint_match_openssl(tmp_path, ca):
    cert, _key = sign(make_spec(), ca)
    path = tmp_path / "c.crt"
    path.write_bytes(issue.certificate_pem(cert))
    out = subprocess.run(["openssl", "x509", "-in", str(path), "-noout", "-serial", "-fingerprint", "-sha256"],
                         check=True, capture_output=True, text=True).stdout.splitlines()
    assert out[0] == f"serial={inspect.serial_hex(cert)}"
    assert out[1].split("=", 1)[1] == inspect.fingerprint_sha256(cert)

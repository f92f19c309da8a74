# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import issue

from .helpers import NOW, make_spec, sign


@pytest.mark.parametrize("key_type, key_size, cls, size", [
    ("ecdsa", 256, ec.EllipticCurvePrivateKey, 256),
    ("ecdsa", 384, ec.EllipticCurvePrivateKey, 384),
    ("rsa", 2048, rsa.RSAPrivateKey, 2048),
])
def test_generate_private_key(key_type, key_size, cls, size):
    key = issue.generate_private_key(key_type, key_size)
    assert isinstance(key, cls) and key.key_size == size
    pem = issue.private_key_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert serialization.load_pem_private_key(pem, None).private_numbers() == key.private_numbers()


def test_leaf_certificate_fields(ca):
    spec = make_spec(common_name="system:node:w1", organizations=["system:nodes"], dns_names=["w1", "w1.lab"],
                     ip_addresses=["192.0.2.21", "fd00::21"], valid_days=100)
    cert, key = sign(spec, ca)
    assert cert.subject.rfc4514_string() == "CN=system:node:w1,O=system:nodes"
    assert [a.oid for a in cert.subject] == [NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME]
    assert cert.issuer == ca[0].subject
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert not san.critical
    assert san.value.get_values_for_type(x509.DNSName) == ["w1", "w1.lab"]
    assert san.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.21"), ipaddress.ip_address("fd00::21")]
    assert cert.not_valid_before_utc == NOW - issue.BACKDATE
    assert cert.not_valid_after_utc == NOW + datetime.timedelta(days=100)
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    cert.verify_directly_issued_by(ca[0])


def test_key_identifiers(ca):
    cert, key = sign(make_spec(), ca)
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca[0].extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest


def test_self_signed_ca(ca):
    cert, key = ca
    assert cert.subject == cert.issuer
    cert.verify_directly_issued_by(cert)
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def test_no_san_extension_without_names(ca):
    cert, _key = sign(make_spec(profile="client", dns_names=[]), ca)
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_serials_are_random_and_positive(ca):
    serials = {sign(make_spec(), ca, key=ca[1])[0].serial_number for _attempt in range(5)}
    assert len(serials) == 5 and all(0 < serial < 2 ** 159 for serial in serials)


def test_p384_ca_signs_with_sha384():
    key = issue.generate_private_key("ecdsa", 384)
    assert isinstance(issue.signature_hash(key), hashes.SHA384)

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import profile

from .helpers import make_spec, sign

SERVER, CLIENT = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH

# profile, key type -> CA flag, keyUsage bits set, EKU OIDs (None: no EKU extension)
TABLE = [
    ("ca", "ecdsa", True, {"key_cert_sign", "crl_sign"}, None),
    ("ca", "rsa", True, {"key_cert_sign", "crl_sign"}, None),
    ("server", "ecdsa", False, {"digital_signature"}, {SERVER}),
    ("server", "rsa", False, {"digital_signature", "key_encipherment"}, {SERVER}),
    ("client", "ecdsa", False, {"digital_signature"}, {CLIENT}),
    ("client", "rsa", False, {"digital_signature", "key_encipherment"}, {CLIENT}),
    ("peer", "ecdsa", False, {"digital_signature"}, {SERVER, CLIENT}),
    ("peer", "rsa", False, {"digital_signature", "key_encipherment"}, {SERVER, CLIENT}),
]


@pytest.mark.parametrize("name, key_type, ca, usages, ekus", TABLE)
def test_extensions_built_per_profile(name, key_type, ca, usages, ekus):
    extensions = {type(ext): (ext, critical) for ext, critical in profile.to_x509(profile.expected(name, key_type))}
    constraints, critical = extensions[x509.BasicConstraints]
    assert constraints.ca is ca and constraints.path_length is None and critical
    key_usage, critical = extensions[x509.KeyUsage]
    assert critical
    assert {n for n in profile.KEY_USAGE_NAMES if n not in ("encipher_only", "decipher_only") and getattr(key_usage, n)} == usages
    if ekus is None:
        assert x509.ExtendedKeyUsage not in extensions
    else:
        eku, critical = extensions[x509.ExtendedKeyUsage]
        assert set(eku) == ekus and not critical


@pytest.mark.parametrize("name", ["server", "client", "peer"])
def test_observed_matches_expected_on_a_signed_certificate(ca, name):
    cert, _key = sign(make_spec(profile=name), ca)
    assert profile.observed(cert) == profile.expected(name, "ecdsa")
    assert profile.name_of(profile.observed(cert)) == name


def test_observed_ca(ca):
    assert profile.name_of(profile.observed(ca[0])) == "ca"
    assert profile.observed(ca[0]).as_dict() == {"ca": True, "key_usage": ["crl_sign", "key_cert_sign"], "extended_key_usage": None}


def test_rsa_and_ecdsa_server_profiles_differ():
    assert profile.expected("server", "rsa") != profile.expected("server", "ecdsa")


def test_unknown_combinations_are_custom():
    assert profile.name_of(profile.ProfileExtensions(None, None, None)) == "custom"
    assert profile.name_of(profile.ProfileExtensions(False, frozenset({"digital_signature"}), frozenset({"1.3.6.1.5.5.7.3.3"}))) == "custom"

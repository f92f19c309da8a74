# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers of the _pki tests: in-memory CAs and specs, and a one-call backend runner."""
from __future__ import annotations

import datetime

from cryptography import x509

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import issue
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.backend import X509CertBackend
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.spec import spec_from_options

NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def make_spec(**options):
    """A validated spec: a server certificate signed by /pki/ca unless options say otherwise."""
    base = {
        "path": "/pki/leaf.crt", "privatekey_path": "/pki/leaf.key", "common_name": "leaf", "profile": "server",
        "dns_names": ["leaf.example"], "ca_cert": "/pki/ca.crt", "ca_key": "/pki/ca.key", "valid_days": 365,
    }
    base.update(options)
    if base["profile"] == "ca" and "ca_cert" not in options:
        base["ca_cert"] = base["ca_key"] = None
    return spec_from_options(base)


def make_ca(common_name="test-ca", now=NOW, key_type="ecdsa", key_size=256):
    """A self-signed CA in memory: (certificate, key)."""
    key = issue.generate_private_key(key_type, key_size)
    spec = make_spec(path="/pki/ca.crt", privatekey_path="/pki/ca.key", common_name=common_name, profile="ca", key_type=key_type, key_size=key_size)
    return issue.build_certificate(spec, key.public_key(), key, None, now), key


def sign(spec, ca, key=None, now=NOW):
    """(certificate, key) for ``spec`` signed by ``ca`` (a (cert, key) pair, or None for self-signed)."""
    key = key or issue.generate_private_key(spec.key_type, spec.key_size)
    if ca is None:
        return issue.build_certificate(spec, key.public_key(), key, None, now), key
    return issue.build_certificate(spec, key.public_key(), ca[1], ca[0], now), key


def load_cert(path) -> x509.Certificate:
    with open(path, "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read())


def run(params, **kwargs):
    return X509CertBackend(params, **kwargs).run()

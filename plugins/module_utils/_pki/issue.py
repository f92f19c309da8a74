# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Generating private keys and building and signing certificates with ``cryptography``."""

from __future__ import annotations

import datetime

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import profile as _profile
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.spec import CertSpec

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID
except ImportError:
    pass  # reported by the module through deps.HAS_CRYPTOGRAPHY

# not_before is set this far in the past, so that hosts whose clocks lag accept a fresh certificate.
BACKDATE = datetime.timedelta(minutes=5)


def generate_private_key(key_type: str, key_size: int):
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    curve = {256: ec.SECP256R1, 384: ec.SECP384R1, 521: ec.SECP521R1}[key_size]
    return ec.generate_private_key(curve())


def private_key_pem(key) -> bytes:
    """PKCS#8 PEM, unencrypted (the file is written 0600)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def signature_hash(signing_key):
    """SHA-256, or the hash that matches a larger EC curve; None for Ed25519/Ed448 keys."""
    if isinstance(signing_key, ec.EllipticCurvePrivateKey):
        return {384: hashes.SHA384(), 521: hashes.SHA512()}.get(signing_key.curve.key_size, hashes.SHA256())
    if isinstance(signing_key, rsa.RSAPrivateKey):
        return hashes.SHA256()
    return None


def subject_name(common_name: str, organizations: tuple[str, ...]) -> x509.Name:
    """O=... first, then CN, as Kubernetes tooling writes it (``O=system:masters, CN=admin``)."""
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _authority_key_identifier(issuer_cert: x509.Certificate | None, public_key) -> x509.AuthorityKeyIdentifier:
    if issuer_cert is None:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key)
    try:
        ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def build_certificate(spec: CertSpec, public_key, signing_key, issuer_cert: x509.Certificate | None,
                      now: datetime.datetime) -> x509.Certificate:
    """Sign a certificate for ``public_key`` as ``spec`` asks.

    ``issuer_cert`` is the CA certificate and ``signing_key`` its key; for a self-signed CA
    ``issuer_cert`` is None and ``signing_key`` is the certificate's own key.
    """
    subject = subject_name(spec.common_name, spec.organizations)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=spec.valid_days))
    )
    for extension, critical in _profile.to_x509(_profile.expected(spec.profile, spec.key_type)):
        builder = builder.add_extension(extension, critical=critical)
    if spec.dns_names or spec.ip_addresses:
        names = [x509.DNSName(name) for name in spec.dns_names] + [x509.IPAddress(ip) for ip in spec.ip_addresses]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    builder = builder.add_extension(_authority_key_identifier(issuer_cert, public_key), critical=False)
    return builder.sign(signing_key, signature_hash(signing_key))

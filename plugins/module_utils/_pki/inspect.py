# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Reading existing certificates and private keys, and describing what they contain."""

from __future__ import annotations

import errno
import ipaddress

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import profile as _profile
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.errors import PkiError

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID
except ImportError:
    pass  # reported by the module through deps.HAS_CRYPTOGRAPHY

CURVES_BY_NAME = {"secp256r1": 256, "secp384r1": 384, "secp521r1": 521}


def read_file(path: str, what: str) -> bytes | None:
    """The file's bytes, or None when it does not exist. ``what`` names it in the error message."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise PkiError(f"cannot read {what} {path}: {exc.strerror}") from exc


def parse_certificate(data: bytes, path: str, what: str = "certificate") -> x509.Certificate:
    """The first certificate of a PEM file; ``PkiError`` when there is none."""
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise PkiError(f"{what} {path} is not a PEM certificate: {exc}") from exc


def parse_private_key(data: bytes, path: str, what: str = "private key"):
    """An unencrypted PEM private key; ``PkiError`` when it is encrypted, corrupt or of an unknown type."""
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:
        raise PkiError(f"{what} {path} is encrypted: only unencrypted keys are supported") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise PkiError(f"{what} {path} is not a readable PEM private key: {exc}") from exc


def key_kind(key) -> tuple[str, int | None]:
    """``('ecdsa', 256)``, ``('rsa', 2048)``, or ``(<type name>, None)`` for other key types."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in CURVES_BY_NAME:
        return "ecdsa", CURVES_BY_NAME[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa", key.key_size
    return type(key).__name__, None


def key_label(key) -> str:
    kind, size = key_kind(key)
    return f"{kind}-{size}" if size else kind


def public_key_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches_certificate(key, cert: x509.Certificate) -> bool:
    return public_key_der(key.public_key()) == public_key_der(cert.public_key())


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` (the certificate itself for a self-signed one) signed ``cert``."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def subject_attributes(cert: x509.Certificate) -> list[tuple[str, str]]:
    """The subject as sorted (attribute OID, value) pairs, for an order-insensitive comparison."""
    return sorted((attribute.oid.dotted_string, str(attribute.value)) for attribute in cert.subject)


def expected_subject_attributes(common_name: str, organizations: tuple[str, ...]) -> list[tuple[str, str]]:
    pairs = [(NameOID.COMMON_NAME.dotted_string, common_name)]
    pairs.extend((NameOID.ORGANIZATION_NAME.dotted_string, org) for org in organizations)
    return sorted(pairs)


def subject_names(cert: x509.Certificate) -> tuple[str, list[str]]:
    """The common name and the organizations of the subject."""
    common_names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    organizations = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return (common_names[0] if common_names else ""), organizations


def sans(cert: x509.Certificate) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address], int]:
    """DNS names, IP addresses, and the number of other names in the subjectAltName extension."""
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], [], 0
    dns = names.get_values_for_type(x509.DNSName)
    ips = names.get_values_for_type(x509.IPAddress)
    return dns, ips, len(names) - len(dns) - len(ips)


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """Colon-separated upper-case hex, as ``openssl x509 -fingerprint -sha256`` prints it."""
    return ":".join(f"{byte:02X}" for byte in cert.fingerprint(hashes.SHA256()))


def serial_hex(cert: x509.Certificate) -> str:
    """Upper-case hex, as ``openssl x509 -serial`` prints it."""
    text = f"{cert.serial_number:X}"
    return text if len(text) % 2 == 0 else "0" + text


def iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(cert: x509.Certificate) -> dict:
    """What the module reports and diffs about a certificate."""
    common_name, organizations = subject_names(cert)
    dns, ips, _others = sans(cert)
    return {
        "common_name": common_name,
        "organizations": organizations,
        "dns_names": dns,
        "ip_addresses": [str(ip) for ip in ips],
        "profile": _profile.name_of(_profile.observed(cert)),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_after": iso(cert.not_valid_after_utc),
    }

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What each profile puts in basicConstraints, keyUsage and extendedKeyUsage.

A profile is described with plain names (``digital_signature``, ``server_auth``) so that the
expected and the observed extensions compare with ``==`` and read well in a diff:

============  ==========  ===================================================  ======================
profile       CA          keyUsage (critical)                                  extendedKeyUsage
============  ==========  ===================================================  ======================
ca            true        key_cert_sign, crl_sign                              (none)
server        false       digital_signature (+ key_encipherment for RSA keys)  server_auth
client        false       digital_signature (+ key_encipherment for RSA keys)  client_auth
peer          false       digital_signature (+ key_encipherment for RSA keys)  server_auth, client_auth
============  ==========  ===================================================  ======================

basicConstraints is always present and critical.
"""

from __future__ import annotations

import dataclasses

try:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID
except ImportError:
    pass  # reported by the module through deps.HAS_CRYPTOGRAPHY

KEY_USAGE_NAMES = (
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
    "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
)
_EKU_NAMES = {"server_auth": "1.3.6.1.5.5.7.3.1", "client_auth": "1.3.6.1.5.5.7.3.2"}
_EKU_BY_OID = {oid: name for name, oid in _EKU_NAMES.items()}
_LEAF_EKUS = {"server": ("server_auth",), "client": ("client_auth",), "peer": ("server_auth", "client_auth")}


@dataclasses.dataclass(frozen=True)
class ProfileExtensions:
    """basicConstraints CA flag, keyUsage and EKU names; None where the extension is absent."""

    ca: bool | None
    key_usage: frozenset[str] | None
    extended_key_usage: frozenset[str] | None

    def as_dict(self) -> dict:
        return {
            "ca": self.ca,
            "key_usage": sorted(self.key_usage) if self.key_usage is not None else None,
            "extended_key_usage": sorted(self.extended_key_usage) if self.extended_key_usage is not None else None,
        }


def expected(profile: str, key_type: str) -> ProfileExtensions:
    """The extensions a certificate of this profile and key type must carry."""
    if profile == "ca":
        return ProfileExtensions(True, frozenset(("key_cert_sign", "crl_sign")), None)
    usages = {"digital_signature"}
    if key_type == "rsa":
        usages.add("key_encipherment")
    return ProfileExtensions(False, frozenset(usages), frozenset(_LEAF_EKUS[profile]))


def observed(cert: x509.Certificate) -> ProfileExtensions:
    """The profile extensions a certificate carries."""
    try:
        ca: bool | None = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        ca = None
    try:
        key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        agreement = key_usage.key_agreement
        usages: frozenset[str] | None = frozenset(
            name for name in KEY_USAGE_NAMES
            if (agreement or name not in ("encipher_only", "decipher_only")) and getattr(key_usage, name)
        )
    except x509.ExtensionNotFound:
        usages = None
    try:
        ekus = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        eku_names: frozenset[str] | None = frozenset(_EKU_BY_OID.get(oid.dotted_string, oid.dotted_string) for oid in ekus)
    except x509.ExtensionNotFound:
        eku_names = None
    return ProfileExtensions(ca, usages, eku_names)


def name_of(extensions: ProfileExtensions) -> str:
    """The profile a certificate's extensions correspond to, or ``custom``."""
    for profile in ("ca", "server", "client", "peer"):
        if extensions in (expected(profile, "ecdsa"), expected(profile, "rsa")):
            return profile
    return "custom"


def to_x509(extensions: ProfileExtensions) -> list[tuple[x509.ExtensionType, bool]]:
    """The cryptography extension objects and their criticality, for a certificate builder."""
    result: list[tuple[x509.ExtensionType, bool]] = [(x509.BasicConstraints(ca=bool(extensions.ca), path_length=None), True)]
    if extensions.key_usage is not None:
        flags = {name: name in extensions.key_usage for name in KEY_USAGE_NAMES}
        result.append((x509.KeyUsage(**flags), True))
    if extensions.extended_key_usage:
        oids = {"server_auth": ExtendedKeyUsageOID.SERVER_AUTH, "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH}
        result.append((x509.ExtendedKeyUsage([oids[name] for name in sorted(extensions.extended_key_usage)]), False))
    return result

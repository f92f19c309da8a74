# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Why a certificate must be (re-)issued: a pure function of what is asked and what exists.

The reasons are stable strings, reported in this order:

``forced``            force is set
``missing``           there is no certificate at path
``invalid``           the file at path is not a PEM certificate
``key_missing``       there is no private key at privatekey_path (a new key is generated)
``key_type_changed``  the key is not of the asked key_type/key_size (a new key is generated)
``key_mismatch``      the certificate is not the key's certificate
``ca_mismatch``       the certificate is not signed by the given CA (self-signed, for a self-signed CA)
``subject_changed``   common name or organizations differ (order does not matter)
``sans_changed``      DNS names or IP addresses differ (order and DNS case do not matter)
``profile_changed``   basicConstraints, keyUsage or extendedKeyUsage differ from the profile's
``expiring``          the certificate expires within renew_before_days
"""

from __future__ import annotations

import datetime

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import inspect as _inspect
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import profile as _profile
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.spec import CertSpec

REASONS = (
    "forced", "missing", "invalid", "key_missing", "key_type_changed", "key_mismatch", "ca_mismatch",
    "subject_changed", "sans_changed", "profile_changed", "expiring",
)


def key_reasons(spec: CertSpec, key) -> list[str]:
    """``key_missing`` or ``key_type_changed`` when a new key must be generated, else nothing."""
    if key is None:
        return ["key_missing"]
    if _inspect.key_kind(key) != (spec.key_type, spec.key_size):
        return ["key_type_changed"]
    return []


def reissue_reasons(spec: CertSpec, cert, cert_invalid: bool, key, issuer_cert, now: datetime.datetime) -> list[str]:
    """Every reason to (re-)issue the certificate; an empty list keeps it.

    ``cert`` is the current certificate or None (``cert_invalid`` tells a corrupt file from a
    missing one); ``key`` the current private key or None; ``issuer_cert`` the CA certificate, or
    None for a self-signed CA.
    """
    reasons = ["forced"] if spec.force else []
    if cert is None:
        reasons.append("invalid" if cert_invalid else "missing")
    new_key = key_reasons(spec, key)
    reasons.extend(new_key)
    if cert is None:
        return reasons

    if not new_key and not _inspect.key_matches_certificate(key, cert):
        reasons.append("key_mismatch")
    if not _inspect.issued_by(cert, issuer_cert if issuer_cert is not None else cert):
        reasons.append("ca_mismatch")
    if _inspect.subject_attributes(cert) != _inspect.expected_subject_attributes(spec.common_name, spec.organizations):
        reasons.append("subject_changed")
    dns, ips, others = _inspect.sans(cert)
    if others or {name.lower() for name in dns} != {name.lower() for name in spec.dns_names} or set(ips) != set(spec.ip_addresses):
        reasons.append("sans_changed")
    if _profile.observed(cert) != _profile.expected(spec.profile, spec.key_type):
        reasons.append("profile_changed")
    if cert.not_valid_after_utc - now <= datetime.timedelta(days=spec.renew_before_days):
        reasons.append("expiring")
    return reasons

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The desired certificate (``CertSpec``) and the validation of the options that describe it.

Validation collects every problem of an entry, and of every entry of a batch, before raising, so
the operator fixes them all in one go. Nothing here touches the file system or cryptography.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.errors import PkiError

PROFILES = ("ca", "server", "client", "peer")
KEY_TYPES = ("ecdsa", "rsa")
ECDSA_KEY_SIZES = (256, 384, 521)
RSA_MIN_KEY_SIZE = 2048
DEFAULT_KEY_TYPE = "ecdsa"
DEFAULT_KEY_SIZES = {"ecdsa": 256, "rsa": 2048}
DEFAULT_RENEW_BEFORE_DAYS = 30
DEFAULT_MODE = "0644"
KEY_MODE = 0o600
MAX_NAME_LENGTH = 64  # ub-common-name / ub-organization-name of RFC 5280

# Options that describe one certificate; in the batch form each entry of ``certificates`` has them.
CERT_OPTIONS = (
    "path", "privatekey_path", "ca_cert", "ca_key", "common_name", "organizations", "dns_names", "ip_addresses",
    "profile", "key_type", "key_size", "valid_days", "renew_before_days", "owner", "group", "mode", "force",
)
# Options that may be given at the top level of the batch form as defaults for every entry.
BATCH_DEFAULT_OPTIONS = ("ca_cert", "ca_key", "key_type", "key_size", "valid_days", "renew_before_days", "owner", "group", "mode", "force")
# Options that only make sense per certificate (mutually exclusive with ``certificates``).
PER_CERT_ONLY_OPTIONS = tuple(name for name in CERT_OPTIONS if name not in BATCH_DEFAULT_OPTIONS)
REQUIRED_OPTIONS = ("path", "privatekey_path", "common_name", "profile")

_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$", re.IGNORECASE)
_OCTAL_MODE = re.compile(r"^0?[0-7]{3}$")


@dataclasses.dataclass(frozen=True)
class CertSpec:
    """One certificate as asked for: validated and normalised (absolute paths, IP objects, octal mode)."""

    path: str
    privatekey_path: str
    common_name: str
    profile: str
    # No default: the caller (the pki role's pki_ca_valid_days / pki_cert_valid_days) always says.
    valid_days: int
    organizations: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = ()
    ca_cert: str | None = None
    ca_key: str | None = None
    key_type: str = DEFAULT_KEY_TYPE
    key_size: int = DEFAULT_KEY_SIZES[DEFAULT_KEY_TYPE]
    renew_before_days: int = DEFAULT_RENEW_BEFORE_DAYS
    owner: str | None = None
    group: str | None = None
    mode: int = int(DEFAULT_MODE, 8)
    force: bool = False

    @property
    def self_signed(self) -> bool:
        """A self-signed CA: profile ``ca`` without ``ca_cert``."""
        return self.ca_cert is None


def validate_dns_name(name: object) -> str | None:
    """The problem with a DNS name for a SAN, or None. Wildcards (``*.example.com``) are allowed."""
    if not isinstance(name, str) or not name:
        return f"{name!r} is not a DNS name"
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return f"{name!r} is an IP address: list it in ip_addresses (clients never match an IP against a DNS SAN)"
    if not name.isascii():
        return f"{name!r} is not ASCII: give internationalised names in their xn-- (IDNA) form"
    if len(name) > 253:
        return f"{name[:40]!r}... is longer than 253 characters"
    labels = name.split(".")
    if labels[0] == "*" and len(labels) > 1:
        labels = labels[1:]
    bad = [label for label in labels if not _DNS_LABEL.match(label)]
    if bad:
        return f"{name!r} is not a valid DNS name (bad label {bad[0]!r})"
    return None


def parse_ip(value: object) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address | None, str | None]:
    """``(address, None)`` or ``(None, problem)``."""
    text = str(value).strip()
    try:
        return ipaddress.ip_address(text), None
    except ValueError:
        pass
    if "/" in text:
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            pass
        else:
            return None, f"{value!r} is a network, not an IP address"
    return None, f"{value!r} is not an IP address"


def parse_mode(value: object) -> tuple[int | None, str | None]:
    """``(mode, None)`` or ``(None, problem)``. Strings are octal (``'0644'``); an int is taken as is
    (YAML reads an unquoted 0644 as the int 420)."""
    if isinstance(value, bool):
        return None, f"mode {value!r} is not an octal mode such as '0644'"
    if isinstance(value, int):
        if 0 <= value <= 0o777:
            return value, None
        return None, f"mode {value} is not a permission mode (quote octal modes: '0644')"
    if isinstance(value, str) and _OCTAL_MODE.match(value):
        return int(value, 8), None
    return None, f"mode {value!r} is not an octal mode such as '0644' (symbolic modes are not supported)"


def _str_list(name: str, value: object, problems: list[str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        problems.append(f"{name} must be a list")
        return []
    return list(value)


def _dedupe(values, key=lambda value: value) -> tuple:
    seen = set()
    kept = []
    for value in values:
        if key(value) not in seen:
            seen.add(key(value))
            kept.append(value)
    return tuple(kept)


def _int_option(options: Mapping, name: str, default: int | None, minimum: int, problems: list[str]) -> int | None:
    value = options.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"{name} must be an integer, got {value!r}")
        return default
    if value < minimum:
        problems.append(f"{name} must be at least {minimum}, got {value}")
        return default
    return value


def _path(value: str | None) -> str | None:
    return os.path.abspath(os.path.expanduser(value)) if value else None


def key_kind(options: Mapping, problems: list[str]) -> tuple[str, int]:
    """The key_type and key_size of ``options`` (defaults where missing); problems are appended."""
    key_type = options.get("key_type") or DEFAULT_KEY_TYPE
    key_size = options.get("key_size")
    if key_type not in KEY_TYPES:
        problems.append(f"unknown key_type {key_type!r} (choose one of: {', '.join(KEY_TYPES)})")
        key_type = DEFAULT_KEY_TYPE
    if key_size is None:
        key_size = DEFAULT_KEY_SIZES[key_type]
    elif key_type == "ecdsa" and key_size not in ECDSA_KEY_SIZES:
        problems.append(f"key_size {key_size} is not an ECDSA curve size (choose one of: {', '.join(map(str, ECDSA_KEY_SIZES))})")
    elif key_type == "rsa" and (not isinstance(key_size, int) or key_size < RSA_MIN_KEY_SIZE):
        problems.append(f"key_size {key_size} is too small for RSA (at least {RSA_MIN_KEY_SIZE})")
    return key_type, key_size


def spec_from_options(options: Mapping) -> CertSpec:
    """Validate the options of one certificate (missing keys take their defaults).

    Raises ``PkiError`` whose ``errors`` lists every problem of this certificate.
    """
    problems: list[str] = []
    for name in REQUIRED_OPTIONS:
        if not options.get(name):
            problems.append(f"{name} is required")

    profile = options.get("profile")
    known_profile = profile in PROFILES  # checks that depend on the profile are skipped for an unknown one
    if profile and not known_profile:
        problems.append(f"unknown profile {profile!r} (choose one of: {', '.join(PROFILES)})")

    common_name = options.get("common_name") or ""
    if len(common_name) > MAX_NAME_LENGTH:
        problems.append(f"common_name {common_name[:20]!r}... is longer than {MAX_NAME_LENGTH} characters")
    organizations = _str_list("organizations", options.get("organizations"), problems)
    for org in organizations:
        if not isinstance(org, str) or not org or len(org) > MAX_NAME_LENGTH:
            problems.append(f"organizations: {org!r} must be a non-empty string of at most {MAX_NAME_LENGTH} characters")

    dns_names = _str_list("dns_names", options.get("dns_names"), problems)
    problems.extend(f"dns_names: {problem}" for problem in map(validate_dns_name, dns_names) if problem)
    ip_values = _str_list("ip_addresses", options.get("ip_addresses"), problems)
    ips = []
    for value in ip_values:
        address, problem = parse_ip(value)
        if problem:
            problems.append(f"ip_addresses: {problem}")
        else:
            ips.append(address)
    if profile in ("server", "peer") and not dns_names and not ip_values:
        problems.append(f"a {profile} certificate needs dns_names or ip_addresses (TLS clients ignore the common name)")

    key_type, key_size = key_kind(options, problems)

    if options.get("valid_days") is None:
        problems.append("valid_days is required: how many days a new certificate is valid")
    valid_days = _int_option(options, "valid_days", None, 1, problems)
    renew_before_days = _int_option(options, "renew_before_days", DEFAULT_RENEW_BEFORE_DAYS, 0, problems)
    if valid_days is not None and renew_before_days >= valid_days:
        problems.append(f"renew_before_days ({renew_before_days}) must be less than valid_days ({valid_days}), "
                        "or every run would re-issue the certificate")

    mode, problem = parse_mode(options.get("mode") if options.get("mode") is not None else DEFAULT_MODE)
    if problem:
        problems.append(problem)

    path, key_path = _path(options.get("path")), _path(options.get("privatekey_path"))
    ca_cert, ca_key = _path(options.get("ca_cert")), _path(options.get("ca_key"))
    if bool(ca_cert) != bool(ca_key):
        problems.append("ca_cert and ca_key must be given together")
    elif not ca_cert and known_profile and profile != "ca":
        problems.append(f"ca_cert and ca_key are required for profile {profile} (only a ca can be self-signed)")
    if path and path == key_path:
        problems.append("path and privatekey_path must differ")
    if path and path in (ca_cert, ca_key) or key_path and key_path in (ca_cert, ca_key):
        problems.append("a certificate cannot be signed by itself: drop ca_cert/ca_key for a self-signed ca")

    if problems:
        raise PkiError("; ".join(problems), problems)
    return CertSpec(
        path=path, privatekey_path=key_path, common_name=common_name, profile=profile,
        organizations=_dedupe(organizations), dns_names=_dedupe(dns_names, key=str.lower), ip_addresses=_dedupe(ips),
        ca_cert=ca_cert, ca_key=ca_key, key_type=key_type, key_size=key_size,
        valid_days=valid_days, renew_before_days=renew_before_days,
        owner=options.get("owner"), group=options.get("group"), mode=mode, force=bool(options.get("force")),
    )


def entry_options(defaults: Mapping, entry: Mapping) -> dict:
    """The options of one batch entry: its own values, else the top-level ones.

    An entry with profile ``ca`` does not inherit the top-level ``ca_cert``/``ca_key``: it is a
    self-signed CA unless it names its own issuer.
    """
    merged = {name: entry.get(name) for name in CERT_OPTIONS}
    for name in BATCH_DEFAULT_OPTIONS:
        if merged[name] is None and not (name in ("ca_cert", "ca_key") and entry.get("profile") == "ca"):
            merged[name] = defaults.get(name)
    return merged


def entry_label(index: int, entry: Mapping) -> str:
    return f"certificates[{index}] ({entry.get('path') or 'no path'})"


def specs_from_params(params: Mapping) -> list[CertSpec]:
    """Every certificate the module's parameters ask for: one, or each entry of ``certificates``.

    Raises ``PkiError`` listing every problem of every entry, prefixed with the entry's index and path.
    """
    entries = params.get("certificates")
    if entries is None:
        return [spec_from_options(params)]
    given = [name for name in PER_CERT_ONLY_OPTIONS if params.get(name)]
    if given:
        raise PkiError(f"{', '.join(given)} cannot be combined with certificates: give them in each entry")
    specs: list[CertSpec] = []
    problems: list[str] = []
    for index, entry in enumerate(entries):
        try:
            specs.append(spec_from_options(entry_options(params, entry)))
        except PkiError as exc:
            problems.extend(f"{entry_label(index, entry)}: {problem}" for problem in exc.errors)
    if not problems:
        cert_paths: dict[str, int] = {}
        key_paths: dict[str, int] = {}
        for index, spec in enumerate(specs):
            other = cert_paths.get(spec.path, key_paths.get(spec.path))
            if other is None:
                other = cert_paths.get(spec.privatekey_path)
            if other is not None:
                problems.append(f"{entry_label(index, entries[index])}: its files are also written by certificates[{other}]")
            cert_paths.setdefault(spec.path, index)
            key_paths.setdefault(spec.privatekey_path, index)
    if problems:
        raise PkiError(f"{len(problems)} problem(s) in certificates: " + "; ".join(problems), problems)
    return specs


@dataclasses.dataclass(frozen=True)
class KeySpec:
    """A private key kept without a certificate (the service-account signing key)."""

    path: str
    key_type: str
    key_size: int


def key_specs_from_params(params: Mapping, specs: list[CertSpec]) -> list[KeySpec]:
    """The ``private_keys`` entries, checked (every problem at once); none may be a file of ``specs``."""
    entries = params.get("private_keys") or []
    if entries and params.get("certificates") is None:
        raise PkiError("private_keys is taken with the batch form (certificates) only")
    taken = {path for spec in specs for path in (spec.path, spec.privatekey_path)}
    keys: list[KeySpec] = []
    problems: list[str] = []
    for index, entry in enumerate(entries):
        label = f"private_keys[{index}] ({entry.get('path') or 'no path'})"
        found: list[str] = []
        key_type, key_size = key_kind(entry, found)
        path = _path(entry.get("path"))
        if not path:
            found.append("path is required")
        elif path in taken:
            found.append("it is also a file of certificates")
        taken.add(path)
        problems.extend(f"{label}: {problem}" for problem in found)
        if not found:
            keys.append(KeySpec(path, key_type, key_size))
    if problems:
        raise PkiError(f"{len(problems)} problem(s) in private_keys: " + "; ".join(problems), problems)
    return keys

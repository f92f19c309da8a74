# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Reading the certificates a host holds, for the x509_info module (cert_report playbook).

Runs on the hosts, which need not have the Python ``cryptography`` library: each certificate is
described by the ``openssl x509`` command, whose output is parsed by the pure functions below.
Certificates are found in PEM files (every CERTIFICATE block) and in kubeconfigs (their
base64-encoded ``certificate-authority-data`` and ``client-certificate-data``); private keys are
never read into the result.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
import os
import re

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.errors import PkiError

OPENSSL_X509_ARGS = (
    "x509", "-noout", "-subject", "-issuer", "-serial", "-startdate", "-enddate", "-fingerprint", "-sha256",
    "-nameopt", "RFC2253", "-ext", "subjectAltName,basicConstraints",
)
# Files a directory is scanned for (not recursively); backups (*.bak) and keys are left out.
CERT_SUFFIXES = (".crt", ".pem", ".kubeconfig", ".conf")

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----", re.DOTALL)
_KUBECONFIG_DATA = re.compile(rb"^\s*(certificate-authority-data|client-certificate-data):\s*['\"]?([A-Za-z0-9+/=]+)['\"]?\s*$", re.MULTILINE)
_MONTHS = {name: number for number, name in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_SOURCE_OF = {b"certificate-authority-data": "kubeconfig cluster CA", b"client-certificate-data": "kubeconfig client"}


def pem_certificates(data: bytes) -> list[tuple[str, bytes]]:
    """(source, PEM) of every certificate in a PEM file or a kubeconfig, in file order.

    The source is ``file`` for a PEM block, else which kubeconfig field embedded it.
    """
    found = [("file", match.group(0) + b"\n") for match in _PEM_CERT.finditer(data)]
    for match in _KUBECONFIG_DATA.finditer(data):
        try:
            decoded = base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            continue
        found.extend((_SOURCE_OF[match.group(1)], block.group(0) + b"\n") for block in _PEM_CERT.finditer(decoded))
    return found


def parse_openssl_date(text: str) -> datetime.datetime:
    """``Mar  1 12:00:00 2027 GMT`` (openssl's format, in English whatever the locale) as UTC."""
    parts = text.split()
    if len(parts) != 5 or parts[0] not in _MONTHS or parts[4] != "GMT":
        raise PkiError(f"unexpected date from openssl: {text!r}")
    hour, minute, second = (int(value) for value in parts[2].split(":"))
    return datetime.datetime(int(parts[3]), _MONTHS[parts[0]], int(parts[1]), hour, minute, second, tzinfo=datetime.timezone.utc)


def _ip_text(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return value.strip()


def parse_x509_text(text: str) -> dict:
    """The fields of ``openssl x509 <OPENSSL_X509_ARGS>`` output (OpenSSL 1.1.1 and 3.x).

    Returns subject, issuer (RFC 2253), serial, not_before, not_after (datetimes), fingerprint_sha256,
    dns_names, ip_addresses, is_ca.
    """
    info: dict = {"dns_names": [], "ip_addresses": [], "is_ca": False}
    section = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line[0].isspace():
            value = line.strip()
            if section == "san":
                for name in value.split(", "):
                    kind, _sep, rest = name.partition(":")
                    if kind == "DNS":
                        info["dns_names"].append(rest)
                    elif kind in ("IP Address", "IP"):
                        info["ip_addresses"].append(_ip_text(rest))
            elif section == "basic":
                info["is_ca"] = "CA:TRUE" in value.replace(" ", "")
            continue
        section = None
        key, sep, value = line.partition("=")
        lowered = key.strip().lower()
        if line.startswith("X509v3 Subject Alternative Name"):
            section = "san"
        elif line.startswith("X509v3 Basic Constraints"):
            section = "basic"
        elif sep and lowered == "subject":
            info["subject"] = value.strip()
        elif sep and lowered == "issuer":
            info["issuer"] = value.strip()
        elif sep and lowered == "serial":
            info["serial"] = value.strip().upper()
        elif sep and lowered == "notbefore":
            info["not_before"] = parse_openssl_date(value)
        elif sep and lowered == "notafter":
            info["not_after"] = parse_openssl_date(value)
        elif sep and lowered == "sha256 fingerprint":
            info["fingerprint_sha256"] = value.strip().upper()
    missing = [name for name in ("subject", "issuer", "not_after") if name not in info]
    if missing:
        raise PkiError(f"openssl output lacks {', '.join(missing)}")
    return info


def days_left(not_after: datetime.datetime, now: datetime.datetime) -> int:
    """Whole days until expiry, rounded down; negative once expired."""
    return (not_after - now) // datetime.timedelta(days=1)


def iso(moment: datetime.datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def expand_paths(paths: list[str]) -> tuple[list[str], list[str]]:
    """(files to read, given paths that do not exist). A directory gives its certificate-like files, sorted."""
    files: list[str] = []
    missing: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                full = os.path.join(path, name)
                if name.endswith(CERT_SUFFIXES) and os.path.isfile(full) and full not in files:
                    files.append(full)
        elif os.path.isfile(path):
            if path not in files:
                files.append(path)
        else:
            missing.append(path)
    return files, missing


class X509InfoBackend:
    """Describes every certificate in ``paths``; ``openssl(pem) -> (rc, stdout, stderr)`` runs the command."""

    def __init__(self, paths: list[str], openssl, now: datetime.datetime | None = None) -> None:
        self.paths = [os.path.normpath(path) for path in paths]
        self.openssl = openssl
        self.now = now or datetime.datetime.now(datetime.timezone.utc)

    def run(self) -> dict:
        files, missing = expand_paths(self.paths)
        certificates = []
        for path in files:
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError as exc:
                certificates.append({"path": path, "source": "file", "error": f"cannot read: {exc.strerror}"})
                continue
            for source, pem in pem_certificates(data):
                certificates.append(self._describe(path, source, pem))
        return {"changed": False, "certificates": certificates, "missing": missing}

    def _describe(self, path: str, source: str, pem: bytes) -> dict:
        rc, out, err = self.openssl(pem)
        if rc != 0:
            return {"path": path, "source": source, "error": (err or out).strip() or f"openssl exited with {rc}"}
        try:
            info = parse_x509_text(out)
        except PkiError as exc:
            return {"path": path, "source": source, "error": str(exc)}
        return {
            "path": path,
            "source": source,
            "subject": info["subject"],
            "issuer": info["issuer"],
            "serial": info.get("serial"),
            "fingerprint_sha256": info.get("fingerprint_sha256"),
            "not_before": iso(info.get("not_before")),
            "not_after": iso(info["not_after"]),
            "days_left": days_left(info["not_after"], self.now),
            "dns_names": info["dns_names"],
            "ip_addresses": info["ip_addresses"],
            "is_ca": info["is_ca"],
            "self_signed": info["subject"] == info["issuer"],
        }

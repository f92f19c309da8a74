# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A cluster's trust anchors, as the hosts hold them and as the controller holds them, and whether they agree.

The trust of a cluster is its three CAs (cluster, front proxy, etcd), its service-account key pair
and its encryption-at-rest keys. The controller keeps them in its credentials directory and the pki
and control_plane phases push them to the hosts. A controller without them (a new laptop, a fresh CI
runner, a deleted directory) would mint new ones and push those: every Secret unreadable, every
certificate and service-account token rejected. So the preflight play reads what the control-plane
and etcd hosts hold (the trust_anchor_info module, one call per host, this file's backend) and
``compare`` refuses the run when they hold material the controller lacks or that differs from it.

Host side, standard library only (hosts need no Python crypto library): a fingerprint is the SHA-256
of the DER bytes inside the PEM block, which is what ``openssl x509 -fingerprint -sha256`` prints
for a certificate; for the service-account public key, of its SubjectPublicKeyInfo. Encryption keys
are reported by name; their secrets, and every file's content, only with ``include_content``
(recover_credentials.yml, whose task is no_log).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Mapping

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.errors import PkiError

try:
    from ansible.module_utils.common.yaml import HAS_YAML, yaml_load
except ImportError:  # pragma: no cover - ansible-core always has the module; PyYAML may be missing
    HAS_YAML = False

# The escape hatch: set only on the command line (-e), for a cluster being rebuilt on purpose.
REINITIALISE_VAR = "kubeforge_reinitialise_cluster_trust_i_understand_all_secrets_become_unreadable"
RECOVER_PLAYBOOK = "playbooks/recover_credentials.yml"

# The host layout (plugins/filter/pki.py and roles/control_plane/vars/main.yml write it;
# tests/unit/plugins/module_utils/_pki/test_trust.py checks that they agree with these).
KUBE_DIR = "/etc/kubernetes"
KUBE_PKI_DIR = "/etc/kubernetes/pki"
ETCD_PKI_DIR = "/etc/etcd/pki"
ENCRYPTION_CONFIG = "/etc/kubernetes/encryption-config.yaml"
ETCD_INITIAL_ENV = "/etc/etcd/etcd-initial.env"
# The etcd role's default etcd_data_dir, and the marker a restore leaves there (module_utils/_etcd/snapshot.py).
DEFAULT_ETCD_DATA_DIR = "/var/lib/etcd"
RESTORE_MARKER = "kubeforge-restore.json"
# In the controller's credentials directory.
CONTROLLER_ENCRYPTION_KEYS = "encryption-keys.json"
# What recover_credentials.yml reads back: (directory, file suffixes), not recursively.
CONTENT_DIRS = ((KUBE_PKI_DIR, (".crt", ".key", ".pub")), (KUBE_DIR, (".kubeconfig",)), (ETCD_PKI_DIR, (".crt", ".key")))


@dataclasses.dataclass(frozen=True)
class Anchor:
    """One trust anchor: where the hosts hold it and where the controller does."""

    name: str
    label: str
    host_paths: tuple
    controller_path: str  # relative to the credentials directory
    pem_label: str  # CERTIFICATE or PUBLIC KEY


ANCHORS = (
    Anchor("cluster-ca", "cluster CA", (f"{KUBE_PKI_DIR}/ca.crt",), "pki/ca.crt", "CERTIFICATE"),
    Anchor("front-proxy-ca", "front-proxy CA", (f"{KUBE_PKI_DIR}/front-proxy-ca.crt",), "pki/front-proxy-ca.crt", "CERTIFICATE"),
    Anchor("etcd-ca", "etcd CA", (f"{ETCD_PKI_DIR}/ca.crt", f"{KUBE_PKI_DIR}/etcd-ca.crt"), "pki/etcd/ca.crt", "CERTIFICATE"),
    Anchor("service-account-key", "service-account key", (f"{KUBE_PKI_DIR}/sa.pub",), "pki/sa.pub", "PUBLIC KEY"),
)
ANCHOR_BY_NAME = {anchor.name: anchor for anchor in ANCHORS}

# The rendered EncryptionConfiguration (to_nice_yaml) when PyYAML is missing: every "name:" with the
# "secret:" after it, in file order.
_KEY_ITEM = re.compile(r"^\s*(?:-\s+)?name:\s*['\"]?([^'\"\s]+)['\"]?\s*\n\s*secret:\s*['\"]?([^'\"\s]+)['\"]?\s*$", re.MULTILINE)


class TrustError(PkiError):
    """A file that should hold a trust anchor but cannot be read as one."""


# --------------------------------------------------------------------------- pure parts

def pem_der(text: str, label: str) -> bytes:
    """The DER bytes of the first ``-----BEGIN <label>-----`` block of ``text``."""
    match = re.search(rf"-----BEGIN {label}-----\s*(.*?)\s*-----END {label}-----", text, re.DOTALL)
    if not match:
        raise TrustError(f"no PEM {label} block")
    try:
        return base64.b64decode("".join(match.group(1).split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TrustError(f"the PEM {label} block is not base64: {exc}") from exc


def fingerprint(der: bytes) -> str:
    """SHA-256, colon-separated upper-case hex (openssl's -fingerprint -sha256 format)."""
    return ":".join(f"{byte:02X}" for byte in hashlib.sha256(der).digest())


def anchor_fingerprint(text: str, anchor: Anchor) -> str:
    return fingerprint(pem_der(text, anchor.pem_label))


def encryption_keys_from_config(text: str) -> list:
    """[{name, secret}] of every provider key in an EncryptionConfiguration, in order, each name once."""
    found: list = []
    if HAS_YAML:
        try:
            doc = yaml_load(text)
        except Exception as exc:  # pylint: disable=broad-except  # any YAML error means the same thing here
            raise TrustError(f"not YAML: {exc}") from exc
        if not isinstance(doc, dict):
            raise TrustError("not an EncryptionConfiguration")
        providers = [provider for resource in doc.get("resources") or [] if isinstance(resource, dict)
                     for provider in resource.get("providers") or [] if isinstance(provider, dict)]
        for settings in (settings for provider in providers for settings in provider.values() if isinstance(settings, dict)):
            found.extend({"name": str(key["name"]), "secret": str(key.get("secret", ""))}
                         for key in settings.get("keys") or [] if isinstance(key, dict) and key.get("name"))
    else:
        found = [{"name": name, "secret": secret} for name, secret in _KEY_ITEM.findall(text)]
    keys, secrets = [], {}
    for key in found:
        if key["name"] in secrets:
            if secrets[key["name"]] != key["secret"]:
                raise TrustError(f"key {key['name']} appears twice with different secrets")
            continue
        secrets[key["name"]] = key["secret"]
        keys.append(key)
    return keys


def controller_key_names(data) -> list:
    """Key names of the controller's encryption key file: its keys, then its retired keys."""
    if not isinstance(data, dict):
        raise TrustError("not a mapping with keys")
    names = []
    for part in ("keys", "retired"):
        for key in data.get(part) or []:
            if isinstance(key, dict) and key.get("name") and key["name"] not in names:
                names.append(str(key["name"]))
    return names


# --------------------------------------------------------------------------- reading

def _read_text(path: str) -> str | None:
    """The file's text; None when it does not exist. Raises TrustError when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustError(f"cannot read: {getattr(exc, 'strerror', None) or exc}") from exc


class TrustAnchorInfoBackend:
    """What one host holds: its anchors' fingerprints and its encryption key names (and contents, when asked).

    ``root`` prefixes every path (tests use a temporary directory).
    """

    def __init__(self, include_content: bool = False, etcd_data_dir: str = DEFAULT_ETCD_DATA_DIR, root: str = "/") -> None:
        self.include_content = include_content
        self.etcd_data_dir = etcd_data_dir
        self.root = root

    def _path(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def run(self) -> dict:
        anchors, errors = [], []
        for anchor in ANCHORS:
            for path in anchor.host_paths:
                try:
                    text = _read_text(self._path(path))
                    if text is not None:
                        anchors.append({"anchor": anchor.name, "path": path, "fingerprint_sha256": anchor_fingerprint(text, anchor)})
                except TrustError as exc:
                    errors.append(f"{path}: {exc}")
        keys: list = []
        try:
            text = _read_text(self._path(ENCRYPTION_CONFIG))
            if text is not None:
                keys = encryption_keys_from_config(text)
        except TrustError as exc:
            errors.append(f"{ENCRYPTION_CONFIG}: {exc}")
        result = {"changed": False, "anchors": anchors, "encryption_key_names": [key["name"] for key in keys], "errors": errors}
        if self.include_content:
            result.update(self._contents(errors))
            result["encryption_keys"] = keys
        return result

    def _contents(self, errors: list) -> dict:
        files = {}
        for directory, suffixes in CONTENT_DIRS:
            local = self._path(directory)
            if not os.path.isdir(local):
                continue
            for name in sorted(os.listdir(local)):
                if name.endswith(suffixes) and os.path.isfile(os.path.join(local, name)):
                    try:
                        files[f"{directory}/{name}"] = _read_text(os.path.join(local, name))
                    except TrustError as exc:
                        errors.append(f"{directory}/{name}: {exc}")
        etcd = {}
        marker = os.path.join(self.etcd_data_dir, RESTORE_MARKER)
        for name, path in (("etcd_initial_env", ETCD_INITIAL_ENV), ("etcd_restore_marker", marker)):
            try:
                etcd[name] = _read_text(self._path(path))
            except TrustError as exc:
                errors.append(f"{path}: {exc}")
        return {"files": {path: text for path, text in files.items() if text is not None}, **etcd}


def read_controller(credentials_dir: str) -> dict:
    """The controller's side: {anchors: {name: fingerprint}, encryption_key_names: [...] or None, errors}."""
    anchors, errors = {}, []
    for anchor in ANCHORS:
        path = os.path.join(credentials_dir, anchor.controller_path)
        try:
            text = _read_text(path)
            if text is not None:
                anchors[anchor.name] = anchor_fingerprint(text, anchor)
        except TrustError as exc:
            errors.append(f"{path}: {exc}")
    names = None
    path = os.path.join(credentials_dir, CONTROLLER_ENCRYPTION_KEYS)
    try:
        text = _read_text(path)
        if text is not None:
            names = controller_key_names(json.loads(text))
    except (TrustError, ValueError) as exc:
        errors.append(f"{path}: {exc}")
    return {"anchors": anchors, "encryption_key_names": names, "errors": errors}


# --------------------------------------------------------------------------- the comparison

def answered(report) -> dict | None:
    """A host's registered trust_anchor_info result; None when the host did not answer (failed, skipped, unreachable)."""
    if not isinstance(report, Mapping) or report.get("failed") or report.get("skipped") or report.get("unreachable"):
        return None
    return dict(report) if "anchors" in report else None


def cluster_hosts(groups: Mapping, names=("kube_control_plane", "etcd")) -> list:
    """The hosts of these inventory groups, each once, in group order."""
    hosts: list = []
    for name in names:
        hosts += [host for host in groups.get(name) or [] if host not in hosts]
    return hosts


@dataclasses.dataclass
class Verdict:
    """What the guard found: ``problems`` stop the run (unless re-initialising); whether the hosts disagree among themselves."""

    problems: list
    hosts_disagree: bool

    @property
    def passed(self) -> bool:
        return not self.problems


def _hosts_text(hosts) -> str:
    return ", ".join(sorted(hosts))


def _where(host: str, path: str, anchor: Anchor) -> str:
    # An anchor a host can hold at two paths (the etcd CA): say which one.
    return f"{host}:{path}" if len(anchor.host_paths) > 1 else host


def compare(controller: dict, reports: dict, expected_hosts, credentials_dir: str) -> Verdict:
    """Whether the controller's credentials are the ones the hosts hold.

    ``controller`` is read_controller's result; ``reports`` maps each host the guard asked to its
    trust_anchor_info result, or None when it did not answer; ``expected_hosts`` are every
    control-plane and etcd host of the inventory (asked or not: --limit). A host that holds nothing
    is fine (a fresh host, a node being added), and so is a controller whose material no host holds
    yet (a fresh cluster). A host holding an anchor the controller lacks, or a different one, is a
    problem, and so is an encryption key the controller does not have.
    """
    problems: list = []
    disagree = False
    answered = {host: report for host, report in reports.items() if report is not None}
    for host in sorted(answered):
        problems.extend(f"{host}: {error}" for error in answered[host].get("errors") or [])

    for anchor in ANCHORS:
        held: dict = {}
        for host in sorted(answered):
            for entry in answered[host].get("anchors") or []:
                if entry.get("anchor") == anchor.name:
                    held.setdefault(entry["fingerprint_sha256"], []).append(_where(host, entry["path"], anchor))
        mine = controller["anchors"].get(anchor.name)
        foreign = {fp: where for fp, where in held.items() if fp != mine}
        if not foreign:
            continue
        if len(held) > 1:
            disagree = True
        controller_text = (f"the controller has SHA256 {mine}" if mine else "the controller has none") + \
            f" ({os.path.join(credentials_dir, anchor.controller_path)})"
        holders = "; ".join(f"{_hosts_text(where)} hold{'s' if len(where) == 1 else ''} SHA256 {fp}" for fp, where in sorted(held.items()))
        disagreement = "; the hosts do not agree with each other" if len(held) > 1 else ""
        problems.append(f"{anchor.label}: {controller_text}; {holders}{disagreement}")

    mine_keys = controller.get("encryption_key_names")
    unknown: dict = {}
    for host in sorted(answered):
        names = tuple(name for name in answered[host].get("encryption_key_names") or [] if name not in (mine_keys or []))
        if names:
            unknown.setdefault(names, []).append(host)
    key_file = os.path.join(credentials_dir, CONTROLLER_ENCRYPTION_KEYS)
    for names, hosts in sorted(unknown.items()):
        has = f"it has {', '.join(mine_keys)}" if mine_keys else ("it has no key" if mine_keys is not None else "the file does not exist")
        problems.append(f"encryption keys: {_hosts_text(hosts)} hold{'s' if len(hosts) == 1 else ''} {', '.join(names)} in "
                        f"{ENCRYPTION_CONFIG}, which the controller's {key_file} lacks ({has})")
    problems.extend(f"controller: {error}" for error in controller.get("errors") or [])

    lacking = [anchor.label for anchor in ANCHORS if anchor.name not in controller["anchors"]]
    if mine_keys is None:
        lacking.append("encryption keys")
    silent = sorted(set(expected_hosts) - set(answered))
    if lacking and silent:
        problems.append(f"{_hosts_text(silent)} did not answer (unreachable, or left out by --limit) while the controller lacks "
                        f"{', '.join(lacking)}: whether those hosts hold them cannot be told; run again with every "
                        "control-plane and etcd host reachable and in the run")
    return Verdict(problems=problems, hosts_disagree=disagree)


def refusal(verdict: Verdict, credentials_dir: str) -> str:
    """The one message that stops the run: what differs, and the ways out."""
    lines = [f"The controller's credentials directory {credentials_dir} is not, or cannot be shown to be, the one this cluster's "
             "hosts got their CAs and encryption keys from. Going on would replace them on every host (new CAs, a new "
             "encryption key): every Secret would become unreadable and every certificate and service-account token rejected. "
             "Nothing was changed on any host."]
    lines += [f"  - {problem}" for problem in verdict.problems]
    lines.append("Ways out:")
    if verdict.hosts_disagree:
        lines.append("  - the hosts do not agree with each other, so recover_credentials.yml refuses too: find out which hosts hold "
                     "this cluster's material and bring the others in line first;")
    lines.append(f"  - a lost credentials directory or a new controller: ansible-playbook {RECOVER_PLAYBOOK} -i <inventory> rebuilds "
                 "it from the hosts (docs/pki.md, 'Recovering the credentials directory'); or restore it from a backup, or point "
                 "kubeforge_credentials_dir at it;")
    lines.append(f"  - a cluster being rebuilt on purpose: -e {REINITIALISE_VAR}=true replaces what the hosts hold with the "
                 "controller's credentials (new ones where it has none).")
    return "\n".join(lines)


def reinitialise_warning(verdict: Verdict, credentials_dir: str) -> str:
    return (f"{REINITIALISE_VAR} is set: the controller's credentials ({credentials_dir}) replace what the hosts hold. "
            "Every Secret encrypted with the hosts' keys becomes unreadable, and every certificate and service-account token "
            "signed by their CAs is rejected. What differs: " + "; ".join(verdict.problems))


def outcome(verdict: Verdict, credentials_dir: str, reinitialise: bool = False) -> tuple[str, str]:
    """("pass" | "warn" | "refuse", message): the escape hatch turns a refusal into a loud warning."""
    if verdict.passed:
        return "pass", "the controller's credentials match what the control-plane and etcd hosts hold"
    if reinitialise:
        return "warn", reinitialise_warning(verdict, credentials_dir)
    return "refuse", refusal(verdict, credentials_dir)

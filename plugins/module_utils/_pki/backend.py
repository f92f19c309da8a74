# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The x509_cert module's backend: one certificate or a batch, planned in full, then written.

1. ``specs_from_params`` validates every entry (all problems reported at once).
2. ``signing_order`` puts each CA before the entries it signs, so a CA created in the same batch
   signs the later ones.
3. Each entry is planned: read the current certificate and key, decide the reasons, generate a
   key and sign a certificate in memory when needed. Planned certificates and keys shadow the
   files, so that in check mode too a dependent entry sees the CA it would be signed by. Loaded
   CAs are validated once and reused across the batch. Problems of every entry are collected;
   if there are any, nothing is written.
4. Unless in check mode, the keys and certificates are written (old files backed up) and file
   attributes are fixed.
"""

from __future__ import annotations

import dataclasses
import datetime
import heapq
import os

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import files as _files
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import inspect as _inspect
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import issue as _issue
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import profile as _profile
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.decide import key_reasons, reissue_reasons
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.errors import PkiError
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.spec import KEY_MODE, CertSpec, KeySpec, key_specs_from_params, specs_from_params


@dataclasses.dataclass
class Plan:
    """What one certificate needs: the reasons, the new key/certificate (if any), attribute fixes."""

    spec: CertSpec
    reasons: list[str]
    before: object  # the current x509.Certificate, or None
    after: object  # the certificate in place after the run (new or kept)
    key_label: str
    before_key_label: str | None
    uid: int
    gid: int
    key_pem: bytes | None = None
    cert_pem: bytes | None = None
    cert_attribute_changes: dict = dataclasses.field(default_factory=dict)
    key_attribute_changes: dict = dataclasses.field(default_factory=dict)
    backup_file: str | None = None
    privatekey_backup_file: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.key_pem or self.cert_pem or self.cert_attribute_changes or self.key_attribute_changes)


@dataclasses.dataclass
class KeyPlan:
    """A private key kept without a certificate: generated (``key_pem``) or its attributes fixed."""

    spec: KeySpec
    uid: int
    gid: int
    key_pem: bytes | None = None
    key_attribute_changes: dict = dataclasses.field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.key_pem or self.key_attribute_changes)


def signing_order(specs: list[CertSpec], labels: list[str]) -> list[int]:
    """Indices of ``specs`` with every CA before the entries it signs; otherwise the given order."""
    by_cert = {spec.path: index for index, spec in enumerate(specs)}
    by_key = {spec.privatekey_path: index for index, spec in enumerate(specs)}
    dependents: dict[int, list[int]] = {index: [] for index in range(len(specs))}
    waiting = [0] * len(specs)
    for index, spec in enumerate(specs):
        for parent in {by_cert.get(spec.ca_cert), by_key.get(spec.ca_key)} - {None, index}:
            dependents[parent].append(index)
            waiting[index] += 1
    ready = [index for index in range(len(specs)) if not waiting[index]]
    heapq.heapify(ready)
    order = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for child in dependents[index]:
            waiting[child] -= 1
            if not waiting[child]:
                heapq.heappush(ready, child)
    if len(order) != len(specs):
        stuck = [labels[index] for index in range(len(specs)) if waiting[index]]
        raise PkiError(f"these certificates sign each other in a cycle: {', '.join(stuck)}")
    return order


class X509CertBackend:
    """Plans and writes the certificates that the module's parameters describe.

    ``now`` (UTC) can be given for tests; ``diff`` adds before/after to the result.
    """

    def __init__(self, params: dict, check_mode: bool = False, diff: bool = False, now: datetime.datetime | None = None) -> None:
        self.params = params
        self.batch = params.get("certificates") is not None
        self.check_mode = check_mode
        self.diff = diff
        self.now = now or datetime.datetime.now(datetime.timezone.utc)
        self._planned_certs: dict[str, object] = {}
        self._planned_keys: dict[str, object] = {}
        self._authorities: dict[tuple[str, str], object] = {}

    def run(self) -> dict:
        specs = specs_from_params(self.params)
        if self.batch:
            labels = [f"certificates[{index}] ({spec.path})" for index, spec in enumerate(specs)]
        else:
            labels = [specs[0].path]
        keys = key_specs_from_params(self.params, specs)
        order = signing_order(specs, labels)
        plans = self._plan_all(specs, order, labels)
        key_plans = [self._plan_key(key) for key in keys]
        if not self.check_mode:
            self._write_all([plans[index] for index in order])
            self._write_keys(key_plans)
        results = [self._result(plan) for plan in plans]
        if not self.batch:
            result = results[0]
            if self.diff:
                result["diff"] = self._diff(plans[0])
            return result
        key_results = [{"path": plan.spec.path, "created": plan.key_pem is not None, "attributes_changed": bool(plan.key_attribute_changes),
                        "changed": plan.changed} for plan in key_plans]
        result = {"changed": any(plan.changed for plan in plans + key_plans), "results": results, "private_keys": key_results}
        if self.diff:
            result["diff"] = [self._diff(plan) for plan in plans if plan.changed]
        return result

    # -- private keys without a certificate --------------------------------------------------

    def _plan_key(self, spec: KeySpec) -> KeyPlan:
        """A missing key is generated; an existing one is kept whatever its type (never replaced), its attributes fixed."""
        # In check mode, a directory the run would create first (as a check-mode run creates none).
        if not os.path.isdir(os.path.dirname(spec.path)) and not self.check_mode:
            raise PkiError(f"private_keys: directory {os.path.dirname(spec.path)} does not exist")
        plan = KeyPlan(spec, _files.resolve_owner(self.params.get("owner")), _files.resolve_group(self.params.get("group")))
        data = _inspect.read_file(spec.path, "private key")
        if data is None:
            plan.key_pem = _issue.private_key_pem(_issue.generate_private_key(spec.key_type, spec.key_size))
        else:
            _inspect.parse_private_key(data, spec.path)
            plan.key_attribute_changes = _files.attribute_changes(spec.path, KEY_MODE, plan.uid, plan.gid)
        return plan

    def _write_keys(self, plans: list[KeyPlan]) -> None:
        for plan in plans:
            if plan.key_pem:
                _files.write_atomic(plan.spec.path, plan.key_pem, KEY_MODE, plan.uid, plan.gid)
            elif plan.key_attribute_changes:
                _files.apply_attributes(plan.spec.path, KEY_MODE, plan.uid, plan.gid)

    # -- planning --------------------------------------------------------------------------

    def _plan_all(self, specs: list[CertSpec], order: list[int], labels: list[str]) -> list[Plan]:
        plans: list[Plan | None] = [None] * len(specs)
        failed: set[str] = set()
        problems: list[str] = []
        for index in order:
            spec = specs[index]
            try:
                if spec.ca_cert in failed or spec.ca_key in failed:
                    raise PkiError("not signed: its CA, planned in the same batch, has errors")
                plans[index] = self._plan(spec)
            except PkiError as exc:
                failed.update((spec.path, spec.privatekey_path))
                problems.extend(f"{labels[index]}: {problem}" if self.batch else problem for problem in exc.errors)
        if problems:
            if self.batch:
                raise PkiError(f"{len(problems)} problem(s) in certificates, nothing written: " + "; ".join(problems), problems)
            raise PkiError("; ".join(problems), problems)
        return plans

    def _plan(self, spec: CertSpec) -> Plan:
        for directory in sorted({os.path.dirname(spec.path), os.path.dirname(spec.privatekey_path)}):
            if not os.path.isdir(directory) and not self.check_mode:  # in check mode, as _plan_key
                raise PkiError(f"directory {directory} does not exist")
        uid, gid = _files.resolve_owner(spec.owner), _files.resolve_group(spec.group)
        issuer_cert, issuer_key = self._authority(spec.ca_cert, spec.ca_key) if not spec.self_signed else (None, None)

        cert, cert_invalid = self._current_certificate(spec.path)
        key, key_on_disk = self._current_key(spec.privatekey_path)
        reasons = reissue_reasons(spec, cert, cert_invalid, key, issuer_cert, self.now)
        if spec.profile == "ca" and spec.self_signed and cert is not None and key is None:
            return self._plan_keyless_ca(spec, cert, reasons, uid, gid)
        if reasons and issuer_cert is not None and issuer_key is None:
            raise PkiError(f"must be issued ({', '.join(reasons)}) but the key of its CA, {spec.ca_key}, is not here: restore it "
                           "from a backup of the credentials directory (recover_credentials.yml cannot, no host holds it)")

        plan = Plan(spec=spec, reasons=reasons, before=cert, after=cert, key_label="", before_key_label=None, uid=uid, gid=gid)
        if key is not None:
            plan.before_key_label = _inspect.key_label(key)
        if key_reasons(spec, key):
            key = _issue.generate_private_key(spec.key_type, spec.key_size)
            key_on_disk = False
            plan.key_pem = _issue.private_key_pem(key)
            self._planned_keys[spec.privatekey_path] = key
        plan.key_label = _inspect.key_label(key)
        if reasons:
            plan.after = _issue.build_certificate(spec, key.public_key(), issuer_key if issuer_key is not None else key, issuer_cert, self.now)
            plan.cert_pem = _issue.certificate_pem(plan.after)
            self._planned_certs[spec.path] = plan.after
        elif not cert_invalid:
            plan.cert_attribute_changes = _files.attribute_changes(spec.path, spec.mode, uid, gid)
        if key_on_disk:
            plan.key_attribute_changes = _files.attribute_changes(spec.privatekey_path, KEY_MODE, uid, gid)
        return plan

    def _plan_keyless_ca(self, spec: CertSpec, cert, reasons: list[str], uid: int, gid: int) -> Plan:
        """A CA certificate without its key (recovered from hosts, which never hold that key): kept as it is.

        A new key would make a new CA that no host trusts yet, the reset the trust guard exists to
        prevent; what this CA signs is checked against it, and fails only when it must be issued.
        """
        others = [reason for reason in reasons if reason != "key_missing"]
        if others:
            raise PkiError(f"this CA certificate must be issued again ({', '.join(others)}) but its key {spec.privatekey_path} is "
                           "not here: restore the key from a backup of the credentials directory, or move the certificate aside "
                           "too to create a new CA on purpose (every certificate it signed is then issued again)")
        plan = Plan(spec=spec, reasons=[], before=cert, after=cert, key_label="none (certificate only)", before_key_label=None,
                    uid=uid, gid=gid)
        plan.cert_attribute_changes = _files.attribute_changes(spec.path, spec.mode, uid, gid)
        return plan

    def _current_certificate(self, path: str) -> tuple[object, bool]:
        """(certificate or None, whether a file is there but is not a certificate)."""
        data = _inspect.read_file(path, "certificate")
        if data is None:
            return None, False
        try:
            return _inspect.parse_certificate(data, path), False
        except PkiError:
            return None, True

    def _current_key(self, path: str) -> tuple[object, bool]:
        """(private key or None, whether it is the file on disk rather than one planned in this run)."""
        if path in self._planned_keys:
            return self._planned_keys[path], False
        data = _inspect.read_file(path, "private key")
        if data is None:
            return None, False
        return _inspect.parse_private_key(data, path), True

    def _authority(self, ca_cert: str, ca_key: str) -> tuple[object, object]:
        """The CA certificate and key, validated once per batch (errors are remembered as well)."""
        cached = self._authorities.get((ca_cert, ca_key))
        if cached is None:
            try:
                cached = self._load_authority(ca_cert, ca_key)
            except PkiError as exc:
                cached = exc
            self._authorities[(ca_cert, ca_key)] = cached
        if isinstance(cached, PkiError):
            raise cached
        return cached

    def _load_authority(self, ca_cert: str, ca_key: str) -> tuple[object, object]:
        """The CA certificate, validated, and its key (None when only the certificate is here)."""
        cert = self._planned_certs.get(ca_cert)
        if cert is None:
            data = _inspect.read_file(ca_cert, "ca_cert")
            if data is None:
                raise PkiError(f"ca_cert {ca_cert} does not exist")
            cert = _inspect.parse_certificate(data, ca_cert, "ca_cert")
        extensions = _profile.observed(cert)
        if not extensions.ca:
            state = "CA:FALSE" if extensions.ca is False else "no basicConstraints"
            raise PkiError(f"ca_cert {ca_cert} ({cert.subject.rfc4514_string()}) is not a CA certificate ({state})")
        if extensions.key_usage is not None and "key_cert_sign" not in extensions.key_usage:
            raise PkiError(f"ca_cert {ca_cert} may not sign certificates (keyUsage lacks keyCertSign)")
        key, _on_disk = self._current_key(ca_key)
        if key is None:
            return cert, None
        if not _inspect.key_matches_certificate(key, cert):
            raise PkiError(f"ca_key {ca_key} does not match ca_cert {ca_cert}")
        return cert, key

    # -- writing ---------------------------------------------------------------------------

    def _write_all(self, plans: list[Plan]) -> None:
        directories = set()
        for plan in plans:
            spec = plan.spec
            if plan.key_pem:
                if os.path.lexists(spec.privatekey_path):
                    plan.privatekey_backup_file = _files.make_backup(spec.privatekey_path, self.now)
                _files.write_atomic(spec.privatekey_path, plan.key_pem, KEY_MODE, plan.uid, plan.gid, sync_dir=False)
                directories.add(os.path.dirname(spec.privatekey_path))
            if plan.cert_pem:
                if os.path.lexists(spec.path):
                    plan.backup_file = _files.make_backup(spec.path, self.now)
                _files.write_atomic(spec.path, plan.cert_pem, spec.mode, plan.uid, plan.gid, sync_dir=False)
                directories.add(os.path.dirname(spec.path))
            if plan.cert_attribute_changes:
                _files.apply_attributes(spec.path, spec.mode, plan.uid, plan.gid)
            if plan.key_attribute_changes:
                _files.apply_attributes(spec.privatekey_path, KEY_MODE, plan.uid, plan.gid)
        for directory in sorted(directories):
            _files.sync_directory(directory)

    # -- reporting -------------------------------------------------------------------------

    def _result(self, plan: Plan) -> dict:
        facts = _inspect.describe(plan.after)
        pending = self.check_mode and plan.cert_pem is not None
        return {
            "path": plan.spec.path,
            "privatekey_path": plan.spec.privatekey_path,
            "changed": plan.changed,
            "reasons": plan.reasons,
            "serial": None if pending else _inspect.serial_hex(plan.after),
            "fingerprint_sha256": None if pending else _inspect.fingerprint_sha256(plan.after),
            "not_after": facts["not_after"],
            "subject": facts["subject"],
            "issuer": facts["issuer"],
            "dns_names": facts["dns_names"],
            "ip_addresses": facts["ip_addresses"],
            "attributes_changed": bool(plan.cert_attribute_changes or plan.key_attribute_changes),
            "backup_file": plan.backup_file,
            "privatekey_backup_file": plan.privatekey_backup_file,
        }

    def _diff(self, plan: Plan) -> dict:
        before: dict = {}
        if plan.before is not None:
            before = _inspect.describe(plan.before)
        if plan.before_key_label:
            before["key"] = plan.before_key_label
        after = _inspect.describe(plan.after)
        after["key"] = plan.key_label
        for path, changes in ((plan.spec.path, plan.cert_attribute_changes), (plan.spec.privatekey_path, plan.key_attribute_changes)):
            if changes:
                before.setdefault("files", {})[path] = {name: old for name, (old, _new) in changes.items()}
                after.setdefault("files", {})[path] = {name: new for name, (_old, new) in changes.items()}
        return {"before": before, "after": after, "before_header": plan.spec.path, "after_header": plan.spec.path}

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Rebuilding the controller's credentials directory from what the hosts hold (recover_credentials.yml).

The pki plan (plugins/filter/pki.py) says which controller file each host file came from; read
backwards, it says where each file a host holds goes back to. A kubeconfig gives back its file and
the client certificate, key and CA it embeds. The control-plane hosts' encryption configuration
gives back the encryption keys, and the etcd members' first-start settings the cluster token.

``recover`` is pure: it takes the pki plan and every host's trust_anchor_info result (with
contents), and returns the files, or the problems that stop it: a control-plane or etcd host that
did not answer, and hosts that hold different trust anchors (CA certificates and keys, the
service-account key pair, an encryption key name with two secrets): it cannot tell which is right.
A certificate or kubeconfig the hosts hold in different versions is left out with a warning; the
pki phase issues it again. What no host holds is listed with the reason (the etcd and front-proxy
CA keys never leave the controller). ``carry_over`` takes such CA keys from the existing directory
when its CA certificate is the recovered one, and ``settle`` writes the directory: it moves an
existing one that differs aside (``<dir>.<UTC time>``), never deletes anything.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import json
import os

from ansible_collections.kubeforge.cluster.plugins.module_utils import _fs
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd import cluster_token
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import trust as _trust
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.errors import PkiError

try:
    import yaml
except ImportError:  # pragma: no cover - the controller has PyYAML (Ansible needs it)
    yaml = None

CERT_MODE = 0o644
KEY_MODE = 0o600
DIRECTORY_MODE = 0o700


class RecoverError(PkiError):
    """recover_credentials.yml cannot go on; ``errors`` lists every reason."""


@dataclasses.dataclass
class Recovery:
    """The files to write ({path: (text, mode)}), and what stops or qualifies the recovery."""

    files: dict = dataclasses.field(default_factory=dict)
    problems: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    lacking_ca_keys: dict = dataclasses.field(default_factory=dict)  # CA key path -> CA certificate path
    sources: dict = dataclasses.field(default_factory=dict)  # path -> hosts it came from


def _pem(text: str) -> str:
    return str(text).strip() + "\n"


def embedded(kubeconfig: str) -> dict:
    """{ca, cert, key}: the PEM texts a kubeconfig embeds (those it has)."""
    if yaml is None:
        raise RecoverError("PyYAML is needed on the controller to read kubeconfigs")
    try:
        config = yaml.safe_load(kubeconfig) or {}
        cluster = ((config.get("clusters") or [{}])[0] or {}).get("cluster") or {}
        user = ((config.get("users") or [{}])[0] or {}).get("user") or {}
    except (yaml.YAMLError, AttributeError, IndexError, TypeError) as exc:
        raise RecoverError(f"not a kubeconfig: {exc}") from exc
    found = {}
    for name, data in (("ca", cluster.get("certificate-authority-data")), ("cert", user.get("client-certificate-data")),
                       ("key", user.get("client-key-data"))):
        if data:
            try:
                found[name] = _pem(base64.b64decode(str(data), validate=True).decode("ascii"))
            except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
                raise RecoverError(f"its {name} data is not base64 PEM: {exc}") from exc
    return found


def json_text(data) -> str:
    """JSON as the roles write the controller's files (to_nice_json(indent=2) and a newline)."""
    return json.dumps(data, indent=2, sort_keys=True, separators=(",", ": ")) + "\n"


def key_file_text(keys: list) -> str:
    """The controller's encryption key file, as the control_plane role writes it."""
    return json_text({"keys": keys})


def merge_encryption_keys(lists: dict) -> tuple[list, list, list]:
    """(keys, problems, warnings) from {host: [{name, secret}]} of the hosts that have a configuration.

    A name with two secrets is a problem. Lists that differ (a rotation cut short) are merged: the
    longest list first (its first key encrypts), then the other names in the order found, with a warning.
    """
    secrets: dict = {}
    for host in sorted(lists):
        for key in lists[host]:
            secrets.setdefault(key["name"], {}).setdefault(key["secret"], []).append(host)
    problems = [f"encryption key {name}: the hosts hold different secrets under this name ("
                + "; ".join(f"{', '.join(hosts)} hold{'s' if len(hosts) == 1 else ''} one" for hosts in by_secret.values()) + ")"
                for name, by_secret in secrets.items() if len(by_secret) > 1]
    if problems or not lists:
        return [], problems, []
    hosts = sorted(lists, key=lambda host: (-len(lists[host]), host))
    merged = [dict(key) for key in lists[hosts[0]]]
    for host in hosts[1:]:
        merged += [dict(key) for key in lists[host] if key["name"] not in {item["name"] for item in merged}]
    warnings = []
    if len({tuple(key["name"] for key in keys) for keys in lists.values()}) > 1:
        shown = "; ".join(f"{host}: {', '.join(key['name'] for key in lists[host]) or 'none'}" for host in sorted(lists))
        warnings.append(f"the control-plane hosts hold different encryption key lists (a rotation cut short?): {shown}; the "
                        f"controller gets {', '.join(key['name'] for key in merged)} (the first encrypts); run "
                        "playbooks/rotate_encryption_key.yml or site.yml --tags control_plane to bring every host in line")
    return merged, [], warnings


def _anchor_paths(plan: dict) -> set:
    paths = {plan["service_account"]["private_key"], plan["service_account"]["public_key"]}
    for entry in plan["certificates"]:
        if entry.get("profile") == "ca":
            paths.update((entry["path"], entry["privatekey_path"]))
    return paths


def recover(plan: dict, reports: dict, required_hosts, credentials_dir: str) -> Recovery:
    """What the hosts give back, from the pki ``plan`` and {host: trust_anchor_info result with contents, or None}.

    ``required_hosts`` (every control-plane and etcd host) must all have answered. The etcd members'
    first-start settings give back the cluster token file (module_utils/_etcd/cluster_token.py).
    """
    recovery = Recovery()
    answered = {host: report for host, report in reports.items() if report is not None}
    silent = sorted(set(required_hosts) - set(answered))
    if silent:
        recovery.problems.append(f"{', '.join(silent)} did not answer: every control-plane and etcd host is read, since they "
                                 "must agree on what they hold; run again when they answer (and without --limit)")
    for host in sorted(answered):
        recovery.problems.extend(f"{host}: {error}" for error in answered[host].get("errors") or [])

    kubeconfigs = {config["dest"]: config for config in plan["kubeconfigs"]}
    candidates: dict = {}  # path -> {text: [hosts]}
    modes: dict = {}

    def offer(path: str, text: str, host: str, mode: int) -> None:
        holders = candidates.setdefault(path, {}).setdefault(text, [])
        if host not in holders:
            holders.append(host)
        modes[path] = mode

    for host in sorted(answered):
        files = answered[host].get("files") or {}
        for entry in plan["hosts"].get(host) or []:
            text = files.get(entry["dest"])
            if text is None:
                continue
            config = kubeconfigs.get(entry["src"])
            if config is None:
                offer(entry["src"], _pem(text), host, int(str(entry["mode"]), 8))
                continue
            offer(entry["src"], text, host, int(str(entry["mode"]), 8))
            try:
                parts = embedded(text)
            except RecoverError as exc:
                recovery.problems.append(f"{host}: {entry['dest']}: {exc}")
                continue
            for part, mode in (("ca", CERT_MODE), ("cert", CERT_MODE), ("key", KEY_MODE)):
                if part in parts:
                    offer(config[part], parts[part], host, mode)

    anchors = _anchor_paths(plan)
    for path in sorted(candidates):
        versions = candidates[path]
        if len(versions) == 1:
            text, hosts = next(iter(versions.items()))
            recovery.files[path] = (text, modes[path])
            recovery.sources[path] = hosts
            continue
        shown = "; ".join(f"{', '.join(sorted(hosts))} hold{'s' if len(hosts) == 1 else ''} one" for hosts in versions.values())
        relative = os.path.relpath(path, credentials_dir)
        if path in anchors:
            recovery.problems.append(f"{relative}: the hosts hold {len(versions)} different versions ({shown}): which one is this "
                                     "cluster's cannot be told")
        else:
            recovery.warnings.append(f"{relative}: the hosts hold {len(versions)} different versions ({shown}); left out, the pki "
                                     "phase issues it again")

    lists = {host: list(answered[host].get("encryption_keys") or []) for host in answered if answered[host].get("encryption_keys")}
    keys, problems, warnings = merge_encryption_keys(lists)
    recovery.problems += problems
    recovery.warnings += warnings
    if keys:
        path = os.path.join(credentials_dir, _trust.CONTROLLER_ENCRYPTION_KEYS)
        recovery.files[path] = (key_file_text(keys), KEY_MODE)
        recovery.sources[path] = sorted(lists)

    envs = {host: answered[host]["etcd_initial_env"] for host in sorted(answered) if answered[host].get("etcd_initial_env")}
    if envs:
        markers = {host: answered[host]["etcd_restore_marker"] for host in envs if answered[host].get("etcd_restore_marker")}
        try:
            state = cluster_token.recover(None, envs, markers)
        except cluster_token.TokenFileError as exc:
            recovery.warnings.append(f"the etcd cluster token is not recovered: {exc}")
        else:
            path = os.path.join(credentials_dir, cluster_token.FILE_NAME)
            recovery.files[path] = (json_text(state), KEY_MODE)
            recovery.sources[path] = sorted(envs)
            if not state["current"]:
                recovery.notes.append(f"{cluster_token.FILE_NAME}: the etcd members do not agree on their first-start token (or "
                                      "joined an existing cluster): recorded without it; a running cluster never needs it again")

    if not any(path in recovery.files for path in anchors) and not recovery.problems:
        recovery.problems.append("no host holds any of this cluster's CAs or service-account key: there is nothing to recover "
                                 "(a new cluster: run site.yml)")
    _explain_lacking(plan, recovery, credentials_dir)
    return recovery


def _explain_lacking(plan: dict, recovery: Recovery, credentials_dir: str) -> None:
    """Notes on what no host gave back, and which CA keys are missing."""
    def relative(path: str) -> str:
        return os.path.relpath(path, credentials_dir)

    signers = {entry["privatekey_path"]: entry for entry in plan["certificates"] if entry.get("profile") == "ca"}
    reissued, blocked = [], {}
    for entry in plan["certificates"]:
        if entry.get("profile") == "ca":
            if entry["path"] in recovery.files and entry["privatekey_path"] not in recovery.files:
                recovery.lacking_ca_keys[entry["privatekey_path"]] = entry["path"]
            continue
        if entry["path"] in recovery.files and entry["privatekey_path"] in recovery.files:
            continue
        if entry.get("ca_key") in recovery.files:
            reissued.append(relative(entry["path"]))
        else:
            blocked.setdefault(entry.get("ca_key"), []).append(relative(entry["path"]))
    for key, cert in sorted(recovery.lacking_ca_keys.items()):
        dependents = sorted(relative(entry["path"]) for entry in plan["certificates"] if entry.get("ca_key") == key)
        recovery.notes.append(f"{relative(key)}: no host holds this CA key (it never leaves the controller); restore it from a "
                              f"backup of the credentials directory. Until then {relative(cert)} is kept as it is and nothing it "
                              f"signs can be issued or renewed ({', '.join(dependents)})")
    if reissued:
        recovery.notes.append("issued again from the recovered CA keys by the pki phase: " + ", ".join(sorted(reissued)))
    for key, paths in sorted(blocked.items(), key=lambda item: str(item[0])):
        if key not in recovery.lacking_ca_keys:
            signer = signers.get(key)
            label = relative(signer["path"]) if signer else key
            recovery.notes.append(f"not on any host and its CA ({label}) cannot be recovered: {', '.join(sorted(paths))}")
        else:
            recovery.notes.append(f"not on any host, and {relative(key)} is needed to issue them again: {', '.join(sorted(paths))}; "
                                  "the pki phase fails until that key is restored")
    rendered = sorted(relative(config["dest"]) for config in plan["kubeconfigs"] if config["dest"] not in recovery.files)
    if rendered:
        recovery.notes.append("written again by the pki phase from the recovered certificates: " + ", ".join(rendered))


# --------------------------------------------------------------------------- the directory

def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return "\0directory"
    except OSError as exc:
        raise RecoverError(f"cannot read {path}: {exc.strerror}") from exc


def carry_over(recovery: Recovery, credentials_dir: str) -> list:
    """Adds to the files each CA key the hosts lack that the existing directory holds beside the same CA certificate."""
    carried = []
    for key, cert in sorted(recovery.lacking_ca_keys.items()):
        current = _read(cert)
        text = _read(key)
        if current is not None and text is not None and current.strip() == recovery.files[cert][0].strip():
            recovery.files[key] = (text, KEY_MODE)
            recovery.sources[key] = ["the existing credentials directory"]
            carried.append(os.path.relpath(key, credentials_dir))
    return carried


def _same(path: str, current: str, wanted: str) -> bool:
    """Whether the existing file already holds what is recovered.

    The encryption key file: every recovered key, kept or retired. The etcd token file: any valid
    one that records a cluster (its history is the controller's; the hosts only know the last token).
    """
    if os.path.basename(path) == cluster_token.FILE_NAME:
        try:
            return bool(cluster_token.load(current)["clusters"])
        except cluster_token.TokenFileError:
            return False
    if os.path.basename(path) == _trust.CONTROLLER_ENCRYPTION_KEYS:
        try:
            data = json.loads(current)
            held = {(key.get("name"), key.get("secret")) for part in ("keys", "retired") for key in data.get(part) or []
                    if isinstance(key, dict)}
        except (ValueError, AttributeError):
            return False
        return all((key["name"], key["secret"]) in held for key in json.loads(wanted)["keys"])
    return current.strip() == wanted.strip()


def aside_name(credentials_dir: str, now: datetime.datetime) -> str:
    """``<dir>.<YYYYmmddTHHMMSSZ>``, with ``-1``, ``-2``... when that exists already."""
    base = f"{credentials_dir}.{now.astimezone(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
    candidate, counter = base, 0
    while os.path.lexists(candidate):
        counter += 1
        candidate = f"{base}-{counter}"
    return candidate


def settle(credentials_dir: str, files: dict, directories, check_mode: bool = False, now: datetime.datetime | None = None) -> dict:
    """Writes the recovered ``files`` ({path: (text, mode)}) into ``credentials_dir``.

    A missing or empty directory is filled. An existing one that holds every recovered file already
    (or some of them, and nothing that differs) gets the missing ones. One that holds a file that
    differs is moved aside as ``<dir>.<UTC time>`` first, and a new one is written: nothing is
    deleted. Directories are created 0700. Returns changed, moved_aside_to, written, conflicts.
    """
    credentials_dir = os.path.normpath(credentials_dir)
    outside = [path for path in files if os.path.commonpath([credentials_dir, os.path.normpath(path)]) != credentials_dir]
    if outside:
        raise RecoverError(f"files outside {credentials_dir}: {', '.join(sorted(outside))}")
    if os.path.lexists(credentials_dir) and not os.path.isdir(credentials_dir):
        raise RecoverError(f"{credentials_dir} exists and is not a directory")
    present = os.path.isdir(credentials_dir) and any(True for _entry in os.scandir(credentials_dir))
    current = {path: _read(path) for path in files} if present else {}
    conflicts = sorted(path for path, text in current.items() if text is not None and not _same(path, text, files[path][0]))
    moved = aside_name(credentials_dir, now or datetime.datetime.now(datetime.timezone.utc)) if conflicts else None
    if moved or not present:
        current = {}
    writes = sorted(path for path in files if current.get(path) is None)
    fixes = sorted(path for path in files if current.get(path) is not None and _mode(path) != files[path][1])
    if not check_mode:
        if moved:
            os.rename(credentials_dir, moved)
        wanted = sorted({os.path.normpath(d) for d in directories} | {os.path.dirname(path) for path in writes} | {credentials_dir},
                        key=len)
        for directory in wanted:
            if not os.path.isdir(directory):
                os.makedirs(directory, DIRECTORY_MODE)
                os.chmod(directory, DIRECTORY_MODE)
        try:
            for path in writes:
                text, mode = files[path]
                _fs.write_atomic(path, text.encode("utf-8"), mode, sync_dir=False)
            for path in fixes:
                _fs.apply_attributes(path, files[path][1])
        except _fs.FsError as exc:
            raise RecoverError(str(exc)) from exc
        for directory in sorted({os.path.dirname(path) for path in writes}):
            _fs.sync_directory(directory)
    relative = [os.path.relpath(path, credentials_dir) for path in writes]
    return {"changed": bool(moved or writes or fixes), "moved_aside_to": moved, "written": relative,
            "conflicts": [os.path.relpath(path, credentials_dir) for path in conflicts],
            "modes_fixed": [os.path.relpath(path, credentials_dir) for path in fixes]}


def _mode(path: str) -> int:
    return os.stat(path).st_mode & 0o7777

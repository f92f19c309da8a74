# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The record of what file_bundle left on a host, so that a re-run that would change nothing is answered by
one shell command instead of a module run (a module run costs a new Python and its imports on the host).

After each run with ``record``, the module notes for each file the sha256 of its content and its stamp (device,
inode, size, mtime and ctime in nanoseconds) in RECORD_PATH. Any write to a file, and any change of its mode or
owner, moves its ctime, which only the kernel sets (the artifacts' digests.json relies on the same). So when a
file's stamp is the recorded one, its content is the recorded one.

The action plugin then asks the host in one shell command (probe_command) for the record, the stamp, mode and
owner of every file, the directories, the paths that must be absent and the units' states. When everything is
as the task asks (settled_result), it returns the module's result for a run that changes nothing; otherwise,
or when any answer cannot be read, the module runs as usual.

A file written while a service that reads it was running also notes that service's invocation ID (``owed``):
systemd gives a unit a new one at each start, so while the unit runs with the noted one, the service has not read
the file yet and a restart is owed, whether or not the run that wrote the file lived to do it (a stopped unit owes
nothing: it reads the file when it starts). Both the module and the answer from the record name such services in
services_changed, as a run that changed the file does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import stat

from ansible_collections.kubeforge.cluster.plugins.module_utils._fs import write_atomic
from ansible_collections.kubeforge.cluster.plugins.module_utils._units import (
    SHOW_PROPERTIES, UnitsError, invocations_command, parse_invocations, parse_show, plan, unique)

RECORD_PATH = "/var/lib/kubeforge/file_bundle.json"
RECORD_VERSION = 1
# GNU stat: %F the type, %.9Y/%.9Z mtime/ctime with nanoseconds, %a the octal mode, the owner as ids and names.
STAT_FORMAT = "%n|%F|%d %i %s %.9Y %.9Z|%a|%u|%g|%U|%G"
_SEPARATOR = "--kubeforge-file-record--"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def block_digest(marker: str, block: str) -> str:
    """What identifies a marked block: its marker and its text."""
    return sha256_hex(f"{marker}\0{block}".encode("utf-8"))


def _seconds(nanoseconds: int) -> str:
    return f"{nanoseconds // 1_000_000_000}.{nanoseconds % 1_000_000_000:09d}"


def stamp(found: os.stat_result) -> str:
    """A file's stamp as GNU stat prints it with STAT_FORMAT's third field."""
    return f"{found.st_dev} {found.st_ino} {found.st_size} {_seconds(found.st_mtime_ns)} {_seconds(found.st_ctime_ns)}"


def read_record(path: str) -> dict:
    """{dest: {sha256, stamp, block?}} of the record at ``path``; {} when there is none or it is of another version."""
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return {}
    return parse_record(record)


def parse_record(record) -> dict:
    if not isinstance(record, dict) or record.get("version") != RECORD_VERSION or not isinstance(record.get("files"), dict):
        return {}
    return record["files"]


def still_owed(owed, invocations: dict) -> dict:
    """The {service: invocation ID} of ``owed`` (a file's record) whose noted invocation still runs: the restarts owed."""
    if not isinstance(owed, dict):
        return {}
    return {service: invocation for service, invocation in owed.items() if invocation and invocations.get(service) == invocation}


def file_entry(dest: str, block: str | None = None) -> dict | None:
    """What to record of the regular file at ``dest`` as it is now (``block``: the digest of its marked block);
    None when it is not a regular file or changed while it was read."""
    try:
        before = os.lstat(dest)
        if not stat.S_ISREG(before.st_mode):
            return None
        with open(dest, "rb") as handle:
            digest = sha256_hex(handle.read())
        after = os.lstat(dest)
    except OSError:
        return None
    if stamp(after) != stamp(before):
        return None
    entry = {"sha256": digest, "stamp": stamp(after)}
    if block is not None:
        entry["block"] = block
    return entry


def update_record(path: str, entries: dict) -> bool:
    """Merge {dest: entry or None} into the record at ``path`` (None drops the dest), replacing the file (0600, a
    temporary file renamed over it) only when it changes. Whether it changed."""
    before = read_record(path)
    files = {dest: entry for dest, entry in {**before, **entries}.items() if entry is not None}
    if files == before:
        return False
    os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
    write_atomic(path, (json.dumps({"version": RECORD_VERSION, "files": files}, indent=1, sort_keys=True) + "\n").encode("utf-8"), 0o600)
    return True


def probe_command(record_path: str, files, directories, absent, units, services=()) -> str:
    """One shell command printing, between separator lines: the record, ``stat`` of each file (not following a
    link, as the module reads them), ``stat -L`` of each directory, the paths of ``absent`` that exist,
    ``systemctl show`` of the units, and the invocation IDs of the ``services`` the files name."""
    quote = shlex.quote
    separator = f"echo {_SEPARATOR}"
    parts = [f"cat {quote(record_path)} 2>/dev/null", separator]
    if files:
        parts.append(f"LC_ALL=C stat -c {quote(STAT_FORMAT)} -- {' '.join(map(quote, files))} 2>/dev/null")
    parts.append(separator)
    if directories:
        parts.append(f"LC_ALL=C stat -L -c {quote(STAT_FORMAT)} -- {' '.join(map(quote, directories))} 2>/dev/null")
    parts.append(separator)
    parts.extend(f"if [ -e {quote(path)} ] || [ -L {quote(path)} ]; then echo {quote(path)}; fi" for path in absent)
    parts.append(separator)
    if units:
        parts.append("systemctl show " + " ".join(f"--property={name}" for name in SHOW_PROPERTIES) + " -- "
                     + " ".join(map(quote, units)))
    parts.append(separator)
    if services:
        parts.append("systemctl " + " ".join(map(quote, invocations_command(services))))
    return "; ".join(parts)


def services_named(files) -> list[str]:
    """The services the ``files`` (asked_state's) name, each once, in order."""
    return unique(service for entry in files for service in entry.get("services") or ())


def _stat_lines(text: str) -> dict:
    """{path: {type, stamp, mode, uid, gid, owner, group}} of STAT_FORMAT lines."""
    found = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) != 8:
            continue
        path, kind, stamp_text, mode, uid, gid, owner, group = fields
        found[path] = {"type": kind, "stamp": stamp_text, "mode": mode, "uid": uid, "gid": gid, "owner": owner, "group": group}
    return found


def _owned(found: dict, owner, group) -> bool:
    """Whether the stat fields match the owner and group asked (a name or an id; None for any)."""
    return all(wanted is None or str(wanted) == (number if str(wanted).isdigit() else name)
               for wanted, name, number in ((owner, found["owner"], found["uid"]), (group, found["group"], found["gid"])))


def _mode_is(found: dict, mode: int) -> bool:
    try:
        return int(found["mode"], 8) == mode
    except ValueError:
        return False


def _units_settled(running, stopped, output: str) -> bool:
    """Whether the units are as the module's units step leaves them alone (_units.plan finds nothing to do), and
    systemd reads each as it is on disk (no daemon-reload due)."""
    names = list(running) + list(stopped)
    if not names:
        return True
    try:
        states = dict(zip(names, parse_show(output, len(names))))
    except UnitsError:
        return False
    problems, steps = plan(running, stopped, states)
    return not problems and not any(units for _kind, units in steps) and not any(state.need_reload for state in states.values())


def settled_result(files, directories, running, stopped, output: str) -> dict | None:
    """The module's result for a run that changes nothing, when the probe's ``output`` shows the host is as asked;
    None when the module must run.

    ``files``: dicts with dest, sha256 (of the content asked), mode (int), owner, group (as asked, None for any), force,
    services, and block (block_digest) for a marked block. ``directories``: (path, mode, owner, group)."""
    sections = output.split(_SEPARATOR + "\n")
    if len(sections) != 6:
        return None
    record_text, file_text, directory_text, absent_text, unit_text, invocation_text = sections
    try:
        record = parse_record(json.loads(record_text))
    except ValueError:
        return None
    stats, directory_stats = _stat_lines(file_text), _stat_lines(directory_text)
    stale = []
    for entry in files:
        found, noted = stats.get(entry["dest"]), record.get(entry["dest"])
        if (not found or not isinstance(noted, dict) or found["type"] != "regular file" or found["stamp"] != noted.get("stamp")
                or noted.get("block") != entry.get("block")):
            return None
        if not entry["force"]:
            if noted.get("sha256") != entry["sha256"]:
                stale.append(entry["dest"])
            continue
        if entry.get("block") is None and noted.get("sha256") != entry["sha256"]:
            return None
        if not _mode_is(found, entry["mode"]) or not _owned(found, entry["owner"], entry["group"]):
            return None
    for path, mode, owner, group in directories:
        found = directory_stats.get(path)
        if not found or found["type"] != "directory" or not _mode_is(found, mode) or not _owned(found, owner, group):
            return None
    if absent_text.strip() or not _units_settled(running, stopped, unit_text):
        return None
    named = services_named(files)
    invocations = parse_invocations(invocation_text, named) if named else {}
    owed = sorted({service for entry in files for service in still_owed(record[entry["dest"]].get("owed"), invocations)})
    return {"changed": False, "files": [{"dest": entry["dest"], "changed": False, "changes": []} for entry in files],
            "changed_files": [], "stale_files": stale, "changed_directories": [], "removed_files": [], "services_changed": owed,
            "unit_changes": {}, "started_units": []}

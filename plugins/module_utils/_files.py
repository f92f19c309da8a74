# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A bundle of files written in one step: the file_bundle module's backend.

Each file is compared with what is on disk (content, mode, owner, group); only the differences
are written. A changed file is written to a temporary file in its own directory that already has
its mode and owner, fsynced and renamed over the target, so a key is never readable by others and
readers never see a partial file. Missing parent directories are created with ``directory_mode``.

Contents are secrets (private keys, kubeconfigs) by default: they never appear in results or diffs,
which name the files and what changes about them. A file marked ``diff`` (a unit, a configuration
without secrets) also shows its old and new content in the diff.

Then the units that read the files are kept running (plugins/module_utils/_units.py): a role writes
its files and starts its services in one module run.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
import shlex
import stat
import tempfile
from collections.abc import Mapping

from ansible_collections.kubeforge.cluster.plugins.module_utils import _file_record, _fs
from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError
from ansible_collections.kubeforge.cluster.plugins.module_utils._units import (
    UnitsBackend, UnitsError, invocations_command, parse_invocations, unique, units_diff)

UNCHANGED = _fs.UNCHANGED
DEFAULT_MODE = "0644"
DEFAULT_DIRECTORY_MODE = "0755"
CHANGE_KINDS = ("created", "content", "mode", "owner", "group")
_OCTAL_MODE = re.compile(r"^0?[0-7]{3,4}$")
# Where systemd reads unit files: a change there needs a daemon-reload before the units are started.
UNIT_DIRECTORIES = ("/etc/systemd/system/", "/run/systemd/system/", "/usr/lib/systemd/system/", "/lib/systemd/system/")


class FilesError(KubeforgeError):
    """A problem with a file of the bundle; ``errors`` lists every one found."""

    def __init__(self, msg: str, errors: list[str] | None = None) -> None:
        super().__init__(msg)
        self.errors = list(errors) if errors else [msg]


# The shared primitives of plugins/module_utils/_fs.py, raising FilesError.
resolve_owner = _fs.raising(FilesError, _fs.resolve_owner)
resolve_group = _fs.raising(FilesError, _fs.resolve_group)
apply_attributes = _fs.raising(FilesError, _fs.apply_attributes)
write_atomic = _fs.raising(FilesError, _fs.write_atomic)


@dataclasses.dataclass(frozen=True)
class FileSpec:
    dest: str
    content: bytes
    mode: int
    uid: int = UNCHANGED
    gid: int = UNCHANGED
    services: tuple[str, ...] = ()
    diff: bool = False
    validate: str | None = None
    force: bool = True
    unsafe_writes: bool = False


def validate_command(value: object) -> str | None:
    """A checker command with ``%s`` where the new file's path goes, or None."""
    if value in (None, ""):
        return None
    if "%s" not in str(value):
        raise FilesError(f"validate {value!r} must contain %s, where the path of the file to check goes")
    return str(value)


def parse_mode(value: object) -> int:
    """An octal string (``'0644'``) or an int (YAML reads an unquoted 0644 as 420)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o7777:
        return value
    if isinstance(value, str) and _OCTAL_MODE.match(value):
        return int(value, 8)
    raise FilesError(f"mode {value!r} is not an octal mode such as '0644'")


def with_block(text: bytes, marker: str, block: str) -> bytes:
    """``text`` with its marked block (from the marker's BEGIN line to its END line) replaced by ``block``, or
    with the block appended when it has none. The layout ansible.builtin.blockinfile writes: a file it wrote
    is not written again."""
    if "{mark}" not in marker:
        raise FilesError(f"marker {marker!r} must contain {{mark}}, where BEGIN and END go")
    begin, end = (marker.replace("{mark}", word).encode("utf-8") + b"\n" for word in ("BEGIN", "END"))
    body = block.encode("utf-8")
    if body and not body.endswith(b"\n"):
        body += b"\n"
    lines = text.splitlines(True)
    marked = [begin, *body.splitlines(True), end]
    if begin in lines and end in lines[lines.index(begin):]:
        first = lines.index(begin)
        lines[first:first + lines[first:].index(end) + 1] = marked
    else:
        if lines and not lines[-1].endswith(b"\n"):
            lines[-1] += b"\n"
        lines.extend(marked)
    return b"".join(lines)


def read_bytes(path: str) -> bytes:
    """A file's bytes, empty when there is none."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise FilesError(f"cannot read {path}: {exc.strerror}") from exc


def entry_content(entry: Mapping) -> bytes:
    """The bytes of an entry: ``content_base64``, else ``content`` as UTF-8, else the file on disk with its marked
    ``block`` in place."""
    if entry.get("block") is not None:
        return with_block(read_bytes(os.path.normpath(str(entry.get("dest")))), str(entry.get("marker") or ""), str(entry["block"]))
    if entry.get("content_base64") is not None:
        try:
            return base64.b64decode(str(entry["content_base64"]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FilesError("content_base64 is not valid base64") from exc
    if entry.get("content") is not None:
        return str(entry["content"]).encode("utf-8")
    if entry.get("src") is not None:
        raise FilesError("src is read on the controller by the file_bundle action plugin; this module got no content for it")
    raise FilesError("content, src or block is required")


def specs_from_params(params: Mapping) -> list[FileSpec]:
    """Validate every entry of ``files`` (top-level owner/group/mode are their defaults); all problems at once."""
    specs: list[FileSpec] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(params.get("files") or []):
        label = f"files[{index}] ({entry.get('dest') or 'no dest'})"
        try:
            dest = entry.get("dest")
            if not dest or not os.path.isabs(dest):
                raise FilesError(f"dest {dest!r} must be an absolute path")
            dest = os.path.normpath(dest)
            if dest in seen:
                raise FilesError(f"dest is also written by files[{seen[dest]}]")
            seen[dest] = index
            mode = entry.get("mode") if entry.get("mode") is not None else params.get("mode") or DEFAULT_MODE
            owner = entry.get("owner") if entry.get("owner") is not None else params.get("owner")
            group = entry.get("group") if entry.get("group") is not None else params.get("group")
            specs.append(FileSpec(dest=dest, content=entry_content(entry), mode=parse_mode(mode), uid=resolve_owner(owner),
                                  gid=resolve_group(group), services=tuple(entry.get("services") or ()),
                                  diff=bool(entry.get("diff")), validate=validate_command(entry.get("validate")),
                                  force=entry.get("force") is not False, unsafe_writes=bool(entry.get("unsafe_writes"))))
        except FilesError as exc:
            problems.extend(f"{label}: {problem}" for problem in exc.errors)
    if problems:
        raise FilesError(f"{len(problems)} problem(s) in files, nothing written: " + "; ".join(problems), problems)
    return specs


def file_changes(spec: FileSpec) -> dict[str, tuple[str, str]]:
    """What differs between ``spec`` and the file on disk: {kind: (before, after)} for a diff.

    ``created`` when there is no file; otherwise any of ``content``, ``mode``, ``owner``, ``group``, and
    nothing for an existing file the spec does not ``force``.
    """
    try:
        st = os.lstat(spec.dest)
    except FileNotFoundError:
        return {"created": ("absent", "present")}
    except OSError as exc:
        raise FilesError(f"cannot read {spec.dest}: {exc.strerror}") from exc
    if not spec.force:
        return {}
    if not stat.S_ISREG(st.st_mode):
        return {"content": ("not a regular file", "file")}
    changes = {}
    try:
        with open(spec.dest, "rb") as handle:
            if handle.read() != spec.content:
                changes["content"] = ("old", "new")
    except OSError as exc:
        raise FilesError(f"cannot read {spec.dest}: {exc.strerror}") from exc
    changes.update(_fs.stat_changes(st, spec.mode, spec.uid, spec.gid))
    return changes


def make_directories(path: str, mode: int, uid: int, gid: int) -> None:
    """Create ``path`` and its missing parents with ``mode`` and owner (existing ones are left alone)."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
            os.chmod(directory, mode)  # not reduced by the umask
            if uid != UNCHANGED or gid != UNCHANGED:
                os.chown(directory, uid, gid)
        except OSError as exc:
            raise FilesError(f"cannot create directory {directory}: {exc.strerror}") from exc


def is_stale(spec: FileSpec) -> bool:
    """Whether an existing file that ``spec`` does not ``force`` has other content than the spec's."""
    if spec.force:
        return False
    try:
        with open(spec.dest, "rb") as handle:
            return handle.read() != spec.content
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise FilesError(f"cannot read {spec.dest}: {exc.strerror}") from exc


def directory_changes(path: str, mode: int, uid: int, gid: int) -> list[str]:
    """What ensuring the directory ``path`` changes: ``created``, or ``mode``/``owner``/``group`` of an existing one."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return ["created"]
    except OSError as exc:
        raise FilesError(f"cannot read {path}: {exc.strerror}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise FilesError(f"{path} exists and is not a directory")
    return list(_fs.stat_changes(st, mode, uid, gid))


def old_text(path: str) -> str:
    """The text of a file on disk for a content diff; empty when there is none or it is not a regular file."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def content_diff(spec: FileSpec, old: str) -> dict:
    """The content diff of a file marked ``diff``."""
    return {"before": old, "after": spec.content.decode("utf-8", errors="replace"),
            "before_header": spec.dest, "after_header": spec.dest}


def directory_entries(entries, default_mode: int) -> list[tuple[str, int]]:
    """(path, mode) of each entry of ``directories``: a path (``default_mode``) or a dict with ``path`` and ``mode``."""
    found = []
    for entry in entries:
        path, mode = (entry.get("path"), entry.get("mode")) if isinstance(entry, Mapping) else (entry, None)
        if not isinstance(path, str) or not os.path.isabs(path):
            raise FilesError(f"directories: {path!r} must be an absolute path")
        found.append((os.path.normpath(path), default_mode if mode is None else parse_mode(mode)))
    return found


def unit_names(paths) -> list[str]:
    """The units that unit files at ``paths`` define, as a unit is named without and with its ``.service``."""
    names = []
    for path in paths:
        name = os.path.basename(path)
        names.append(name)
        if name.endswith(".service"):
            names.append(name[:-len(".service")])
    return names


def ordered_services(services) -> list[str]:
    return sorted(set(services))


def _block_digest(entry: Mapping) -> str | None:
    return None if entry.get("block") is None else _file_record.block_digest(str(entry.get("marker") or ""), str(entry["block"]))


def asked_state(params: Mapping) -> dict:
    """What a run with ``params`` asks of the host, in the terms of _file_record.settled_result: each file's
    dest, content sha256 (none for a marked block, given by its digest instead), mode, owner, group and force; the
    directories with their mode and owner; the absent paths; the running and stopped units. FilesError as the
    module would raise it."""
    files = []
    for entry in params.get("files") or []:
        block = _block_digest(entry)
        mode = entry.get("mode") if entry.get("mode") is not None else params.get("mode") or DEFAULT_MODE
        files.append({"dest": os.path.normpath(str(entry.get("dest"))), "sha256": None if block else _file_record.sha256_hex(entry_content(entry)),
                      "block": block, "mode": parse_mode(mode), "force": entry.get("force") is not False,
                      "services": list(entry.get("services") or ()),
                      "owner": entry.get("owner") if entry.get("owner") is not None else params.get("owner"),
                      "group": entry.get("group") if entry.get("group") is not None else params.get("group")})
    directory_mode = parse_mode(params.get("directory_mode") or DEFAULT_DIRECTORY_MODE)
    return {"files": files,
            "directories": [(path, mode, params.get("owner"), params.get("group"))
                            for path, mode in directory_entries(params.get("directories") or [], directory_mode)],
            "absent": [os.path.normpath(str(path)) for path in params.get("absent") or []],
            "running": list(params.get("running_units") or []), "stopped": list(params.get("stopped_units") or [])}


class FileBundleBackend:
    """Plans every file of the bundle, then (unless in check mode) writes the differences."""

    def __init__(self, params: Mapping, check_mode: bool = False, diff: bool = False, run_command=None, record_path: str = "") -> None:
        self.params = params
        self.check_mode = check_mode
        self.diff = diff
        # With record_path, each run notes its files there (plugins/module_utils/_file_record.py).
        self.record_path = record_path
        # run_command(argv) -> (rc, stdout, stderr), for the files' validate commands.
        self.run_command = run_command

    def run(self) -> dict:
        specs = specs_from_params(self.params)
        directory_mode = parse_mode(self.params.get("directory_mode") or DEFAULT_DIRECTORY_MODE)
        uid, gid = resolve_owner(self.params.get("owner")), resolve_group(self.params.get("group"))
        directories = [(path, mode, directory_changes(path, mode, uid, gid))
                       for path, mode in directory_entries(self.params.get("directories") or [], directory_mode)]
        units = UnitsBackend(self.params.get("running_units") or [], self.params.get("stopped_units") or [],
                             self.params.get("reload_units") or [], run_command=self.run_command, check_mode=self.check_mode)
        plans = [(spec, file_changes(spec)) for spec in specs]
        # Read before anything is written: a file this run creates is not stale.
        stale = [spec.dest for spec, changes in plans if not changes and is_stale(spec)]
        # Which process of each service reads the files now: one that runs while its file changes owes a restart.
        record = _file_record.read_record(self.record_path) if self.record_path else {}
        invocations = self._invocations(plans, record)
        # The old text of the changed files marked diff, read before anything is written.
        shown = [(spec, changes, old_text(spec.dest)) for spec, changes in plans
                 if self.diff and spec.diff and ({"created", "content"} & set(changes))]
        written = {spec.dest for spec in specs}
        removals = []
        for path in self.params.get("absent") or []:
            if not os.path.isabs(path):
                raise FilesError(f"absent: {path!r} must be an absolute path")
            path = os.path.normpath(path)
            if path in written:
                raise FilesError(f"absent: {path} is also in files")
            if os.path.lexists(path):
                if os.path.isdir(path) and not os.path.islink(path):
                    raise FilesError(f"absent: {path} is a directory; only files are removed")
                removals.append(path)
        if not self.check_mode:
            # Every checked file passes before anything is written.
            for spec, changes in plans:
                if spec.validate and ({"created", "content"} & set(changes)):
                    self._validate(spec)
            self._ensure_directories(directories, uid, gid)
            self._write(plans, directory_mode)
            for path in removals:
                try:
                    os.unlink(path)
                except OSError as exc:
                    raise FilesError(f"cannot remove {path}: {exc.strerror}") from exc
        files = [{"dest": spec.dest, "changed": bool(changes), "changes": [kind for kind in CHANGE_KINDS if kind in changes]}
                 for spec, changes in plans]
        changed = [spec for spec, changes in plans if changes]
        changed_directories = [path for path, _mode, changes in directories if changes]
        unit_files_changed = [spec.dest for spec in changed if spec.dest.startswith(UNIT_DIRECTORIES)]
        try:
            unit_changes = units.run(files_changed=bool(changed or removals), daemon_reload=bool(unit_files_changed),
                                     pending_units=unit_names(unit_files_changed))
        except UnitsError as exc:
            raise FilesError(f"{exc} (files written: {', '.join(spec.dest for spec in changed) or 'none'})") from exc
        # A unit this run reloaded has read the new files (one it started was not running before: it owes nothing).
        reloaded = {name for name, kinds in unit_changes.items() if "reloaded" in kinds}
        owed = {spec.dest: {service: invocations[service] for service in spec.services if service in invocations and service not in reloaded}
                if changes else _file_record.still_owed((record.get(spec.dest) or {}).get("owed"), invocations)
                for spec, changes in plans}
        if self.record_path and not self.check_mode:
            blocks = {os.path.normpath(str(entry.get("dest"))): _block_digest(entry) for entry in self.params.get("files") or []}
            entries = {spec.dest: self._entry(spec.dest, blocks.get(spec.dest), owed[spec.dest]) for spec in specs}
            _file_record.update_record(self.record_path, {**entries, **dict.fromkeys(removals)})
        result = {
            "changed": bool(changed or changed_directories or removals or unit_changes),
            "files": files,
            "changed_files": [spec.dest for spec in changed],
            "stale_files": stale,
            "changed_directories": changed_directories,
            "removed_files": removals,
            "services_changed": ordered_services([service for spec in changed for service in spec.services]
                                                 + [service for services in owed.values() for service in services]),
            "unit_changes": unit_changes,
            "started_units": [name for name, kinds in unit_changes.items() if "started" in kinds],
        }
        if self.diff and result["changed"]:
            summary = self._diff(plans, [(path, mode, changes) for path, mode, changes in directories if changes], removals)
            before, after = units_diff(unit_changes)
            summary["before"] += "".join(line + "\n" for line in before)
            summary["after"] += "".join(line + "\n" for line in after)
            result["diff"] = [summary] + [content_diff(spec, old) for spec, changes, old in shown]
        return result

    def _invocations(self, plans, record: dict) -> dict[str, str]:
        """{service: invocation ID} of the running services that the files changing now, or a restart owed, name."""
        if not self.record_path or self.run_command is None:
            return {}
        names = unique([service for spec, changes in plans if changes for service in spec.services]
                       + [service for spec, changes in plans if not changes for service in ((record.get(spec.dest) or {}).get("owed") or {})])
        if not names:
            return {}
        rc, out, _err = self.run_command(["systemctl", *invocations_command(names)])
        # Without a systemd to answer, no service runs under it: nothing is owed.
        return parse_invocations(out, names) if rc == 0 else {}

    @staticmethod
    def _entry(dest: str, block: str | None, owed: dict) -> dict | None:
        entry = _file_record.file_entry(dest, block)
        return {**entry, "owed": owed} if entry is not None and owed else entry

    def _validate(self, spec: FileSpec) -> None:
        """Run the file's checker on its new content, in a temporary file (in its directory when that exists)."""
        if self.run_command is None:
            raise FilesError(f"{spec.dest}: validate needs a command runner")
        directory = os.path.dirname(spec.dest)
        fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(spec.dest)}.", suffix=".check", dir=directory if os.path.isdir(directory) else None)
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), spec.mode)
                handle.write(spec.content)
            command = spec.validate.replace("%s", temp)
            rc, out, err = self.run_command(shlex.split(command))
        finally:
            os.unlink(temp)
        if rc != 0:
            raise FilesError(f"{spec.dest}: the check `{spec.validate}` refused the new content, nothing written: "
                             f"{(err or out).strip() or f'exit code {rc}'}")

    @staticmethod
    def _ensure_directories(directories, uid: int, gid: int) -> None:
        for path, mode, changes in directories:
            if "created" in changes:
                make_directories(path, mode, uid, gid)
            elif changes:
                apply_attributes(path, mode, uid, gid)

    @staticmethod
    def _write(plans, directory_mode: int) -> None:
        directories = set()
        for spec, changes in plans:
            if not changes:
                continue
            if "created" in changes or "content" in changes:
                make_directories(os.path.dirname(spec.dest), directory_mode, spec.uid, spec.gid)
                write_atomic(spec.dest, spec.content, spec.mode, spec.uid, spec.gid, sync_dir=False, in_place_fallback=spec.unsafe_writes)
                directories.add(os.path.dirname(spec.dest))
            else:
                apply_attributes(spec.dest, spec.mode, spec.uid, spec.gid)
        for directory in sorted(directories):
            _fs.sync_directory(directory)

    @staticmethod
    def _diff(plans, directories, removals=()) -> dict:
        """One line per changed directory and file, before and after; contents are never shown."""
        before, after = [], []
        for path, mode, changes in directories:
            before.append(f"{path}/: " + ("absent" if "created" in changes else "different " + ", ".join(changes)))
            after.append(f"{path}/: mode {mode:04o}")
        for path in removals:
            before.append(f"{path}: present")
            after.append(f"{path}: absent")
        for spec, changes in plans:
            if not changes:
                continue
            if "created" in changes:
                before.append(f"{spec.dest}: absent")
                after.append(f"{spec.dest}: mode {spec.mode:04o}")
                continue
            old = ", ".join(f"{kind} {value[0]}" for kind, value in changes.items() if kind != "content")
            new = ", ".join(f"{kind} {value[1]}" for kind, value in changes.items() if kind != "content")
            if "content" in changes:
                old, new = ", ".join(filter(None, ["content (old)", old])), ", ".join(filter(None, ["content (new)", new]))
            before.append(f"{spec.dest}: {old}")
            after.append(f"{spec.dest}: {new}")
        return {"before": "\n".join(before) + "\n", "after": "\n".join(after) + "\n", "before_header": "files", "after_header": "files"}

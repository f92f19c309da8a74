# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Install release artifacts on a host, each verified there against its sha256: the backend of
the artifact_install module (its action plugin resolves sources and the lock on the controller,
plugins/module_utils/_artifacts.py).

Layout: ``<install_dir>/<name>/v<version>/`` holds one version (an archive unpacked, or the single
binary), ``<bin_dir>/<binary>`` links into it, so an upgrade switches links and the previous
version stays for a rollback; the archive that was installed is kept in ``<cache_dir>``.

Every run checks the installed binaries against the reference: the single file's sha256, or the
locked sha256 of each binary unpacked from an archive. Anything missing or different is fetched
again (downloaded, or copied from the controller), verified before it replaces anything, and every
artifact of the batch is verified before the first one is installed.

The result names the binaries whose content changed, plus the daemons still running a replaced
copy (an earlier run that was stopped before its restart): the roles restart their services from it.

A file is hashed again only when its inode, size, mtime or ctime changed since it was last hashed
(``<install_dir>/digests.json``, as git's index does): any write to a file moves its ctime, which only
the kernel sets, so a re-run reads no binary it verified before. Removing that file makes the next run
hash everything.

Each install also records the artifact in ``<install_dir>/installed.json`` (its links and its
daemons). With ``verify_recorded``, the module checks every recorded artifact against the lock
as well and returns the keys (``artifact_key``) of those that are installed as locked: the first
install of a run on a host checks there the later phases' binaries, and a phase whose every
artifact is among them does not call the module again in that run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError
from ansible_collections.kubeforge.cluster.plugins.module_utils._fs import moved, sync_directory

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_PLAIN = re.compile(r"^(?!\.\.?$)[A-Za-z0-9._+-]+$")  # a name or version used as a path component
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
_CHUNK = 1 << 20
# Artifacts of a batch verified (fetched, hashed, unpacked) at once: decompressing and hashing release
# Python's lock, so one host's install uses its cores instead of one.
PLAN_WORKERS = 4
_DELETED = " (deleted)"
RECORD = "installed.json"  # in install_dir: what each install left, for verify_recorded
DIGESTS = "digests.json"  # in install_dir: each installed file's sha256 with the stat it had then


class InstallError(KubeforgeError):
    """An artifact cannot be installed; ``errors`` lists every problem of the batch."""

    def __init__(self, msg: str, errors: list[str] | None = None) -> None:
        super().__init__(msg)
        self.errors = list(errors) if errors else [msg]


class _NeedsSource(Exception):
    """The offline file must first be copied to the host (the action plugin does it)."""


def file_sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return _sha256_of(handle)


def digest_or_none(path: str) -> str | None:
    """The sha256 of the regular file at ``path`` (links followed), or None when there is none."""
    try:
        return file_sha256(path) if os.path.isfile(path) else None
    except OSError:
        return None


def _stamp(found: os.stat_result) -> list:
    return [found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns]


class DigestCache:
    """The sha256 of the files in ``install_dir`` (links followed), read again only when a file's stamp (inode,
    size, mtime, ctime) is not the one it had when it was hashed. Threads of a batch share it. Kept in
    ``<install_dir>/digests.json``, or at ``path`` (the controller keeps its offline files' elsewhere)."""

    def __init__(self, install_dir: str, path: str = "") -> None:
        self.path = path or os.path.join(install_dir, DIGESTS)
        self.root = os.path.realpath(install_dir) + os.sep
        self._lock = threading.Lock()
        try:
            with open(self.path, encoding="utf-8") as handle:
                loaded = json.load(handle)
        except (OSError, ValueError):
            loaded = {}
        self.loaded = loaded if isinstance(loaded, dict) else {}
        self.entries = dict(self.loaded)

    def digest(self, path: str) -> str | None:
        """The sha256 of the regular file at ``path``, or None when there is none."""
        real = os.path.realpath(path)
        try:
            before = os.stat(real)
        except OSError:
            return None
        if not stat.S_ISREG(before.st_mode):
            return None
        entry = self.entries.get(real)
        if isinstance(entry, dict) and entry.get("stamp") == _stamp(before):
            return entry.get("sha256")
        found = digest_or_none(real)
        with contextlib.suppress(OSError):
            if found and _stamp(os.stat(real)) == _stamp(before):  # not written to while it was read
                self.note(real, found)
        return found

    def note(self, path: str, sha256: str) -> None:
        """Remember the sha256 of a file in install_dir (one this run hashed, or wrote from verified bits)."""
        real = os.path.realpath(path)
        if real.startswith(self.root):
            with self._lock:
                self.entries[real] = {"stamp": _stamp(os.stat(real)), "sha256": sha256}

    def save(self) -> None:
        """Write the entries of the files still there when they differ from those read."""
        entries = {path: entry for path, entry in self.entries.items() if os.path.isfile(path)}
        if entries != self.loaded:
            _write_json(self.path, entries)


def parse_sidecar(text: str) -> str | None:
    """The sha256 in a '.sha256' file's text (first word, as sha256sum writes it), or None."""
    words = text.split()
    return words[0].lower() if words and SHA256_RE.match(words[0].lower()) else None


def is_archive(filename: str) -> bool:
    return filename.endswith(ARCHIVE_SUFFIXES)


def stripped(name: str, strip: int) -> str | None:
    """A tar member's path with its first ``strip`` components dropped, as tar --strip-components
    counts them ('./bridge' has two); None when nothing is left. Refuses paths that leave the directory."""
    if name.startswith("/"):
        raise InstallError(f"archive member {name!r} has an absolute path")
    parts = [part for part in name.split("/") if part][strip:]
    parts = [part for part in parts if part != "."]
    if ".." in parts:
        raise InstallError(f"archive member {name!r} leaves the install directory")
    return "/".join(parts) or None


def read_archive(path: str, strip: int, binaries, dest: str = "") -> dict[str, str]:
    """The sha256 of each of ``binaries`` in the archive at ``path``; with ``dest``, the archive's
    directories and regular files are unpacked there in the same pass (links and devices are skipped:
    release archives have none, and a link could point anywhere). One decompression either way."""
    found = {}
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            relative = stripped(member.name, strip)
            if not relative or not (member.isfile() or member.isdir()):
                continue
            target = os.path.join(dest, relative) if dest else ""
            if member.isdir():
                if target:
                    os.makedirs(target, 0o755, exist_ok=True)
                continue
            hashed = relative in binaries
            if not hashed and not target:
                continue
            digest = hashlib.sha256()
            if target:
                os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
            with tar.extractfile(member) as source, (open(target, "wb") if target else contextlib.nullcontext()) as out:
                for block in iter(lambda: source.read(_CHUNK), b""):
                    if hashed:
                        digest.update(block)
                    if out:
                        out.write(block)
                if out:
                    out.flush()
                    os.fsync(out.fileno())
            if target:
                os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
            if hashed:
                found[relative] = digest.hexdigest()
    return found


def process_executables(proc: str = "/proc") -> list[str]:
    """The executable of every process (``/proc/<pid>/exe``; ' (deleted)' when its file was replaced)."""
    found = []
    try:
        pids = [entry for entry in os.listdir(proc) if entry.isdigit()]
    except OSError:
        return found
    for pid in pids:
        try:
            found.append(os.readlink(os.path.join(proc, pid, "exe")))
        except OSError:
            continue  # a kernel thread, or a process that ended
    return found


def runs_replaced_copy(executables, binary: str, current: str, link: str, install_root: str) -> bool:
    """Whether a process runs ``binary`` from a file that is no longer the installed one: a copy
    that was replaced (deleted), another version's, or the file the link replaced."""
    for exe in executables:
        deleted = exe.endswith(_DELETED)
        path = exe[:-len(_DELETED)] if deleted else exe
        ours = path == link or (path.startswith(install_root + os.sep) and os.path.basename(path) == binary)
        if ours and (deleted or path != current):
            return True
    return False


def version_dir(install_dir: str, name: str, version: str) -> str:
    """Where a version of an artifact is installed (its binaries, or its archive's tree)."""
    return os.path.join(install_dir, name, f"v{version}")


def artifact_key(name: str, version: str, arch: str, bin_dir: str, links, daemons) -> str:
    """One artifact as a role asks for it: what verify_recorded returns and the artifacts_verified filter compares."""
    return json.dumps([name, str(version), arch, bin_dir, sorted(links), sorted(daemons)], separators=(",", ":"))


def read_record(install_dir: str) -> dict:
    """The artifacts earlier installs recorded, by name; {} when there is no readable record."""
    try:
        with open(os.path.join(install_dir, RECORD), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def write_record(install_dir: str, record: dict, previous: dict) -> None:
    """Replace the record (a temporary file renamed over it) when it differs from ``previous``, the one read."""
    if record != previous:
        _write_json(os.path.join(_makedirs(install_dir), RECORD), record)


def _write_json(path: str, data: dict) -> None:
    """Replace the file at ``path`` by a temporary file renamed over it."""
    _makedirs(os.path.dirname(path))
    temp = f"{path}.kubeforge-new"
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def platform(arch: str) -> str:
    return f"linux/{arch}"


def lock_entry(lock: Mapping, name: str, version: str, arch: str) -> dict | None:
    """The lock's entry {sha256, files?} of one artifact, or None."""
    return (((lock.get(name) or {}).get(str(version)) or {}).get(platform(arch)))


def locked_digests(lock: Mapping, name: str, version: str, arch: str, archive: bool, links) -> dict:
    """{binary: sha256} the lock holds for an artifact's links; {} when it holds none for some."""
    entry = lock_entry(lock, name, version, arch) or {}
    digests = dict(entry.get("files") or {}) if archive else ({name: entry["sha256"]} if entry.get("sha256") else {})
    return {binary: digests[binary] for binary in links} if all(binary in digests for binary in links) else {}


def recorded_as_locked(record: dict, lock: Mapping, executables, install_dir: str, digest: Callable = digest_or_none) -> list[str]:
    """The keys of the recorded artifacts installed exactly as the lock says: every link points at its
    version's file, each file has the locked sha256, and no daemon runs a replaced copy."""
    keys = []
    for name, entry in sorted(record.items()):
        try:
            links, version, arch = dict(entry["links"]), str(entry["version"]), str(entry["arch"])
            locked = locked_digests(lock, name, version, arch, bool(entry["archive"]), links)
            installed = version_dir(install_dir, name, version)
            if not locked or any(not _points_to(link, os.path.join(installed, binary))
                                 or digest(os.path.join(installed, binary)) != locked[binary]
                                 for binary, link in links.items()):
                continue
            if any(runs_replaced_copy(executables, binary, os.path.join(installed, binary), links[binary], os.path.dirname(installed))
                   for binary in entry["daemons"]):
                continue
            keys.append(entry["key"])
        except (KeyError, TypeError, ValueError):
            continue  # a record this version of the module did not write: verified by the phase itself
    return keys


@dataclasses.dataclass(frozen=True)
class Artifact:
    name: str
    version: str
    arch: str
    filename: str
    binaries: tuple
    daemons: tuple
    strip_components: int
    bin_dir: str
    url: str
    src: str
    offline: bool
    sha256: str
    checksum_url: str
    files: dict
    origin: str
    location: str
    locked: bool

    @property
    def label(self) -> str:
        return f"{self.name} {self.version} linux/{self.arch}"

    @property
    def archive(self) -> bool:
        return is_archive(self.filename)

    @property
    def links(self) -> tuple:
        """The binaries linked into bin_dir: those named in an archive, or the single file itself."""
        return self.binaries if self.archive else (self.name,)

    @property
    def key(self) -> str:
        return artifact_key(self.name, self.version, self.arch, self.bin_dir, self.links, self.daemons)


def artifacts_from_params(params: Mapping) -> list[Artifact]:
    """The batch, checked; every problem is reported at once."""
    artifacts, problems = [], []
    for index, entry in enumerate(params.get("artifacts") or []):
        where = f"artifacts[{index}] ({entry.get('name')} {entry.get('version')})"
        filename = entry.get("filename") or ""
        binaries = tuple(entry.get("binaries") or ())
        sha256 = (entry.get("sha256") or "").lower()
        wrong = []
        if not _PLAIN.match(str(entry.get("name") or "")) or not _PLAIN.match(str(entry.get("version") or "")):
            wrong.append("name and version must be plain names (letters, digits, '.', '_', '+', '-')")
        if not filename or "/" in filename:
            wrong.append("filename must be a plain file name")
        if is_archive(filename) and not binaries:
            wrong.append("an archive needs the binaries to link from it")
        if any(not name or "/" in name or name in (".", "..") for name in binaries):
            wrong.append("binaries must be plain file names")
        if sha256 and not SHA256_RE.match(sha256):
            wrong.append(f"sha256 {sha256!r} is not 64 hex digits")
        if not sha256 and not entry.get("checksum_url"):
            wrong.append("needs sha256 or checksum_url")
        if bool(entry.get("url")) == bool(entry.get("offline")):
            wrong.append("needs exactly one of url and offline")
        if wrong:
            problems.extend(f"{where}: {text}" for text in wrong)
            continue
        links = binaries if is_archive(filename) else (entry["name"],)
        artifacts.append(Artifact(
            name=entry["name"], version=str(entry["version"]), arch=entry.get("arch") or "amd64", filename=filename,
            binaries=binaries, daemons=tuple(name for name in entry.get("daemons") or () if name in links),
            strip_components=int(entry.get("strip_components") or 0), bin_dir=entry.get("bin_dir") or params["bin_dir"],
            url=entry.get("url") or "", src=entry.get("src") or "", offline=bool(entry.get("offline")), sha256=sha256,
            checksum_url=entry.get("checksum_url") or "", files=dict(entry.get("files") or {}),
            origin=entry.get("origin") or "the reference checksum", location=entry.get("location") or entry.get("url") or filename,
            locked=bool(entry.get("locked"))))
    if problems:
        raise InstallError(f"{len(problems)} problem(s) in artifacts, nothing installed: " + "; ".join(problems), problems)
    return artifacts


@dataclasses.dataclass
class _Plan:
    artifact: Artifact
    version_dir: str
    before: dict
    sha256: str = ""
    files: dict = dataclasses.field(default_factory=dict)
    install: bool = False
    fetched: str = ""        # the verified single file, or the archive's unpacked tree (temporary)
    archive_temp: str = ""   # a verified archive fetched in this run, kept in the cache once installed
    needs_source: bool = False

    def target(self, binary: str) -> str:
        return os.path.join(self.version_dir, binary)


class ArtifactInstaller:
    """Verifies every artifact of the batch, then installs and links those that differ.

    ``fetch(url)`` returns a readable binary stream (the module passes Ansible's open_url); ``proc``
    is where the processes' executables are read.
    """

    def __init__(self, params: Mapping, fetch: Callable, check_mode: bool = False, proc: str = "/proc") -> None:
        self.params = params
        self.fetch = fetch
        self.check_mode = check_mode
        self.proc = proc
        self._temporaries = []  # removed at the end, whatever happened (installed ones were renamed away)
        self._move_copies = False
        self.digests = DigestCache(params["install_dir"])

    def run(self) -> dict:
        artifacts = artifacts_from_params(self.params)
        # With every offline file here, this run cannot end waiting for one: the copies are the run's to move away.
        self._move_copies = all(artifact.src for artifact in artifacts if artifact.offline)
        plans, problems = [], []
        try:
            with ThreadPoolExecutor(max_workers=PLAN_WORKERS) as pool:
                for plan, errors in pool.map(self._plan_or_errors, artifacts):
                    plans.append(plan)
                    problems.extend(errors)
            if problems:
                raise InstallError("; ".join(problems) + "; nothing was installed", problems)
            # An offline file still on the controller: nothing is installed until it is here and verified too.
            waiting = any(plan.needs_source for plan in plans) and not self.check_mode
            executables = process_executables(self.proc)
            results = [self._result(plan) if waiting else self._apply(plan, executables) for plan in plans]
        finally:
            for path in self._temporaries:
                _remove(path)
        install_dir = self.params["install_dir"]
        previous = read_record(install_dir)
        record = dict(previous)
        if not waiting and not self.check_mode:
            for plan in plans:
                record[plan.artifact.name] = self._record_entry(plan)
            write_record(install_dir, record, previous)
        changed_binaries = sorted({binary for result in results for binary in result["changed_binaries"]})
        outcome = {
            "changed": any(result["changed"] for result in results),
            "artifacts": results,
            "changed_binaries": changed_binaries,
            "needs_source": [result["name"] for result in results if result["needs_source"]],
        }
        if self.params.get("verify_recorded") and not waiting:
            outcome["verified"] = recorded_as_locked(record, self.params.get("lock") or {}, executables, install_dir, self.digests.digest)
        if not self.check_mode:
            self.digests.save()
        return outcome

    @staticmethod
    def _record_entry(plan: _Plan) -> dict:
        artifact = plan.artifact
        return {"key": artifact.key, "version": artifact.version, "arch": artifact.arch, "archive": artifact.archive,
                "links": {binary: os.path.join(artifact.bin_dir, binary) for binary in artifact.links}, "daemons": list(artifact.daemons)}

    # -- verify: nothing installed yet ---------------------------------------------------------

    def _plan_or_errors(self, artifact: Artifact) -> tuple[_Plan | None, list[str]]:
        try:
            return self._plan(artifact), []
        except InstallError as exc:
            return None, exc.errors

    def _plan(self, artifact: Artifact) -> _Plan:
        plan = _Plan(artifact, version_dir(self.params["install_dir"], artifact.name, artifact.version), before={})
        current = {binary: self.digests.digest(plan.target(binary)) for binary in artifact.links}
        # What each link runs now (hashed once when it already points at this version).
        for binary in artifact.links:
            link = os.path.join(artifact.bin_dir, binary)
            plan.before[binary] = current[binary] if _points_to(link, plan.target(binary)) else self.digests.digest(link)
        pin = artifact.sha256
        known = dict(artifact.files) if artifact.archive else ({artifact.name: pin} if pin else {})
        if known and all(current[binary] == known.get(binary) for binary in artifact.links):
            # The installed binaries are the reference's bits: nothing to fetch.
            plan.sha256, plan.files = pin, ({binary: current[binary] for binary in artifact.links} if artifact.archive else {})
            return plan
        if not pin:
            pin = self._read_checksum_url(artifact)
        plan.sha256 = pin
        if not artifact.archive:
            plan.install = current[artifact.name] != pin
            if plan.install:
                self._fetch_verified(plan, pin, plan.version_dir)
            return plan
        cached = os.path.join(self.params["cache_dir"], artifact.filename)
        archive = cached if self.digests.digest(cached) == pin else ""
        if not archive:
            archive = self._fetch_verified(plan, pin, self.params["cache_dir"])
            if not archive:  # check mode, or the offline file is still on the controller
                plan.install = True
                return plan
        # One pass over the archive: the linked binaries hashed and, outside check mode, the tree unpacked
        # in a temporary directory that is removed unless every check below passes and it is installed.
        unpack_to = ""
        if not self.check_mode:
            unpack_to = tempfile.mkdtemp(prefix=f".v{artifact.version}.", dir=_makedirs(os.path.dirname(plan.version_dir)))
            self._temporaries.append(unpack_to)
        digests = self._read_archive(artifact, archive, unpack_to)
        locked_differs = [f"{artifact.label}: {artifact.filename} has the locked sha256, but its {binary} has sha256 {digests[binary]} "
                          f"where {artifact.origin} records {artifact.files[binary]}"
                          for binary in artifact.links if binary in artifact.files and artifact.files[binary] != digests[binary]]
        if locked_differs:
            raise InstallError("; ".join(locked_differs), locked_differs)
        plan.files = digests
        plan.install = any(current[binary] != digests[binary] for binary in artifact.links)
        if plan.install:
            plan.fetched = unpack_to
        return plan

    def _read_checksum_url(self, artifact: Artifact) -> str:
        """First use of a download without a published checksum: the .sha256 published beside it."""
        try:
            with self.fetch(artifact.checksum_url) as response:
                text = response.read(4096).decode("utf-8", "replace")
        except (OSError, InstallError) as exc:
            raise InstallError(f"{artifact.label}: cannot read its checksum from {artifact.checksum_url}: {exc}") from exc
        pin = parse_sidecar(text)
        if not pin:
            raise InstallError(f"{artifact.label}: {artifact.checksum_url} holds no sha256")
        return pin

    def _fetch_verified(self, plan: _Plan, pin: str, directory: str) -> str:
        """Download or copy the artifact into a temporary file in ``directory``, hashing it on the
        way; remove it and fail when its sha256 is not ``pin``. '' in check mode and when the
        offline file is not on the host yet."""
        artifact = plan.artifact
        if artifact.offline and not artifact.src:
            plan.needs_source = True
            return ""
        if self.check_mode:
            return ""
        fd, temp = tempfile.mkstemp(prefix=f".{artifact.filename}.", suffix=".part", dir=_makedirs(directory))
        os.close(fd)
        self._temporaries.append(temp)
        try:
            # The action plugin's copy is moved here when it is on this file system: read once, not written again.
            if artifact.src and self._move_copies and moved(artifact.src, temp):
                with open(temp, "rb") as copied:
                    found = _sha256_of(copied)
            else:
                with open(temp, "wb") as out, (open(artifact.src, "rb") if artifact.src else self.fetch(artifact.url)) as source:
                    found = _sha256_of(source, out)
            os.chmod(temp, 0o755 if not artifact.archive else 0o644)
            with open(temp, "rb") as written:
                os.fsync(written.fileno())
        except (OSError, InstallError) as exc:
            raise InstallError(f"{artifact.label}: cannot {'copy' if artifact.src else 'download'} {artifact.location}: {exc}") from exc
        if found != pin:
            if artifact.locked:
                message = f"{artifact.label}: locked sha256 {pin} ({artifact.origin}), found {found} ({artifact.location})"
            else:
                message = f"{artifact.label}: {artifact.location} has sha256 {found}, {artifact.origin} says {pin}"
            raise InstallError(message)
        plan.fetched, plan.archive_temp = (temp, "") if not artifact.archive else ("", temp)
        return temp

    @staticmethod
    def _read_archive(artifact: Artifact, archive: str, unpack_to: str) -> dict:
        try:
            digests = read_archive(archive, artifact.strip_components, artifact.links, unpack_to)
        except (OSError, tarfile.TarError) as exc:
            raise InstallError(f"{artifact.label}: cannot {'unpack' if unpack_to else 'read'} {artifact.filename}: {exc}") from exc
        missing = [binary for binary in artifact.links if binary not in digests]
        if missing:
            raise InstallError(f"{artifact.label}: {artifact.filename} has no {', '.join(missing)} "
                               f"once {artifact.strip_components} leading path component(s) are dropped")
        return digests

    # -- install and link ----------------------------------------------------------------------

    @staticmethod
    def _result(plan: _Plan) -> dict:
        artifact = plan.artifact
        result = {"name": artifact.name, "version": artifact.version, "platform": f"linux/{artifact.arch}", "sha256": plan.sha256,
                  "changed": False, "changed_binaries": [], "needs_source": plan.needs_source}
        if artifact.archive:
            result["files"] = plan.files
        return result

    def _apply(self, plan: _Plan, executables: list) -> dict:
        artifact = plan.artifact
        result = self._result(plan)
        written = False
        if plan.install and plan.fetched and not self.check_mode:
            _makedirs(plan.version_dir)
            if artifact.archive:
                _move_tree(plan.fetched, plan.version_dir)
                if plan.archive_temp:
                    os.replace(plan.archive_temp, os.path.join(self.params["cache_dir"], artifact.filename))
                    sync_directory(self.params["cache_dir"])
            else:
                os.replace(plan.fetched, plan.target(artifact.name))
            sync_directory(plan.version_dir)
            written = True
        linked = [binary for binary in artifact.links
                  if _ensure_link(os.path.join(artifact.bin_dir, binary), plan.target(binary), self.check_mode)]
        if self.check_mode:
            after = {binary: (plan.files.get(binary) or (plan.sha256 if not artifact.archive else None) or "unknown")
                     if plan.install or binary in linked else plan.before[binary] for binary in artifact.links}
        elif written or linked:
            # A link to this version runs the bits verified above (installed now, or found there by _plan).
            verified = plan.files if artifact.archive else {artifact.name: plan.sha256}
            after = {binary: verified[binary] if _points_to(link, plan.target(binary)) else self.digests.digest(link)
                     for binary, link in ((binary, os.path.join(artifact.bin_dir, binary)) for binary in artifact.links)}
            if written:
                for binary in artifact.links:
                    self.digests.note(plan.target(binary), verified[binary])
        else:
            after = plan.before
        stale = [binary for binary in artifact.daemons
                 if runs_replaced_copy(executables, binary, plan.target(binary), os.path.join(artifact.bin_dir, binary),
                                       os.path.dirname(plan.version_dir))]
        result["changed_binaries"] = [binary for binary in artifact.links if plan.before[binary] != after[binary] or binary in stale]
        result["changed"] = bool(written or linked or stale or (self.check_mode and plan.install))
        return result


def _sha256_of(source, out=None) -> str:
    """The sha256 of what ``source`` reads, written on the way to ``out`` when given."""
    digest = hashlib.sha256()
    for block in iter(lambda: source.read(_CHUNK), b""):
        digest.update(block)
        if out:
            out.write(block)
    return digest.hexdigest()


def _makedirs(path: str) -> str:
    # exist_ok: the artifacts of a batch are verified side by side, and share the cache directory.
    if not os.path.isdir(path):
        os.makedirs(path, 0o755, exist_ok=True)
    return path


def _move_tree(source: str, dest: str) -> None:
    """Rename every file of ``source`` over its place in ``dest`` (same file system): a running
    program keeps its old file, and no reader sees a partial one."""
    for root, dirs, files in os.walk(source):
        relative = os.path.relpath(root, source)
        target_root = dest if relative == "." else os.path.join(dest, relative)
        for name in dirs:
            path = os.path.join(target_root, name)
            if os.path.lexists(path) and not os.path.isdir(path):
                os.unlink(path)
            _makedirs(path)
        for name in files:
            os.replace(os.path.join(root, name), os.path.join(target_root, name))


def _points_to(link: str, target: str) -> bool:
    try:
        return os.readlink(link) == target
    except OSError:
        return False


def _ensure_link(link: str, target: str, check_mode: bool) -> bool:
    """Make ``link`` a symbolic link to ``target``; True when it was (or would be) changed."""
    try:
        if os.readlink(link) == target:
            return False
    except FileNotFoundError:
        pass
    except OSError:  # a file that is not a link
        if os.path.isdir(link):
            raise InstallError(f"{link} is a directory, not a link to {target}") from None
    if check_mode:
        return True
    _makedirs(os.path.dirname(link))
    temp = f"{link}.kubeforge-new"
    _remove(temp)
    os.symlink(target, temp)
    os.replace(temp, link)
    sync_directory(os.path.dirname(link))
    return True


def _remove(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass

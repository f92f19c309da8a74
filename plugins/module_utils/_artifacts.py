# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where each release artifact comes from, which sha256 it must have, and the cluster's lock.

An artifact has one path relative to its release site (the "release layout"). The same path
is used below a download base URL, a mirror, or the offline artifacts directory, so an offline
directory is simply a copy of the release sites' trees.

The lock file (``kubeforge_artifacts_lock_file``, beside the inventory) records the sha256 of
every artifact the cluster installs, per name, version and platform, on first use; from then on
it is the only reference: every later run and every node added later must install those bits.
First use takes the checksum the collection carries (``published``), else the ``.sha256``
beside the file (trust on first use; docs/offline-install.md says how to pre-fill the lock).
An archive's entry also records the sha256 of each binary unpacked from it, so that a host's
installed binaries are checked without the archive.

Controller side only: the published checksums live in ``_data/``; the host side of an install
is ``_artifact_install``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import os
import re
from collections.abc import Callable

from ansible.module_utils.common.yaml import yaml_dump, yaml_load

from ansible_collections.kubeforge.cluster.plugins.module_utils import _fs
from ansible_collections.kubeforge.cluster.plugins.module_utils._artifact_install import (
    SHA256_RE, DigestCache, file_sha256, lock_entry, parse_sidecar, platform)
from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError
from ansible_collections.kubeforge.cluster.plugins.module_utils._versions import DATA_DIR

# Release sites and the path of each artifact below them ({version}, {arch} filled in).
KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet", "kubectl")
_LAYOUT = {name: ("https://dl.k8s.io/", "release/v{version}/bin/linux/{arch}/" + name) for name in KUBE_BINARIES}
_LAYOUT.update({
    "etcd": ("https://github.com/", "etcd-io/etcd/releases/download/v{version}/etcd-v{version}-linux-{arch}.tar.gz"),
    "containerd": ("https://github.com/", "containerd/containerd/releases/download/v{version}/containerd-{version}-linux-{arch}.tar.gz"),
    "runc": ("https://github.com/", "opencontainers/runc/releases/download/v{version}/runc.{arch}"),
    "cni_plugins": ("https://github.com/", "containernetworking/plugins/releases/download/v{version}/cni-plugins-linux-{arch}-v{version}.tgz"),
    "crictl": ("https://github.com/", "kubernetes-sigs/cri-tools/releases/download/v{version}/crictl-v{version}-linux-{arch}.tar.gz"),
})
ARTIFACTS = tuple(_LAYOUT)

CHECKSUM_SOURCES = ("published", "sidecar")
LOCK_UPDATE_HINT = ("if the new file is the one every node must run (a rebuilt artifact, a corrected checksum), "
                    "replace the locked checksums with -e kubeforge_artifacts_lock_update=true (docs/offline-install.md)")
LOCK_HEADER = """\
---
# The sha256 of every release file this cluster installs, per name, version and platform, and of
# the binaries unpacked from each archive. kubeforge records a version here the first time it
# installs it; every later run, and every node added later, must install exactly these bits.
# Keep this file with the inventory (in version control). docs/offline-install.md explains how to
# pre-fill it from the official checksums and how to replace an entry on purpose:
#   ansible-playbook site.yml -i <inventory> -e kubeforge_artifacts_lock_update=true [--tags <phase>]
"""


class ArtifactsError(KubeforgeError):
    """A problem with an artifact's source, checksum or the lock; ``errors`` lists every one found."""

    def __init__(self, msg: str, errors: list[str] | None = None) -> None:
        super().__init__(msg)
        self.errors = list(errors) if errors else [msg]


@functools.lru_cache(maxsize=1)
def published_checksums() -> dict:
    with open(os.path.join(DATA_DIR, "releases.yml"), encoding="utf-8") as handle:
        return yaml_load(handle)


def relpath(name: str, version: str, arch: str) -> str:
    """Path of an artifact in its release layout, e.g. 'release/v1.36.4/bin/linux/amd64/kubelet'."""
    return _LAYOUT[name][1].format(version=version, arch=arch)


def url(name: str, version: str, arch: str, mirror: str = "") -> str:
    """Download URL: the official release site, or the same path below a mirror."""
    base = mirror.rstrip("/") + "/" if mirror else _LAYOUT[name][0]
    return base + relpath(name, version, arch)


def label(name: str, version: str, arch: str) -> str:
    """How messages name an artifact: 'kube-apiserver 1.36.4 linux/amd64'."""
    return f"{name} {version} {platform(arch)}"


def published_sha256(name: str, version: str, arch: str) -> str | None:
    """The published sha256 the collection carries, or None (control-plane binaries publish a
    .sha256 file beside each download instead)."""
    return published_checksums().get(name, {}).get(arch, {}).get(str(version))


def read_sidecar(path: str) -> str | None:
    """The sha256 in '<artifact>.sha256', or None."""
    try:
        with open(path + ".sha256", encoding="utf-8") as handle:
            return parse_sidecar(handle.read())
    except OSError:
        return None


# -- the lock ------------------------------------------------------------------------------------

def parse_lock(data: object, path: str = "the lock") -> dict:
    """The artifacts of a lock file's YAML (``{name: {version: {platform: {sha256, files}}}}``),
    checked: every checksum is 64 hex digits. An empty file is an empty lock."""
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("artifacts", {}), dict):
        raise ArtifactsError(f"{path}: not a kubeforge artifacts lock (a mapping with 'artifacts' is expected)")
    problems, lock = [], {}
    for name, versions in (data.get("artifacts") or {}).items():
        for version, platforms in (versions or {}).items() if isinstance(versions, dict) else [(None, None)]:
            for where, entry in (platforms or {}).items() if isinstance(platforms, dict) else [(None, None)]:
                text = f"{path}: {name} {version} {where}"
                if not isinstance(entry, dict) or not SHA256_RE.match(str(entry.get("sha256", ""))):
                    problems.append(f"{text}: sha256 must be 64 lowercase hex digits")
                    continue
                files = entry.get("files") or {}
                if not isinstance(files, dict) or not all(SHA256_RE.match(str(value)) for value in files.values()):
                    problems.append(f"{text}: files must map each binary to its sha256")
                    continue
                kept = {"sha256": entry["sha256"]}
                if files:
                    kept["files"] = {str(key): str(value) for key, value in files.items()}
                lock.setdefault(str(name), {}).setdefault(str(version), {})[str(where)] = kept
    if problems:
        raise ArtifactsError(f"{len(problems)} problem(s) in {path}: " + "; ".join(problems), problems)
    return lock


def load_lock(path: str) -> dict:
    """The lock file's artifacts; {} when the file does not exist yet (first use)."""
    import yaml  # the controller has PyYAML (Ansible needs it)

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml_load(handle)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ArtifactsError(f"cannot read the artifacts lock {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ArtifactsError(f"the artifacts lock {path} is not valid YAML: {exc}") from exc
    return parse_lock(data, path)


def dump_lock(lock: dict) -> str:
    """The lock file's text: the header, then the entries sorted by name, version and platform."""
    ordered = {name: {version: {where: lock[name][version][where] for where in sorted(lock[name][version])}
                      for version in sorted(lock[name], key=_version_key)}
               for name in sorted(lock)}
    return LOCK_HEADER + yaml_dump({"artifacts": ordered}, default_flow_style=False, sort_keys=False, width=200)


def _version_key(version: str) -> tuple:
    return tuple(int(part) if part.isdigit() else 0 for part in re.split(r"[.+-]", str(version)))


def mismatch(name: str, version: str, arch: str, locked: str, found: str, where: str, lock_path: str, binary: str = "") -> str:
    """The message of a checksum that differs from the lock, with both checksums."""
    what = f" for {binary}" if binary else ""
    return f"{label(name, version, arch)}: locked sha256{what} {locked} ({lock_path}), found {found} ({where})"


def published_conflict(name: str, version: str, arch: str, locked: str, published: str, lock_path: str) -> str:
    return (f"{label(name, version, arch)}: locked sha256 {locked} ({lock_path}), but the collection's published checksum is "
            f"{published}: the lock was filled from a file that is not the official one; check the file, then correct the "
            "lock or replace the entry with -e kubeforge_artifacts_lock_update=true")


def record(lock: dict, name: str, version: str, arch: str, sha256: str, files: dict | None, update: bool,
           lock_path: str = "", where: str = "") -> str | None:
    """Record a verified artifact in ``lock`` (changed in place).

    Returns 'added' (first use of this version), 'updated' (``update``: a different checksum
    replaces the locked one), 'completed' (binaries' checksums added to an entry that had none,
    as a hand-filled lock has), or None when the lock already says exactly this. A different
    checksum without ``update`` raises ArtifactsError showing both.
    """
    files = dict(files or {})
    entry = lock_entry(lock, name, version, arch)
    if entry is None:
        new = {"sha256": sha256, **({"files": files} if files else {})}
        lock.setdefault(name, {}).setdefault(str(version), {})[platform(arch)] = new
        return "added"
    locked_files = entry.get("files") or {}
    different = [mismatch(name, version, arch, entry["sha256"], sha256, where, lock_path)] if entry["sha256"] != sha256 else []
    different += [mismatch(name, version, arch, locked_files[binary], digest, where, lock_path, binary)
                  for binary, digest in sorted(files.items()) if binary in locked_files and locked_files[binary] != digest]
    if different and not update:
        raise ArtifactsError("; ".join(different) + "; " + LOCK_UPDATE_HINT, different)
    if different:
        entry.clear()
        entry.update({"sha256": sha256, **({"files": files} if files else {})})
        return "updated"
    if any(binary not in locked_files for binary in files):
        entry["files"] = {**locked_files, **files}
        return "completed"
    return None


@contextlib.contextmanager
def _locked_directory(directory: str):
    """An exclusive flock on the lock file's directory: the hosts of a run record in turn."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def update_lock_file(path: str, records: list, update: bool, where: str = "", write: bool = True) -> list[str]:
    """Record verified artifacts in the lock file: ``records`` is a list of (name, version, arch,
    sha256, files). Re-reads the file under an exclusive lock, so that concurrent hosts of one run
    add to each other's records. Returns the changes ('added kubelet 1.36.4 linux/amd64 <sha256>');
    writes only when there are some and ``write``. A mismatch raises ArtifactsError with every one."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with _locked_directory(directory):
        lock = load_lock(path)
        changes, problems = [], []
        for name, version, arch, sha256, files in records:
            try:
                change = record(lock, name, version, arch, sha256, files, update, path, where)
            except ArtifactsError as exc:
                problems.extend(exc.errors)
                continue
            if change:
                changes.append(f"{change} {label(name, version, arch)} {sha256}")
        if problems:
            raise ArtifactsError("; ".join(problems) + "; " + LOCK_UPDATE_HINT, problems)
        if changes and write:
            _fs.write_atomic(path, dump_lock(lock).encode("utf-8"), 0o644)
    return changes


# -- where an artifact comes from and what it is checked against --------------------------------

@dataclasses.dataclass(frozen=True)
class Source:
    """An artifact's source and its reference checksum for this run.

    ``sha256`` is empty when the host reads it from ``checksum_url`` (first use of a download
    that has no published checksum); ``files`` holds the locked binaries' checksums.
    """
    name: str
    version: str
    arch: str
    filename: str
    src: str
    url: str
    sha256: str
    origin: str
    checksum_url: str = ""
    files: dict = dataclasses.field(default_factory=dict)
    locked: bool = False

    @property
    def checksum(self) -> str:
        """The reference as get_url's checksum argument: sha256:<hex> or sha256:<url>."""
        return f"sha256:{self.sha256 or self.checksum_url}"


def resolve(name: str, version: str, arch: str = "amd64", artifacts_dir: str = "", mirror: str = "",
            checksum_source: str = "published", lock: dict | None = None, lock_path: str = "", update: bool = False) -> Source:
    """Where an artifact comes from and the sha256 it must have.

    The lock's checksum wins once it holds the version (``update`` ignores it, to replace it);
    otherwise the published checksum (``published``), else the .sha256 beside the offline file
    (read here) or beside the download (read by the host). A locked checksum that contradicts the
    published one is an error: the lock was filled from a file that is not the official one.
    """
    if name not in ARTIFACTS:
        raise ArtifactsError(f"unknown artifact {name!r}; known: {', '.join(ARTIFACTS)}")
    if checksum_source not in CHECKSUM_SOURCES:
        raise ArtifactsError(f"checksum source {checksum_source!r} must be one of {', '.join(CHECKSUM_SOURCES)}")
    path = relpath(name, version, arch)
    source_url = url(name, version, arch, mirror)
    src = os.path.join(artifacts_dir, path) if artifacts_dir else ""
    base = {"name": name, "version": str(version), "arch": arch, "filename": os.path.basename(path), "src": src, "url": source_url}
    published = published_sha256(name, version, arch) if checksum_source == "published" else None
    entry = None if update else lock_entry(lock or {}, name, version, arch)
    if entry is not None:
        if published and published != entry["sha256"]:
            raise ArtifactsError(published_conflict(name, version, arch, entry["sha256"], published, lock_path))
        return Source(**base, sha256=entry["sha256"], origin=f"the artifacts lock {lock_path}", files=dict(entry.get("files") or {}),
                      locked=True)
    if published:
        return Source(**base, sha256=published, origin="the published checksum")
    if src:
        sidecar = read_sidecar(src)
        if not sidecar:
            raise ArtifactsError(f"{label(name, version, arch)}: {src}.sha256 is missing or holds no sha256, "
                                 "and the collection has no published checksum for it")
        return Source(**base, sha256=sidecar, origin=src + ".sha256")
    return Source(**base, sha256="", origin=source_url + ".sha256", checksum_url=source_url + ".sha256")


def controller_digests(artifacts_dir: str) -> DigestCache:
    """The sha256 of the files of an offline artifacts directory, kept on the controller between runs
    (``$XDG_CACHE_HOME/kubeforge.cluster/offline-digests.json``) as the hosts keep their binaries': the
    preflight hashes only the files whose stat moved. A stand-in for a hash, never for the check: each
    host verifies what it installs against the lock itself."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return DigestCache(artifacts_dir, os.path.join(cache_home, "kubeforge.cluster", "offline-digests.json"))


def offline_problems(artifacts_dir: str, wanted: list, arch: str, checksum_source: str, lock: dict | None = None,
                     lock_path: str = "", update: bool = False, digest: Callable = file_sha256) -> list:
    """Problems with the offline artifacts directory: missing files and checksum mismatches (each file hashed
    by ``digest``).

    ``wanted`` is a list of (name, version). A version in the lock is checked against the lock;
    otherwise, with ``published``, the collection's checksum is required where it has one and the
    sidecar file is used otherwise; with ``sidecar`` (a local build or a private mirror) the
    sidecar file is the reference.
    """
    problems = []
    for name, version in wanted:
        path = os.path.join(artifacts_dir, relpath(name, version, arch))
        if not os.path.isfile(path):
            problems.append(f"offline artifact {name} {version} is missing: {path}")
            continue
        entry = None if update else lock_entry(lock or {}, name, version, arch)
        if entry is not None:
            actual = digest(path)
            if actual != entry["sha256"]:
                problems.append(f"offline artifact {name} {version} does not match the lock: "
                                + mismatch(name, version, arch, entry["sha256"], actual, path, lock_path) + "; " + LOCK_UPDATE_HINT)
            continue
        expected = published_sha256(name, version, arch) if checksum_source == "published" else None
        origin = "the published checksum"
        if expected is None:
            expected, origin = read_sidecar(path), path + ".sha256"
        if expected is None:
            problems.append(f"offline artifact {name} {version} has no checksum to verify it against: "
                            f"the collection has no published sha256 for it and {path}.sha256 is missing")
            continue
        actual = digest(path)
        if actual != expected:
            problems.append(f"offline artifact {name} {version} fails its checksum: {path} has sha256 {actual}, {origin} says {expected}")
    return problems


def lock_problems(lock: dict, wanted: list, arch: str, checksum_source: str, lock_path: str = "") -> list:
    """Locked checksums that contradict the collection's published ones, for the (name, version) in ``wanted``."""
    if checksum_source != "published":
        return []
    problems = []
    for name, version in wanted:
        entry = lock_entry(lock, name, version, arch)
        published = published_sha256(name, version, arch) if name in ARTIFACTS else None
        if entry and published and published != entry["sha256"]:
            problems.append(published_conflict(name, version, arch, entry["sha256"], published, lock_path))
    return problems

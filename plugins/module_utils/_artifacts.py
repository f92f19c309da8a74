# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where each release artifact comes from and which sha256 it must have.

An artifact has one path relative to its release site (the "release layout"). The same path
is used below a download base URL, a mirror, or the offline artifacts directory, so an offline
directory is simply a copy of the release sites' trees.
"""

from __future__ import annotations

import functools
import hashlib
import os

from ansible.module_utils.common.yaml import yaml_load

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


def published_sha256(name: str, version: str, arch: str) -> str | None:
    """The published sha256 the collection carries, or None (control-plane binaries publish a
    .sha256 file beside each download instead)."""
    return published_checksums().get(name, {}).get(arch, {}).get(str(version))


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sidecar(path: str) -> str | None:
    """The sha256 in '<artifact>.sha256' (first word, as sha256sum writes it), or None."""
    try:
        with open(path + ".sha256", encoding="utf-8") as handle:
            words = handle.read().split()
    except OSError:
        return None
    return words[0].lower() if words else None


def offline_problems(artifacts_dir: str, wanted: list, arch: str, checksum_source: str) -> list:
    """Problems with the offline artifacts directory: missing files and checksum mismatches.

    ``wanted`` is a list of (name, version). With ``published`` the collection's checksum is
    required where it has one and the sidecar file is used otherwise; with ``sidecar`` (a local
    build or a private mirror) the sidecar file is the reference.
    """
    problems = []
    for name, version in wanted:
        path = os.path.join(artifacts_dir, relpath(name, version, arch))
        if not os.path.isfile(path):
            problems.append(f"offline artifact {name} {version} is missing: {path}")
            continue
        expected = published_sha256(name, version, arch) if checksum_source == "published" else None
        origin = "the published checksum"
        if expected is None:
            expected, origin = read_sidecar(path), path + ".sha256"
        if expected is None:
            problems.append(f"offline artifact {name} {version} has no checksum to verify it against: "
                            f"the collection has no published sha256 for it and {path}.sha256 is missing")
            continue
        actual = file_sha256(path)
        if actual != expected:
            problems.append(f"offline artifact {name} {version} fails its checksum: {path} has sha256 {actual}, {origin} says {expected}")
    return problems

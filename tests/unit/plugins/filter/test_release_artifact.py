# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release_artifact filter: an artifact's source and the checksum it is verified against."""
from __future__ import annotations

import hashlib
import os

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubeforge.cluster.plugins.filter.release_artifact import FilterModule, artifacts_verified, release_artifact
from ansible_collections.kubeforge.cluster.plugins.module_utils import _artifacts
from ansible_collections.kubeforge.cluster.plugins.module_utils._artifact_install import artifact_key

ETCD = "https://github.com/etcd-io/etcd/releases/download/v3.5.33/etcd-v3.5.33-linux-amd64.tar.gz"
APISERVER = "https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kube-apiserver"


def test_the_filter_is_registered():
    assert FilterModule().filters()["release_artifact"] is release_artifact


@pytest.mark.parametrize("name, kwargs, expected", [
    # The published checksum the collection carries.
    ("etcd", {}, {"filename": "etcd-v3.5.33-linux-amd64.tar.gz", "src": "", "url": ETCD,
                  "sha256": _artifacts.published_sha256("etcd", "3.5.33", "amd64"), "origin": "the published checksum", "locked": False}),
    # No published checksum: the .sha256 beside the download, read by the host at first use.
    ("kube-apiserver", {}, {"filename": "kube-apiserver", "src": "", "url": APISERVER, "sha256": "",
                            "checksum": f"sha256:{APISERVER}.sha256", "origin": APISERVER + ".sha256", "locked": False}),
    # A mirror keeps the release paths.
    ("kube-apiserver", {"mirror": "https://mirror.example/dl/"},
     {"url": "https://mirror.example/dl/release/v1.36.4/bin/linux/amd64/kube-apiserver"}),
    ("etcd", {"arch": "arm64"}, {"sha256": _artifacts.published_sha256("etcd", "3.5.33", "arm64"), "filename": "etcd-v3.5.33-linux-arm64.tar.gz"}),
])
def test_sources(name, kwargs, expected):
    version = "3.5.33" if name == "etcd" else "1.36.4"
    result = release_artifact(name, version, **kwargs)
    assert {key: result[key] for key in expected} == expected
    if result["sha256"]:
        assert result["checksum"] == f"sha256:{result['sha256']}"


def test_offline_file_with_sidecar_then_the_lock(tmp_path):
    path = os.path.join(tmp_path, _artifacts.relpath("kube-apiserver", "1.36.4", "amd64"))
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as handle:
        handle.write(b"apiserver")
    with open(path + ".sha256", "w", encoding="utf-8") as handle:
        handle.write(hashlib.sha256(b"apiserver").hexdigest() + "  kube-apiserver\n")
    first = release_artifact("kube-apiserver", "1.36.4", artifacts_dir=str(tmp_path), lock_file=str(tmp_path / "artifacts.lock.yml"))
    assert (first["src"], first["sha256"], first["locked"]) == (path, hashlib.sha256(b"apiserver").hexdigest(), False)
    lock = str(tmp_path / "artifacts.lock.yml")
    _artifacts.update_lock_file(lock, [("kube-apiserver", "1.36.4", "amd64", "a" * 64, {})], False)
    locked = release_artifact("kube-apiserver", "1.36.4", artifacts_dir=str(tmp_path), lock_file=lock)
    assert (locked["sha256"], locked["locked"], locked["origin"]) == ("a" * 64, True, f"the artifacts lock {lock}")
    # -e kubeforge_artifacts_lock_update=true arrives as a string.
    assert release_artifact("kube-apiserver", "1.36.4", artifacts_dir=str(tmp_path), lock_file=lock, lock_update="true")["sha256"] == first["sha256"]


@pytest.mark.parametrize("name, kwargs, message", [
    ("kubeadm", {}, "release_artifact: unknown artifact 'kubeadm'"),
    ("kube-apiserver", {"artifacts_dir": "/nonexistent"}, r"release_artifact: kube-apiserver 1.36.4 linux/amd64: .*\.sha256 is missing"),
])
def test_errors(name, kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        release_artifact(name, "1.36.4", **kwargs)


def test_artifacts_verified_compares_the_role_list_with_the_module_keys():
    cni = {"name": "cni_plugins", "version": "1.10.0", "binaries": ["bridge", "loopback"], "bin_dir": "/opt/cni/bin"}
    kubelet = {"name": "kubelet", "version": "1.36.4", "daemons": ["kubelet"]}
    keys = [artifact_key("cni_plugins", "1.10.0", "amd64", "/opt/cni/bin", ["loopback", "bridge"], []),
            artifact_key("kubelet", "1.36.4", "amd64", "/usr/local/bin", ["kubelet"], ["kubelet"])]
    assert artifacts_verified([cni, kubelet], keys, "/usr/local/bin", "amd64")
    assert not artifacts_verified([dict(kubelet, version="1.37.2")], keys, "/usr/local/bin", "amd64")  # an upgrade
    assert not artifacts_verified([kubelet], keys, "/opt/bin", "amd64")  # another link directory
    assert not artifacts_verified([dict(cni, binaries=["bridge", "loopback", "portmap"])], keys, "/usr/local/bin")  # a new binary
    assert not artifacts_verified([kubelet], keys, "/usr/local/bin", "arm64")
    assert not artifacts_verified([kubelet], [], "/usr/local/bin")
    with pytest.raises(AnsibleFilterError, match="expected a list of artifacts"):
        artifacts_verified(kubelet, keys, "/usr/local/bin")

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""image_archive_ids: the tags and image IDs of archives read on the controller, keyed by their host path."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubeforge.cluster.plugins.filter.image_archive_ids import image_archive_ids

CONFIG = "a" * 64


def archive(path, members: dict) -> str:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            raw = json.dumps(data).encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return str(path)


def test_docker_save_and_oci_archives_are_read_and_keyed_by_the_host_directory(tmp_path):
    saved = archive(tmp_path / "pause.tar", {"manifest.json": [{"Config": f"blobs/sha256/{CONFIG}", "RepoTags": ["registry.k8s.io/pause:3.10.2"]}]})
    manifest = "b" * 64
    oci = archive(tmp_path / "busybox.tar", {
        "index.json": {"manifests": [{"digest": f"sha256:{manifest}", "annotations": {"io.containerd.image.name": "kubeforge.local/busybox:1"}}]},
        f"blobs/sha256/{manifest}": {"config": {"digest": f"sha256:{CONFIG}"}},
    })
    assert image_archive_ids([saved, oci], "/var/cache/kubeforge/images") == {
        "/var/cache/kubeforge/images/pause.tar": {"registry.k8s.io/pause:3.10.2": f"sha256:{CONFIG}"},
        "/var/cache/kubeforge/images/busybox.tar": {"kubeforge.local/busybox:1": f"sha256:{CONFIG}"},
    }


def test_an_archive_that_is_not_an_image_archive_is_refused_by_name(tmp_path):
    other = archive(tmp_path / "other.tar", {"README": {}})
    with pytest.raises(AnsibleFilterError, match="other.tar"):
        image_archive_ids([other], "/var/cache")
    with pytest.raises(AnsibleFilterError):
        image_archive_ids(str(other), "/var/cache")

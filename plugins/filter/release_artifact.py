# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: release_artifact
short_description: Where a release artifact comes from and the sha256 it must have
version_added: 0.1.0
author:
  - kubeforge developers (@kubeforge)
description:
  - Resolves a release artifact (etcd tarball, Kubernetes binary, ...) to its source (the offline
    artifacts directory on the controller, a mirror, or the official site) and to the checksum
    it is verified against, following C(kubeforge_artifacts_checksum_source).
  - Runs on the controller; reads the C(.sha256) file beside an offline artifact when needed.
options:
  _input:
    description: Artifact name, such as C(etcd) or C(kube-apiserver).
    type: str
    required: true
  version:
    description: Release version (X.Y.Z).
    type: str
    required: true
  arch:
    description: CPU architecture.
    type: str
    default: amd64
  artifacts_dir:
    description: Offline artifacts directory on the controller; empty to download.
    type: str
    default: ""
  mirror:
    description: Base URL of a mirror with the release sites' paths; empty for the official sites.
    type: str
    default: ""
  checksum_source:
    description: C(published) or C(sidecar), as C(kubeforge_artifacts_checksum_source).
    type: str
    default: published
"""

EXAMPLES = r"""
- name: Show where etcd comes from
  ansible.builtin.debug:
    msg: "{{ 'etcd' | kubeforge.cluster.release_artifact('3.5.33', arch='amd64') }}"
"""

RETURN = r"""
_value:
  description: The artifact's source.
  type: dict
  contains:
    filename:
      description: File name of the artifact.
      type: str
    src:
      description: Controller path of the offline artifact, or empty when it is downloaded.
      type: str
    url:
      description: Download URL (official site or mirror).
      type: str
    checksum:
      description: >-
        Checksum argument for get_url/copy: C(sha256:<hex>), or C(sha256:<url>.sha256) for a
        download whose checksum is published beside it.
      type: str
"""

import os

from ansible.errors import AnsibleFilterError

from ansible_collections.kubeforge.cluster.plugins.module_utils import _artifacts


def release_artifact(name, version, arch="amd64", artifacts_dir="", mirror="", checksum_source="published"):
    if name not in _artifacts.ARTIFACTS:
        raise AnsibleFilterError(f"release_artifact: unknown artifact {name!r}; known: {', '.join(_artifacts.ARTIFACTS)}")
    relpath = _artifacts.relpath(name, version, arch)
    url = _artifacts.url(name, version, arch, mirror)
    published = _artifacts.published_sha256(name, version, arch) if checksum_source == "published" else None
    src = os.path.join(artifacts_dir, relpath) if artifacts_dir else ""
    if published:
        checksum = f"sha256:{published}"
    elif src:
        sidecar = _artifacts.read_sidecar(src)
        if not sidecar:
            raise AnsibleFilterError(f"release_artifact: {src}.sha256 is missing; preflight should have reported it")
        checksum = f"sha256:{sidecar}"
    else:
        checksum = f"sha256:{url}.sha256"
    return {"filename": os.path.basename(relpath), "src": src, "url": url, "checksum": checksum}


class FilterModule:
    def filters(self):
        return {"release_artifact": release_artifact}

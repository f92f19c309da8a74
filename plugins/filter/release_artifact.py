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
  - Resolves a release artifact (etcd tarball, Kubernetes binary, ...) to its source (the offline artifacts directory on
    the controller, a mirror, or the official site) and to the checksum it is verified against.
  - The reference is the cluster's artifacts lock once it holds the version (unless O(lock_update)); otherwise the
    checksum the collection carries (O(checksum_source=published)), else the C(.sha256) beside the offline file (read
    here) or beside the download. A locked checksum that contradicts the published one is an error.
  - Runs on the controller. The roles install with M(kubeforge.cluster.artifact_install), which resolves artifacts the
    same way; this filter shows the result.
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
  lock_file:
    description: The cluster's artifacts lock (C(kubeforge_artifacts_lock_file)); empty for none. A missing file is an empty lock.
    type: str
    default: ""
  lock_update:
    description: Ignore the lock's checksum, as a run with C(kubeforge_artifacts_lock_update=true) does.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Show where etcd comes from and what it is checked against
  ansible.builtin.debug:
    msg: "{{ 'etcd' | kubeforge.cluster.release_artifact('3.5.33', arch='amd64', lock_file=kubeforge_artifacts_lock_file) }}"
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
      description: Download URL (official site or mirror); not used when the artifact comes from the offline directory.
      type: str
    sha256:
      description: The reference sha256, or empty when it is the C(.sha256) published beside the download (first use).
      type: str
    checksum:
      description: >-
        The reference as get_url's checksum argument: C(sha256:<hex>), or C(sha256:<url>.sha256) for a download whose
        checksum is read from beside it at first use.
      type: str
    origin:
      description: Where the reference comes from (the lock, the published checksum, a C(.sha256) file).
      type: str
    locked:
      description: Whether the reference is the lock's.
      type: bool
    files:
      description: The locked sha256 of each binary unpacked from an archive.
      type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean


def release_artifact(name, version, arch="amd64", artifacts_dir="", mirror="", checksum_source="published", lock_file="", lock_update=False):
    # Imported when called, not with this file (README, Layout: plugins/filter/).
    from ansible_collections.kubeforge.cluster.plugins.module_utils import _artifacts
    try:
        lock = _artifacts.load_lock(lock_file) if lock_file else {}
        source = _artifacts.resolve(name, str(version), arch, artifacts_dir or "", mirror or "", checksum_source, lock, lock_file or "",
                                    boolean(lock_update, strict=False))
    except _artifacts.ArtifactsError as exc:
        raise AnsibleFilterError(f"release_artifact: {exc}") from exc
    return {"filename": source.filename, "src": source.src, "url": source.url, "sha256": source.sha256, "checksum": source.checksum,
            "origin": source.origin, "locked": source.locked, "files": dict(source.files)}


def artifacts_verified(artifacts, verified, bin_dir, arch="amd64") -> bool:
    """Whether every artifact of a role's list is among the keys verify_recorded returned (documented in artifacts_verified.yml)."""
    if isinstance(artifacts, (str, dict)) or not hasattr(artifacts, "__iter__"):
        raise AnsibleFilterError(f"artifacts_verified: expected a list of artifacts, got {artifacts!r}")
    from ansible_collections.kubeforge.cluster.plugins.module_utils._artifact_install import artifact_key  # when called, as above
    keys = set(verified or [])
    return all(artifact_key(entry["name"], entry["version"], arch, entry.get("bin_dir") or bin_dir,
                            entry.get("binaries") or [entry["name"]], entry.get("daemons") or []) in keys
               for entry in artifacts)


class FilterModule:
    def filters(self):
        return {"release_artifact": release_artifact, "artifacts_verified": artifacts_verified}

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: artifact_install
short_description: Install release artifacts, verified on the host against the cluster's pinned sha256, in one task
version_added: 0.1.0
description:
  - Installs a batch of release artifacts (etcd, Kubernetes binaries, containerd, runc, CNI plugins, crictl) on a host into
    C(<install_dir>/<name>/v<version>/), and links their binaries into a binary directory; an upgrade switches the links
    and the previous version stays on disk for a rollback.
  - The action plugin, on the controller, resolves each artifact's source (the offline artifacts directory
    O(artifacts_dir), a O(mirror), or the official site) and its reference checksum. The reference is the cluster's lock
    file O(lock_file) once it holds the version; at first use it is the checksum the collection carries, else the
    C(.sha256) published beside the file, and the verified checksum is then recorded in the lock. Later runs and nodes
    added later must match the lock; a mismatch fails showing the locked and the found checksum.
  - On the host, every run checks the installed binaries against the reference. A binary whose stat (inode, size, mtime,
    ctime) is the one it had when it was last hashed is not read again (C(<install_dir>/digests.json)). What is missing or different is
    downloaded, or copied from the controller's offline directory, hashed and verified before it replaces anything; every
    artifact of the batch is verified before the first one is installed.
  - An offline file is copied to the host when the module needs it, and before the module runs when the host has no
    directory for its version yet (one shell command asks), so that a new host installs its batch in one module run. The copy is
    moved into place when it is on the install file system, not written a second time.
  - RV(changed_binaries) names the binaries whose content changed, and the O(artifacts[].daemons) still running a replaced
    copy; the roles restart the services that run them.
author:
  - kubeforge developers (@kubeforge)
options:
  artifacts:
    description: The artifacts to install on this host.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The artifact, as the collection knows it (C(etcd), C(kube-apiserver), C(containerd), C(cni_plugins), ...).
        type: str
        required: true
      version:
        description: Its release version (X.Y.Z).
        type: str
        required: true
      binaries:
        description: The binaries to link from an archive; a single-file artifact links itself under its name.
        type: list
        elements: str
        default: []
      daemons:
        description:
          - Binaries that run as services. One still running from a replaced file (an earlier run stopped before its
            restart) is reported in RV(changed_binaries).
        type: list
        elements: str
        default: []
      strip_components:
        description: Leading path components dropped from the archive's members (as C(tar --strip-components)).
        type: int
        default: 1
      bin_dir:
        description: Where this artifact's binaries are linked; defaults to O(bin_dir).
        type: path
      arch:
        description: Filled by the action plugin from O(arch).
        type: str
      filename:
        description: Filled by the action plugin - the artifact's file name.
        type: str
      url:
        description: Filled by the action plugin - the download URL (empty for an offline file).
        type: str
      offline:
        description: Filled by the action plugin - whether the file comes from the controller's offline directory.
        type: bool
        default: false
      src:
        description: Filled by the action plugin - the offline file once copied to the host.
        type: path
      location:
        description: Filled by the action plugin - where the file comes from, for messages.
        type: str
      sha256:
        description: Filled by the action plugin - the reference sha256 of the file; empty when read from O(artifacts[].checksum_url).
        type: str
      checksum_url:
        description: Filled by the action plugin - the C(.sha256) beside a download that has no other reference (first use).
        type: str
      files:
        description: Filled by the action plugin - the locked sha256 of each binary of an archive.
        type: dict
        default: {}
      origin:
        description: Filled by the action plugin - where the reference checksum comes from, for messages.
        type: str
      locked:
        description: Filled by the action plugin - whether the reference is the lock's.
        type: bool
        default: false
  arch:
    description: CPU architecture of the artifacts (C(kubeforge_arch)).
    type: str
    default: amd64
    choices: [amd64, arm64]
  artifacts_dir:
    description: Offline artifacts directory on the controller, in the release sites' layout; empty to download.
    type: path
    default: ""
  mirror:
    description: Base URL of a mirror with the release sites' paths; empty for the official sites.
    type: str
    default: ""
  checksum_source:
    description:
      - Reference at first use - V(published) (the checksum the collection carries, else the C(.sha256) beside the file) or
        V(sidecar) (the C(.sha256) beside the file only, for local builds and private mirrors).
    type: str
    default: published
    choices: [published, sidecar]
  lock_file:
    description: The cluster's artifacts lock on the controller (C(kubeforge_artifacts_lock_file)); empty for none.
    type: path
    default: ""
  lock_update:
    description:
      - Replace the locked checksums of these artifacts' versions by those of their source (verified the same way as at
        first use), for a rebuilt artifact or a corrected checksum. Leave false otherwise.
    type: bool
    default: false
  install_dir:
    description: Root of the versioned install directories.
    type: path
    default: /opt/kubeforge
  bin_dir:
    description: Where the binaries are linked.
    type: path
    default: /usr/local/bin
  cache_dir:
    description: Where archives are kept on the host.
    type: path
    default: /var/cache/kubeforge
  timeout:
    description: Seconds a download may wait for the server.
    type: int
    default: 60
  validate_certs:
    description: Verify the download site's TLS certificate.
    type: bool
    default: true
  verify_recorded:
    description:
      - Also check every artifact an earlier install recorded on the host (C(<install_dir>/installed.json)) against the lock,
        and return in RV(verified) those installed exactly as locked. The artifacts role asks for it on a host's first install
        of a run; a later phase whose every artifact is verified there does not call the module again in that run.
      - Ignored with O(lock_update) (every install then checks its own artifacts).
    type: bool
    default: false
  lock:
    description: Filled by the action plugin with O(verify_recorded) - the lock's entries, to check the recorded artifacts against.
    type: dict
    default: {}
attributes:
  action:
    support: full
    description: An action plugin resolves the sources and the lock, copies offline files and records the lock on the controller.
  check_mode:
    support: full
    description: Downloads, copies and writes nothing, on the host or in the lock; reports what would change.
  diff_mode:
    support: none
    description: RV(artifacts) and RV(changed_binaries) say what changed.
  idempotent:
    support: full
    description: A second run installs nothing and reports no change.
notes:
  - The checksum of a version that is not in the lock yet is trusted on first use (docs/offline-install.md says how to
    pre-fill the lock from the official checksums instead).
seealso:
  - module: ansible.builtin.get_url
"""

EXAMPLES = r"""
- name: Install etcd and kubectl, verified against the cluster's lock
  kubeforge.cluster.artifact_install:
    artifacts:
      - {name: etcd, version: 3.5.33, binaries: [etcd, etcdctl, etcdutl], daemons: [etcd]}
      - {name: kubectl, version: 1.36.4}
    arch: amd64
    lock_file: "{{ inventory_dir }}/artifacts.lock.yml"
  register: installed

- name: Install the CNI plugins from an offline directory into their own directory
  kubeforge.cluster.artifact_install:
    artifacts:
      - {name: cni_plugins, version: 1.10.0, binaries: [bridge, host-local, loopback], bin_dir: /opt/cni/bin}
    artifacts_dir: /srv/kubeforge-artifacts
    lock_file: "{{ inventory_dir }}/artifacts.lock.yml"
"""

RETURN = r"""
changed:
  description: Whether files or links were (or would be) written, or a daemon still runs a replaced copy.
  returned: always
  type: bool
  sample: true
artifacts:
  description: One entry per artifact, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The artifact.
      type: str
    version:
      description: Its version.
      type: str
    platform:
      description: Its platform.
      type: str
    sha256:
      description: The verified sha256 of its file (empty in check mode when it could not be read).
      type: str
    files:
      description: The sha256 of each linked binary of an archive.
      type: dict
    changed:
      description: Whether it changed.
      type: bool
    changed_binaries:
      description: Its binaries whose content changed, or that a daemon still runs a replaced copy of.
      type: list
      elements: str
    needs_source:
      description:
        - Whether the offline file must be copied to the host. False in the final result (the action plugin copies the
          file and installs it), except in check mode.
      type: bool
  sample:
    - {name: etcd, version: 3.5.33, platform: linux/amd64, sha256: 0123abcd, files: {etcd: 4567cdef}, changed: true,
       changed_binaries: [etcd], needs_source: false}
changed_binaries:
  description: The binaries of every artifact whose content changed (or that a daemon still runs a replaced copy of), sorted.
  returned: always
  type: list
  elements: str
  sample: [kube-apiserver]
needs_source:
  description: Names of the offline artifacts to copy to the host; empty in the final result, except in check mode.
  returned: always
  type: list
  elements: str
  sample: []
verified:
  description:
    - With O(verify_recorded), the recorded artifacts installed exactly as locked, each as the key the
      C(kubeforge.cluster.artifacts_verified) filter compares (name, version, platform, link directory, links, daemons).
  returned: when O(verify_recorded) is true
  type: list
  elements: str
  sample: ['["kubelet","1.36.4","amd64","/usr/local/bin",["kubelet"],["kubelet"]]']
lock_changes:
  description: What was (or in check mode would be) recorded in the lock file - first use of a version, or an update.
  returned: always
  type: list
  elements: str
  sample: ["added kube-apiserver 1.36.4 linux/amd64 0123abcd"]
lock_file:
  description: The lock file.
  returned: always
  type: str
  sample: /srv/inventory/mycluster/artifacts.lock.yml
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.kubeforge.cluster.plugins.module_utils._artifact_install import ArtifactInstaller, InstallError
from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import exit_with_backend


def argument_spec() -> dict:
    entry = {
        "name": {"type": "str", "required": True},
        "version": {"type": "str", "required": True},
        "binaries": {"type": "list", "elements": "str", "default": []},
        "daemons": {"type": "list", "elements": "str", "default": []},
        "strip_components": {"type": "int", "default": 1},
        "bin_dir": {"type": "path"},
        "arch": {"type": "str"},
        "filename": {"type": "str"},
        "url": {"type": "str"},
        "offline": {"type": "bool", "default": False},
        "src": {"type": "path"},
        "location": {"type": "str"},
        "sha256": {"type": "str"},
        "checksum_url": {"type": "str"},
        "files": {"type": "dict", "default": {}},
        "origin": {"type": "str"},
        "locked": {"type": "bool", "default": False},
    }
    return {
        "artifacts": {"type": "list", "elements": "dict", "required": True, "options": entry},
        "arch": {"type": "str", "default": "amd64", "choices": ["amd64", "arm64"]},
        "artifacts_dir": {"type": "path", "default": ""},
        "mirror": {"type": "str", "default": ""},
        "checksum_source": {"type": "str", "default": "published", "choices": ["published", "sidecar"]},
        "lock_file": {"type": "path", "default": ""},
        "lock_update": {"type": "bool", "default": False},
        "install_dir": {"type": "path", "default": "/opt/kubeforge"},
        "bin_dir": {"type": "path", "default": "/usr/local/bin"},
        "cache_dir": {"type": "path", "default": "/var/cache/kubeforge"},
        "timeout": {"type": "int", "default": 60},
        "validate_certs": {"type": "bool", "default": True},
        "verify_recorded": {"type": "bool", "default": False},
        "lock": {"type": "dict", "default": {}},
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)

    def fetch(url: str):
        try:
            return open_url(url, timeout=module.params["timeout"], validate_certs=module.params["validate_certs"], http_agent="kubeforge")
        except Exception as exc:  # pylint: disable=broad-exception-caught  # urllib, TLS and proxy errors alike
            raise InstallError(f"cannot download {url}: {exc}") from exc

    exit_with_backend(module, ArtifactInstaller(module.params, fetch, check_mode=module.check_mode))


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: containerd_images
short_description: Import image archives into containerd's k8s.io namespace, only the images it lacks
version_added: 0.1.0
description:
  - Reads the images (tags and image IDs) each archive on the host holds, C(docker save) or OCI layout, and the
    images the container runtime has (C(crictl images)); imports an archive with C(ctr -n k8s.io images import)
    only when one of its tags is missing or names another image ID. A second run imports nothing.
  - With O(images), the images of each archive are given (read on the controller with the
    R(kubeforge.cluster.image_archive_ids,ansible_collections.kubeforge.cluster.image_archive_ids_filter) filter), so an archive
    needs to be on the host only when it is imported. An archive needed but absent is reported in RV(absent_archives).
  - With O(src_dir) too, the action plugin copies those archives from the controller and imports them in the same task
    (each copy checked to hold the images the controller read before it is put in place). The archives missing from the
    host's cache are copied before the module runs (one shell command asks), so that a new host imports its images in one
    module run; an archive put in the cache is a change even when the runtime had its images. A cluster that has its
    images and its cache copies nothing.
author:
  - kubeforge developers (@kubeforge)
options:
  archives:
    description: Paths of the image archives on the host, read there. Exactly one of O(archives) and O(images) is required.
    type: list
    elements: path
  images:
    description: The images of each archive, a dict of C(host path of the archive) to a dict of C(tag) to C(image ID).
    type: dict
  src_dir:
    description:
      - The directory on the controller that holds the archives of O(images) (by their file names). The archives the
        runtime needs and the host lacks are copied from it, then imported. Only with O(images).
    type: path
  sources:
    description:
      - Set by the action plugin, not by a task. The copies it made in the host's temporary directory, a dict of
        C(host path of the archive) to the copy.
    type: dict
  ctr:
    description: The ctr binary.
    type: path
    default: /usr/local/bin/ctr
  runtime_timeout:
    description:
      - Seconds to wait for the runtime's CRI image service, asked every second (a containerd just restarted answers
        before its CRI plugin is up).
    type: int
    default: 60
  crictl:
    description: The crictl binary (configured by /etc/crictl.yaml).
    type: path
    default: /usr/local/bin/crictl
attributes:
  action:
    support: full
    description: The action plugin copies the archives from O(src_dir).
  check_mode:
    support: full
    description: Reports what would be copied and imported, copying nothing.
  diff_mode:
    support: none
    description: The result lists the imported images.
  idempotent:
    support: full
    description: Images already present with the same ID are not imported again.
"""

EXAMPLES = r"""
- name: Import the offline images
  kubeforge.cluster.containerd_images:
    archives: [/var/cache/kubeforge/images/pause-3.10.2.tar, /var/cache/kubeforge/images/coredns-v1.15.0.tar]

- name: Import what containerd lacks, copying from the controller the archives the host does not have
  kubeforge.cluster.containerd_images:
    images: "{{ query('ansible.builtin.fileglob', 'images/*.tar') | kubeforge.cluster.image_archive_ids('/var/cache/kubeforge/images') }}"
    src_dir: images
"""

RETURN = r"""
imported:
  description: Tags imported, by archive.
  returned: always
  type: dict
  sample: {/var/cache/kubeforge/images/pause-3.10.2.tar: ["registry.k8s.io/pause:3.10.2"]}
absent_archives:
  description:
    - With O(images), the archives the runtime needs that are not on the host (not imported), sorted. Empty once
      O(src_dir) copied them, except in check mode.
  returned: always
  type: list
  elements: str
  sample: [/var/cache/kubeforge/images/coredns-v1.15.0.tar]
copied:
  description: The archives copied from O(src_dir) to the host (host paths), sorted.
  returned: always
  type: list
  elements: str
  sample: [/var/cache/kubeforge/images/coredns-v1.15.0.tar]
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeforge.cluster.plugins.module_utils import _containerd_images


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "archives": {"type": "list", "elements": "path"},
            "images": {"type": "dict"},
            "src_dir": {"type": "path"},
            "sources": {"type": "dict"},
            "ctr": {"type": "path", "default": "/usr/local/bin/ctr"},
            "crictl": {"type": "path", "default": _containerd_images.DEFAULT_CRICTL},
            "runtime_timeout": {"type": "int", "default": 60},
        },
        required_one_of=[("archives", "images")],
        mutually_exclusive=[("archives", "images")],
        required_by={"src_dir": "images", "sources": "images"},
        supports_check_mode=True,
    )
    sources = module.params["sources"] or {}
    copied = sorted(sources)
    try:
        if not module.check_mode:
            for path in copied:
                _containerd_images.place_archive(sources[path], path, module.params["images"].get(path))
    except (OSError, ValueError, KeyError) as error:
        module.fail_json(msg=f"cannot put a copied image archive in place: {error}", copied=[])
    try:
        archives = module.params["images"] or {path: _containerd_images.archive_images(path) for path in module.params["archives"]}
    except (OSError, ValueError, KeyError) as error:
        module.fail_json(msg=f"cannot read an image archive: {error}")
    try:
        # In check mode on a new host, the runtime and crictl are not installed yet: it has no image.
        new_host = module.check_mode and not os.path.exists(module.params["crictl"])
        present = {} if new_host else _containerd_images.runtime_images_when_ready(
            module.run_command, module.params["crictl"], module.params["runtime_timeout"])
    except RuntimeError as error:
        module.fail_json(msg=str(error))
    wanted = _containerd_images.missing(archives, present)
    importable, absent = _containerd_images.split_present(wanted)
    if not module.check_mode:
        failures = _containerd_images.import_archives(module.run_command, module.params["ctr"], importable)
        if failures:
            module.fail_json(msg="; ".join(failures), imported={}, absent_archives=absent, copied=copied)
    # In check mode an absent archive would be copied and imported: a change too. An archive put in the cache
    # is one, even when the runtime had its images (the action copies what the cache lacks before asking).
    changed = bool(wanted) if module.check_mode else bool(importable or copied)
    module.exit_json(changed=changed, imported=importable, absent_archives=absent, copied=copied)


if __name__ == "__main__":
    main()

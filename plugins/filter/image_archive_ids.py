# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: image_archive_ids
short_description: The images (tag and image ID) of image archives on the controller, keyed by their path on a host
version_added: 0.1.0
description:
  - Reads each image archive (C(docker save) or OCI layout) on the controller - only its index, not its layers - and
    gives its tags and image IDs under the path the archive has, or would have, in O(directory) on a host.
  - The O(kubeforge.cluster.containerd_images#module:images) option of M(kubeforge.cluster.containerd_images) takes the
    result, so that an archive is copied to a host only when the host's runtime lacks one of its images.
options:
  _input:
    description: Paths of image archives on the controller.
    type: list
    elements: path
    required: true
  directory:
    description: The directory on the host the archives are copied to.
    type: path
    required: true
"""

EXAMPLES = r"""
- name: What the images directory holds, keyed by the host's cache path
  ansible.builtin.debug:
    msg: "{{ query('ansible.builtin.fileglob', 'images/*.tar') | kubeforge.cluster.image_archive_ids('/var/cache/kubeforge/images') }}"
  # {'/var/cache/kubeforge/images/pause.tar': {'registry.k8s.io/pause:3.10.2': 'sha256:...'}}
"""

RETURN = r"""
_value:
  description: One entry per archive, its path on the host, the value a dict of its tags to their image IDs.
  type: dict
"""

import os

from ansible.errors import AnsibleFilterError


def image_archive_ids(paths, directory) -> dict:
    # Imported when called, not with this file (README, Layout: plugins/filter/).
    from ansible_collections.kubeforge.cluster.plugins.module_utils._containerd_images import archive_images
    if isinstance(paths, str) or not hasattr(paths, "__iter__"):
        raise AnsibleFilterError(f"image_archive_ids: expected a list of archive paths, got {paths!r}")
    found = {}
    for path in paths:
        try:
            found[os.path.join(str(directory), os.path.basename(path))] = archive_images(path)
        except (OSError, ValueError, KeyError) as error:
            raise AnsibleFilterError(f"image_archive_ids: cannot read the image archive {path}: {error}") from error
    return found


class FilterModule:
    def filters(self):
        return {"image_archive_ids": image_archive_ids}

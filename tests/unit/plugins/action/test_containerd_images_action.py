# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The containerd_images action plugin asks the host first (one shell command) and runs the module only when an
archive or an image is missing; the probe itself is tested in tests/unit/plugins/module_utils/test_containerd_images.py."""
from __future__ import annotations

import json
from unittest import mock

import pytest

from ansible_collections.kubeforge.cluster.plugins.action import containerd_images

IMAGES = {"/var/cache/kubeforge/images/pause.tar": {"registry.k8s.io/pause:3.10.2": "sha256:aa"}}
HELD = json.dumps({"images": [{"id": "sha256:aa", "repoTags": ["registry.k8s.io/pause:3.10.2"]}]})


def action(probe_output: str):
    task = mock.MagicMock(async_val=0, check_mode=False, args={"images": IMAGES, "src_dir": "/srv/images"})
    connection = mock.MagicMock()
    connection._shell.tmpdir = None  # pylint: disable=protected-access
    plugin = containerd_images.ActionModule(task, connection, mock.MagicMock(check_mode=False), loader=None, templar=None)
    plugin._low_level_execute_command = mock.MagicMock(return_value={"stdout": probe_output})  # pylint: disable=protected-access
    plugin._execute_module = mock.MagicMock(return_value={"changed": True, "imported": {}, "absent_archives": []})  # pylint: disable=protected-access
    plugin._copy_and_import = mock.MagicMock(return_value={"changed": True, "imported": {}, "absent_archives": []})  # pylint: disable=protected-access
    return plugin


@pytest.mark.parametrize("output, module_runs, copies", [
    (f"--kubeforge-images--\n{HELD}\n", False, False),
    ('--kubeforge-images--\n{"images": []}\n', True, False),
    (f"/var/cache/kubeforge/images/pause.tar\n--kubeforge-images--\n{HELD}\n", False, True),
    ("", True, False),
])
def test_the_module_runs_only_when_the_host_lacks_an_archive_or_an_image(output, module_runs, copies):
    plugin = action(output)
    result = plugin.run(task_vars={})
    assert plugin._low_level_execute_command.call_count == 1  # pylint: disable=protected-access
    assert plugin._execute_module.called is module_runs  # pylint: disable=protected-access
    assert plugin._copy_and_import.called is copies  # pylint: disable=protected-access
    if not module_runs and not copies:
        assert result["changed"] is False and result["imported"] == {} and result["copied"] == []

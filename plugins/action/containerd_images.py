# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller side of containerd_images: with src_dir, the image archives a host needs and lacks are
copied from the controller and imported in the same task.

1. The archives missing from the host's image cache (the probe names them) are copied from src_dir to
   the host's temporary directory first: a new host needs them all.
2. Run the module: with the copies, it checks each one holds the images read on the controller and puts
   it in the image cache; it imports what the runtime lacks and names the archives it needs that the
   host still lacks.
3. Copy each of those, then run the module again with the copies. A host that has its images and its
   cache gets no copy; check mode copies nothing.
Before all this, one shell command asks the host for the archives its cache lacks and the images its runtime holds
(plugins/module_utils/_containerd_images.py, probe_command): a host that has every archive and every image at its ID
is answered from it, without a module run.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.kubeforge.cluster.plugins.module_utils import _containerd_images
from ansible_collections.kubeforge.cluster.plugins.plugin_utils._host_tmp import HostTmpCopies

MODULE = "kubeforge.cluster.containerd_images"


class ActionModule(HostTmpCopies, ActionBase):
    # A temporary directory is made only when an archive must be copied (not on every run).
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        src_dir = args.pop("src_dir", None)
        if args.get("sources"):
            raise AnsibleActionFail("sources is set by the action plugin: give src_dir")
        copying = bool(src_dir) and not self._play_context.check_mode
        images = args.get("images") or {}
        probe = self._probe(images, args.get("crictl") or _containerd_images.DEFAULT_CRICTL) if images else ""
        if images and _containerd_images.nothing_to_do(images, probe):
            result.update(changed=False, imported={}, absent_archives=[], copied=[])
            return result
        try:
            uncached = _containerd_images.uncached_archives(probe) if copying else []
            if uncached:
                outcome = self._copy_and_import(args, str(src_dir), uncached, task_vars)
            else:
                outcome = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
            absent = outcome.get("absent_archives") or []
            if copying and absent and not outcome.get("failed"):
                outcome = self._copy_and_import(args, str(src_dir), absent, task_vars)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        result.update(outcome)
        return result

    def _probe(self, images: dict, crictl: str) -> str:
        """The archives the host's cache lacks and the images its runtime holds, from one shell command."""
        return str(self._low_level_execute_command(_containerd_images.probe_command(crictl, sorted(images))).get("stdout", ""))

    def _copy_and_import(self, args: dict, src_dir: str, absent: list, task_vars: dict) -> dict:
        local = {path: os.path.join(src_dir, os.path.basename(path)) for path in absent}
        missing = sorted(source for source in local.values() if not os.path.isfile(source))
        if missing:
            raise AnsibleActionFail(f"the hosts need image archives that {src_dir} does not hold: {', '.join(missing)}")
        paths = sorted(local)
        copies = self._send_to_host_tmp([(local[path], f"{index}-{os.path.basename(path)}") for index, path in enumerate(paths)])
        sources = dict(zip(paths, copies))
        return self._execute_module(module_name=MODULE, module_args=dict(args, sources=sources), task_vars=task_vars)

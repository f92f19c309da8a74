# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller files copied to the host for the module of the same task (artifact_install, containerd_images)."""

from __future__ import annotations


class HostTmpCopies:
    """A mixin for action plugins: the task's temporary directory on the host (made only when a file is sent)."""

    def _send_to_host_tmp(self, files: list) -> list:
        """Copy each (controller path, file name) into the task's temporary directory on the host, readable by
        the module; the paths on the host, in the same order. The action removes the directory at its end."""
        shell = self._connection._shell
        tmpdir = shell.tmpdir or self._make_tmp_path()
        remote = [shell.join_path(tmpdir, name) for _local, name in files]
        for (local, _name), path in zip(files, remote):
            self._transfer_file(local, path)
        self._fixup_perms2([tmpdir, *remote], execute=False)
        return remote

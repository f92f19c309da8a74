# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller files copied to the host for the module of the same task (artifact_install, containerd_images)."""

from __future__ import annotations

import shlex
from concurrent.futures import ThreadPoolExecutor

# Files sent at once where each transfer is a process of its own: one `docker exec` or scp/sftp stream is bound by
# one core's copying (a new node's 237 MB of binaries took 1.15-1.75 s one at a time, 0.72-0.92 s four at a time).
SIDE_BY_SIDE = 4
# Connections whose put_file starts a process per file and shares no state between transfers. paramiko keeps
# one SFTP session, and OpenSSH with a password shares sshpass's pipe: those send one file at a time.
PROCESS_PER_TRANSFER = frozenset({"ssh", "community.docker.docker", "local"})


class HostTmpCopies:
    """A mixin for action plugins: the task's temporary directory on the host (made only when a file is sent)."""

    def _absent_on_host(self, paths: list) -> list:
        """Those of ``paths`` that do not exist on the host, asked in one shell command (no module run): a file
        the host surely needs is then sent before the module's first run, which saves a run on a new host.
        Empty when the shell cannot tell: the module's own run then names what it needs."""
        if not paths:
            return []
        command = "; ".join(f"[ -e {shlex.quote(path)} ] || echo {shlex.quote(path)}" for path in paths)
        answer = self._low_level_execute_command(command)
        if answer.get("rc") != 0:
            return []
        listed = set(answer.get("stdout_lines") or str(answer.get("stdout", "")).splitlines())
        return [path for path in paths if path in listed]

    def _send_to_host_tmp(self, files: list) -> list:
        """Copy each (controller path, file name) into the task's temporary directory on the host, readable by
        the module; the paths on the host, in the same order. The action removes the directory at its end."""
        shell = self._connection._shell
        tmpdir = shell.tmpdir or self._make_tmp_path()
        remote = [shell.join_path(tmpdir, name) for _local, name in files]
        with ThreadPoolExecutor(max_workers=self._transfers_at_once()) as pool:
            # A failed transfer raises here once every transfer has ended.
            list(pool.map(self._transfer_file, [local for local, _name in files], remote))
        self._fixup_perms2([tmpdir, *remote], execute=False)
        return remote

    def _transfers_at_once(self) -> int:
        connection = self._connection
        shares_a_session = connection.transport not in PROCESS_PER_TRANSFER or (connection.transport == "ssh" and connection.get_option("password"))
        return 1 if shares_a_session else SIDE_BY_SIDE

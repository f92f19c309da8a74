# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Atomic writes with owner/group/mode, attribute fixes, and timestamped backups.

The writes and attribute fixes are the shared primitives of ``_fs``, raising ``PkiError``: a file
is written to a temporary file in its own directory, which gets its mode and owner, is fsynced
and then renamed over the target: readers see the old file or the new one, never a partial one,
and a key is never readable by others, not even for a moment.

A replaced file is kept as ``<path>.<YYYYmmddTHHMMSSZ>.bak`` (UTC), a hard link to the old file
(so with its mode and owner), or a copy where hard links are not possible.
"""

from __future__ import annotations

import datetime
import os
import shutil
import stat

from ansible_collections.kubeforge.cluster.plugins.module_utils import _fs
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.errors import PkiError

# The shared primitives of plugins/module_utils/_fs.py, raising PkiError.
UNCHANGED = _fs.UNCHANGED
resolve_owner = _fs.raising(PkiError, _fs.resolve_owner)
resolve_group = _fs.raising(PkiError, _fs.resolve_group)
apply_attributes = _fs.raising(PkiError, _fs.apply_attributes)
write_atomic = _fs.raising(PkiError, _fs.write_atomic)
sync_directory = _fs.sync_directory


def attributes(path: str) -> dict:
    """Mode (octal string), owner and group names of an existing file, as a diff shows them."""
    st = os.stat(path)
    return {"mode": f"{stat.S_IMODE(st.st_mode):04o}", "owner": _fs.user_name(st.st_uid), "group": _fs.group_name(st.st_gid)}


def attribute_changes(path: str, mode: int, uid: int, gid: int) -> dict:
    """Which of mode/owner/group of an existing file differ from what is asked: {name: (old, new)}."""
    return _fs.stat_changes(os.stat(path), mode, uid, gid)


def backup_name(path: str, now: datetime.datetime) -> str:
    """``<path>.<YYYYmmddTHHMMSSZ>.bak``, with ``-1``, ``-2``... before ``.bak`` if that exists already."""
    stamp = now.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    candidate = f"{path}.{stamp}.bak"
    counter = 0
    while os.path.lexists(candidate):
        counter += 1
        candidate = f"{path}.{stamp}-{counter}.bak"
    return candidate


def make_backup(path: str, now: datetime.datetime) -> str:
    """Keep the current file under a timestamped name; returns that name."""
    target = backup_name(path, now)
    try:
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
    except OSError as exc:
        raise PkiError(f"cannot back up {path} to {target}: {exc.strerror}") from exc
    return target

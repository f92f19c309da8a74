# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Atomic writes with owner/group/mode, attribute fixes, and timestamped backups.

A file is written to a temporary file in its own directory, which gets its mode and owner, is
fsynced and then renamed over the target: readers see the old file or the new one, never a
partial one, and a key is never readable by others, not even for a moment.

A replaced file is kept as ``<path>.<YYYYmmddTHHMMSSZ>.bak`` (UTC), a hard link to the old file
(so with its mode and owner), or a copy where hard links are not possible.
"""

from __future__ import annotations

import datetime
import grp
import os
import pwd
import shutil
import stat
import tempfile

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.errors import PkiError

UNCHANGED = -1  # os.chown's "leave as is"


def resolve_owner(owner: str | None) -> int:
    """The uid of a user name or number; ``UNCHANGED`` for None."""
    if owner is None or owner == "":
        return UNCHANGED
    if str(owner).isdigit():
        return int(owner)
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise PkiError(f"owner {owner!r}: no such user") from None


def resolve_group(group: str | None) -> int:
    """The gid of a group name or number; ``UNCHANGED`` for None."""
    if group is None or group == "":
        return UNCHANGED
    if str(group).isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise PkiError(f"group {group!r}: no such group") from None


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def attributes(path: str) -> dict:
    """Mode (octal string), owner and group names of an existing file, as a diff shows them."""
    st = os.stat(path)
    return {"mode": f"{stat.S_IMODE(st.st_mode):04o}", "owner": _user_name(st.st_uid), "group": _group_name(st.st_gid)}


def attribute_changes(path: str, mode: int, uid: int, gid: int) -> dict:
    """Which of mode/owner/group of an existing file differ from what is asked: {name: (old, new)}."""
    st = os.stat(path)
    changes = {}
    if stat.S_IMODE(st.st_mode) != mode:
        changes["mode"] = (f"{stat.S_IMODE(st.st_mode):04o}", f"{mode:04o}")
    if uid != UNCHANGED and st.st_uid != uid:
        changes["owner"] = (_user_name(st.st_uid), _user_name(uid))
    if gid != UNCHANGED and st.st_gid != gid:
        changes["group"] = (_group_name(st.st_gid), _group_name(gid))
    return changes


def apply_attributes(path: str, mode: int, uid: int, gid: int) -> None:
    try:
        if uid != UNCHANGED or gid != UNCHANGED:
            os.chown(path, uid, gid)
        os.chmod(path, mode)
    except OSError as exc:
        raise PkiError(f"cannot set owner/group/mode of {path}: {exc.strerror}") from exc


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


def write_atomic(path: str, data: bytes, mode: int, uid: int = UNCHANGED, gid: int = UNCHANGED, sync_dir: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory.

    Mode and owner are set on the temporary file before it is renamed over ``path``. With
    ``sync_dir`` False the caller syncs the directory (``sync_directory``) after a series of writes.
    """
    directory = os.path.dirname(path) or "."
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise PkiError(f"cannot write {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            if uid != UNCHANGED or gid != UNCHANGED:
                os.fchown(handle.fileno(), uid, gid)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise PkiError(f"cannot write {path}: {exc.strerror}") from exc
    if sync_dir:
        sync_directory(directory)


def sync_directory(directory: str) -> None:
    """fsync a directory, so that renames in it survive a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""File-system primitives shared by the file_bundle backend (``_files``) and the PKI (``_pki.files``).

Owner and group names resolved to ids, the mode/owner/group differences of a file, attributes
set in one step, atomic writes (temporary file in the same directory with its mode and owner,
fsynced, renamed over the target) and directory fsyncs.

Problems raise ``FsError``; a caller with an error type of its own wraps a primitive with
``raising`` so that its callers keep catching that type.
"""

from __future__ import annotations

import errno
import functools
import grp
import os
import pwd
import stat
import tempfile
from collections.abc import Callable

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError

UNCHANGED = -1  # os.chown's "leave as is"


class FsError(KubeforgeError):
    """A file or directory could not be read or written, or an owner or group does not exist."""


def raising(error: type[KubeforgeError], function: Callable) -> Callable:
    """``function`` with its ``FsError`` raised again as ``error`` (same message)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except FsError as exc:
            raise error(str(exc)) from exc.__cause__

    return wrapper


def _resolve(value: object, lookup: Callable[[str], int], what: str, kind: str) -> int:
    if value is None or value == "":
        return UNCHANGED
    if str(value).isdigit():
        return int(value)
    try:
        return lookup(str(value))
    except KeyError:
        raise FsError(f"{what} {value!r}: no such {kind}") from None


def resolve_owner(owner: object) -> int:
    """The uid of a user name or number; ``UNCHANGED`` for None or ''."""
    return _resolve(owner, lambda name: pwd.getpwnam(name).pw_uid, "owner", "user")


def resolve_group(group: object) -> int:
    """The gid of a group name or number; ``UNCHANGED`` for None or ''."""
    return _resolve(group, lambda name: grp.getgrnam(name).gr_gid, "group", "group")


def user_name(uid: int) -> str:
    """The name of a uid, or the number where it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    """The name of a gid, or the number where it has none."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def stat_changes(st: os.stat_result, mode: int, uid: int, gid: int) -> dict[str, tuple[str, str]]:
    """Which of mode/owner/group in ``st`` differ from what is asked: {name: (old, new)}, as a diff shows them."""
    changes = {}
    if stat.S_IMODE(st.st_mode) != mode:
        changes["mode"] = (f"{stat.S_IMODE(st.st_mode):04o}", f"{mode:04o}")
    if uid != UNCHANGED and st.st_uid != uid:
        changes["owner"] = (user_name(st.st_uid), user_name(uid))
    if gid != UNCHANGED and st.st_gid != gid:
        changes["group"] = (group_name(st.st_gid), group_name(gid))
    return changes


def apply_attributes(path: str, mode: int, uid: int = UNCHANGED, gid: int = UNCHANGED) -> None:
    """Set owner/group (unless ``UNCHANGED``) and mode of an existing file or directory."""
    try:
        if uid != UNCHANGED or gid != UNCHANGED:
            os.chown(path, uid, gid)
        os.chmod(path, mode)
    except OSError as exc:
        raise FsError(f"cannot set owner/group/mode of {path}: {exc.strerror}") from exc


def moved(source: str, dest: str) -> bool:
    """Rename ``source`` over ``dest``; False, nothing moved, when they are on different file systems."""
    try:
        os.replace(source, dest)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            return False
        raise
    return True


def write_atomic(path: str, data: bytes, mode: int, uid: int = UNCHANGED, gid: int = UNCHANGED, sync_dir: bool = True,
                 in_place_fallback: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory.

    Mode and owner are set on the temporary file before it is renamed over ``path``. With
    ``sync_dir`` False the caller syncs the directory (``sync_directory``) after a series of writes.
    With ``in_place_fallback``, a file that cannot be renamed over (a bind mount, such as a
    container's /etc/hosts) is rewritten in place instead.
    """
    directory = os.path.dirname(path) or "."
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise FsError(f"cannot write {path}: {exc.strerror}") from exc
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
        if not (in_place_fallback and exc.errno in _NOT_RENAMED_OVER and os.path.isfile(path)):
            raise FsError(f"cannot write {path}: {exc.strerror}") from exc
        _write_in_place(path, data, mode, uid, gid)
    if sync_dir:
        sync_directory(directory)


# What rename() says of a target it cannot replace: a mount point (EBUSY), another file system, a denial.
_NOT_RENAMED_OVER = (errno.EBUSY, errno.EXDEV, errno.EPERM, errno.EACCES)


def _write_in_place(path: str, data: bytes, mode: int, uid: int, gid: int) -> None:
    try:
        with open(path, "r+b") as handle:
            handle.write(data)
            handle.truncate()
            handle.flush()
            os.fsync(handle.fileno())
        apply_attributes(path, mode, uid, gid)
    except OSError as exc:
        raise FsError(f"cannot write {path} in place: {exc.strerror}") from exc


def sync_directory(directory: str) -> None:
    """fsync a directory, so that renames in it survive a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

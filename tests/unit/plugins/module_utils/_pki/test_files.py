# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import datetime
import grp
import os
import pwd
import stat

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki import files
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.errors import PkiError

WHEN = datetime.datetime(2026, 3, 1, 12, 30, 45, tzinfo=datetime.timezone.utc)


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o640])
def test_write_atomic_sets_mode_and_leaves_no_temp_file(tmp_path, mode):
    target = tmp_path / "f.pem"
    files.write_atomic(str(target), b"data", mode)
    assert target.read_bytes() == b"data" and mode_of(target) == mode
    assert os.listdir(tmp_path) == ["f.pem"]


def test_write_atomic_replaces_and_ignores_umask(tmp_path):
    target = tmp_path / "f.pem"
    target.write_bytes(b"old")
    old_umask = os.umask(0o077)
    try:
        files.write_atomic(str(target), b"new", 0o644, sync_dir=False)
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"new" and mode_of(target) == 0o644


def test_write_atomic_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.pem"
    target.write_bytes(b"old")

    def fail(*_args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(PkiError, match="cannot write .*No space left"):
        files.write_atomic(str(target), b"new", 0o644)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.pem"]


def test_write_atomic_missing_directory(tmp_path):
    with pytest.raises(PkiError, match="cannot write"):
        files.write_atomic(str(tmp_path / "no" / "f"), b"x", 0o644)


def test_write_atomic_with_own_uid_and_gid(tmp_path):
    target = tmp_path / "f.pem"
    files.write_atomic(str(target), b"x", 0o600, os.getuid(), os.getgid())
    assert (os.stat(target).st_uid, os.stat(target).st_gid) == (os.getuid(), os.getgid())


def test_backup_names(tmp_path):
    target = tmp_path / "ca.crt"
    target.write_bytes(b"v1")
    first = files.make_backup(str(target), WHEN)
    assert first == f"{target}.20260301T123045Z.bak"
    target.write_bytes(b"v2")  # a new inode is not needed: the backup is a hard link taken before a rename
    second = files.make_backup(str(target), WHEN)
    assert second == f"{target}.20260301T123045Z-1.bak"
    assert files.backup_name(str(target), WHEN) == f"{target}.20260301T123045Z-2.bak"


def test_backup_keeps_mode(tmp_path):
    target = tmp_path / "k.key"
    target.write_bytes(b"secret")
    target.chmod(0o600)
    backup = files.make_backup(str(target), WHEN)
    files.write_atomic(str(target), b"new", 0o600)
    assert open(backup, "rb").read() == b"secret" and mode_of(backup) == 0o600


def test_backup_falls_back_to_a_copy(tmp_path, monkeypatch):
    target = tmp_path / "c.crt"
    target.write_bytes(b"v1")

    def no_links(*_args):
        raise OSError(1, "Operation not permitted")
    monkeypatch.setattr(os, "link", no_links)
    backup = files.make_backup(str(target), WHEN)
    assert open(backup, "rb").read() == b"v1"


def test_attribute_changes_and_apply(tmp_path):
    target = tmp_path / "c.crt"
    target.write_bytes(b"x")
    target.chmod(0o644)
    uid, gid = os.getuid(), os.getgid()
    assert files.attribute_changes(str(target), 0o644, uid, gid) == {}
    assert files.attribute_changes(str(target), 0o644, files.UNCHANGED, files.UNCHANGED) == {}
    assert files.attribute_changes(str(target), 0o600, uid, gid) == {"mode": ("0644", "0600")}
    files.apply_attributes(str(target), 0o600, uid, gid)
    assert mode_of(target) == 0o600
    assert files.attributes(str(target)) == {"mode": "0600", "owner": pwd.getpwuid(uid).pw_name, "group": grp.getgrgid(gid).gr_name}


def test_apply_attributes_without_permission(tmp_path, monkeypatch):
    target = tmp_path / "c.crt"
    target.write_bytes(b"x")

    def denied(*_args):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(os, "chown", denied)
    with pytest.raises(PkiError, match="cannot set owner/group/mode"):
        files.apply_attributes(str(target), 0o644, 0, 0)


def test_resolve_owner_and_group():
    me = pwd.getpwuid(os.getuid())
    assert files.resolve_owner(None) == files.UNCHANGED
    assert files.resolve_owner(me.pw_name) == me.pw_uid
    assert files.resolve_owner("4242") == 4242
    assert files.resolve_group(grp.getgrgid(os.getgid()).gr_name) == os.getgid()
    assert files.resolve_group("") == files.UNCHANGED
    with pytest.raises(PkiError, match="owner 'no-such-user-kf': no such user"):
        files.resolve_owner("no-such-user-kf")
    with pytest.raises(PkiError, match="group 'no-such-group-kf': no such group"):
        files.resolve_group("no-such-group-kf")


def test_sync_directory(tmp_path):
    files.sync_directory(str(tmp_path))

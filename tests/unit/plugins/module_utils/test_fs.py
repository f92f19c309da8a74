# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The shared file-system primitives: FsError, its translation by raising(), and stat_changes."""
from __future__ import annotations

import importlib
import os

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils import _fs
from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError
from ansible_collections.kubeforge.cluster.plugins.module_utils._files import FilesError
from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.errors import PkiError


class OwnError(KubeforgeError):
    pass


def test_primitives_raise_fs_error(tmp_path):
    with pytest.raises(_fs.FsError, match="owner 'no-such-user-kf': no such user"):
        _fs.resolve_owner("no-such-user-kf")
    with pytest.raises(_fs.FsError, match="cannot write"):
        _fs.write_atomic(str(tmp_path / "no" / "f"), b"x", 0o644)


def test_raising_keeps_the_message_and_the_cause(tmp_path):
    write = _fs.raising(OwnError, _fs.write_atomic)
    with pytest.raises(OwnError, match="cannot write .*No such file") as info:
        write(str(tmp_path / "no" / "f"), b"x", 0o644)
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(OwnError) as info:
        _fs.raising(OwnError, _fs.resolve_group)("no-such-group-kf")
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert _fs.raising(OwnError, _fs.resolve_owner)("4242") == 4242


@pytest.mark.parametrize("error, module", [(FilesError, "_files"), (PkiError, "_pki.files")])
def test_both_callers_keep_their_error_type(error, module):
    callers = importlib.import_module(f"ansible_collections.kubeforge.cluster.plugins.module_utils.{module}")
    with pytest.raises(error, match="no such user") as info:
        callers.resolve_owner("no-such-user-kf")
    assert info.value.errors == [str(info.value)]


def test_stat_changes(tmp_path):
    target = tmp_path / "f"
    target.write_bytes(b"")
    target.chmod(0o640)
    st = os.stat(target)
    assert _fs.stat_changes(st, 0o640, st.st_uid, st.st_gid) == {}
    assert _fs.stat_changes(st, 0o600, _fs.UNCHANGED, _fs.UNCHANGED) == {"mode": ("0640", "0600")}
    assert list(_fs.stat_changes(st, 0o600, st.st_uid + 1, st.st_gid + 1)) == ["mode", "owner", "group"]

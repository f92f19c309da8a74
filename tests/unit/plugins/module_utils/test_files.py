# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The file_bundle backend: what changes, atomic writes with modes, check mode, diffs without contents, bad input."""
from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils import _files
from ansible_collections.kubeforge.cluster.plugins.module_utils._files import FileBundleBackend, FilesError

SECRET = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def bundle(tmp_path, **params):
    files = params.pop("files", None)
    if files is None:
        files = [
            {"dest": str(tmp_path / "pki" / "a.crt"), "content_base64": b64("CERT\n"), "mode": "0644", "services": ["kube-apiserver"]},
            {"dest": str(tmp_path / "pki" / "a.key"), "content_base64": b64(SECRET), "mode": "0600", "services": ["kube-apiserver", "etcd"]},
        ]
    return {"files": files, **params}


def run(params, **kwargs):
    return FileBundleBackend(params, **kwargs).run()


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_creates_files_and_parents_then_changes_nothing(tmp_path):
    params = bundle(tmp_path, directory_mode="0750")
    first = run(params)
    assert first["changed"] and first["changed_files"] == [str(tmp_path / "pki" / "a.crt"), str(tmp_path / "pki" / "a.key")]
    assert [item["changes"] for item in first["files"]] == [["created"], ["created"]]
    assert first["services_changed"] == ["etcd", "kube-apiserver"]
    assert (tmp_path / "pki" / "a.key").read_text() == SECRET
    assert mode_of(tmp_path / "pki" / "a.key") == 0o600 and mode_of(tmp_path / "pki" / "a.crt") == 0o644
    assert mode_of(tmp_path / "pki") == 0o750
    second = run(params)
    assert not second["changed"] and second["changed_files"] == [] and second["services_changed"] == []
    assert [item["changes"] for item in second["files"]] == [[], []]


def test_only_the_changed_file_and_its_services_are_reported(tmp_path):
    params = bundle(tmp_path)
    run(params)
    params["files"][0]["content_base64"] = b64("CERT2\n")
    result = run(params)
    assert result["changed_files"] == [str(tmp_path / "pki" / "a.crt")]
    assert result["files"][0]["changes"] == ["content"] and result["services_changed"] == ["kube-apiserver"]


def test_a_wrong_mode_is_fixed_without_rewriting(tmp_path):
    params = bundle(tmp_path)
    run(params)
    key = tmp_path / "pki" / "a.key"
    os.chmod(key, 0o644)
    inode = os.stat(key).st_ino
    result = run(params, diff=True)
    assert result["files"][1]["changes"] == ["mode"] and mode_of(key) == 0o600 and os.stat(key).st_ino == inode
    assert result["diff"][0]["before"] == f"{key}: mode 0644\n" and result["diff"][0]["after"] == f"{key}: mode 0600\n"


def test_replaced_file_is_a_new_inode_never_partially_written(tmp_path):
    params = bundle(tmp_path)
    run(params)
    key = tmp_path / "pki" / "a.key"
    inode = os.stat(key).st_ino
    params["files"][1]["content_base64"] = b64(SECRET + "more\n")
    run(params)
    assert os.stat(key).st_ino != inode and mode_of(key) == 0o600
    assert [name for name in os.listdir(tmp_path / "pki") if name.endswith(".tmp")] == []


def test_check_mode_writes_nothing_and_reports_what_would_change(tmp_path):
    result = run(bundle(tmp_path), check_mode=True, diff=True)
    assert result["changed"] and result["services_changed"] == ["etcd", "kube-apiserver"]
    assert not (tmp_path / "pki").exists()
    assert "absent" in result["diff"][0]["before"]


def test_diff_never_shows_the_content(tmp_path):
    params = bundle(tmp_path)
    run(params)
    params["files"][1]["content_base64"] = b64(SECRET.replace("c2VjcmV0", "b3RoZXI="))
    result = run(params, diff=True)
    text = result["diff"][0]["before"] + result["diff"][0]["after"] + repr(result)
    assert "c2VjcmV0" not in text and "b3RoZXI=" not in text
    assert result["diff"][0]["after"] == f"{tmp_path / 'pki' / 'a.key'}: content (new)\n"


def test_a_file_marked_diff_shows_its_old_and_new_content_and_the_others_do_not(tmp_path):
    params = bundle(tmp_path)
    unit = str(tmp_path / "unit.service")
    params["files"].append({"dest": unit, "content_base64": b64("[Service]\nExecStart=/a\n"), "diff": True})
    created = run(params, check_mode=True, diff=True)
    assert created["diff"][1] == {"before": "", "after": "[Service]\nExecStart=/a\n", "before_header": unit, "after_header": unit}
    run(params)
    params["files"][-1]["content_base64"] = b64("[Service]\nExecStart=/b\n")
    params["files"][1]["content_base64"] = b64(SECRET + "more\n")
    result = run(params, diff=True)
    assert [(item["before"], item["after"]) for item in result["diff"][1:]] == [("[Service]\nExecStart=/a\n", "[Service]\nExecStart=/b\n")]
    assert "c2VjcmV0" not in repr(result)


def test_owner_and_group_are_applied(tmp_path):
    params = bundle(tmp_path, owner=str(os.getuid()), group=str(os.getgid()))
    run(params)
    st = os.stat(tmp_path / "pki" / "a.key")
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    assert not run(params)["changed"]


def test_plain_content_and_default_mode(tmp_path):
    result = run({"files": [{"dest": str(tmp_path / "f"), "content": "héllo"}], "mode": "0640"})
    assert result["changed"] and (tmp_path / "f").read_text(encoding="utf-8") == "héllo" and mode_of(tmp_path / "f") == 0o640


def test_directories_are_created_and_their_mode_enforced(tmp_path):
    target = tmp_path / "creds" / "pki"
    params = {"files": [], "directories": [str(target), str(tmp_path / "creds")], "directory_mode": "0700"}
    first = run(params)
    assert first["changed"] and first["changed_directories"] == [str(target), str(tmp_path / "creds")]
    assert mode_of(target) == 0o700 and mode_of(tmp_path / "creds") == 0o700
    assert not run(params)["changed"]
    os.chmod(target, 0o755)
    result = run(params, diff=True)
    assert result["changed_directories"] == [str(target)] and mode_of(target) == 0o700
    assert result["diff"][0]["before"] == f"{target}/: different mode\n"


def test_directory_that_is_a_file_is_an_error(tmp_path):
    (tmp_path / "x").write_text("")
    with pytest.raises(FilesError, match="is not a directory"):
        run({"files": [], "directories": [str(tmp_path / "x")]})


@pytest.mark.parametrize("entry, fragment", [
    ({"dest": "relative/file", "content": "x"}, "must be an absolute path"),
    ({"dest": "/x", "content": "x", "mode": "u+rw"}, "is not an octal mode"),
    ({"dest": "/x", "content_base64": "!!!"}, "not valid base64"),
    ({"dest": "/x", "src": "/on/the/controller"}, "read on the controller by the file_bundle action plugin"),
    ({"dest": "/x"}, "content, src or block is required"),
    ({"dest": "/x", "content": "x", "owner": "no-such-user-kubeforge"}, "no such user"),
    ({"dest": "/x", "content": "x", "group": "no-such-group-kubeforge"}, "no such group"),
])
def test_bad_entries(entry, fragment):
    with pytest.raises(FilesError, match=fragment):
        run({"files": [entry]})


def test_every_bad_entry_is_reported_and_nothing_written(tmp_path):
    good = {"dest": str(tmp_path / "good"), "content": "x"}
    with pytest.raises(FilesError) as info:
        run({"files": [good, {"dest": "rel", "content": "x"}, {"dest": str(tmp_path / "good"), "content": "y"}]})
    assert len(info.value.errors) == 2 and "files[2]" in info.value.errors[1] and "also written by files[0]" in info.value.errors[1]
    assert not (tmp_path / "good").exists()


@pytest.mark.parametrize("value, expected", [("0644", 0o644), ("600", 0o600), (0o640, 0o640), ("01777", 0o1777)])
def test_parse_mode(value, expected):
    assert _files.parse_mode(value) == expected


@pytest.mark.parametrize("value", [True, "0999", "rw-r--r--", 0o17777, None])
def test_parse_mode_rejects(value):
    with pytest.raises(FilesError):
        _files.parse_mode(value)


def test_write_failure_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "f"

    def fail(*_args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(FilesError, match="No space left on device"):
        run({"files": [{"dest": str(target), "content": "x"}]})
    assert os.listdir(tmp_path) == []


def test_absent_files_are_removed(tmp_path):
    stale = tmp_path / "ca.key"
    stale.write_text(SECRET)
    params = {"files": [{"dest": str(tmp_path / "ca.crt"), "content": "CERT\n"}], "absent": [str(stale), str(tmp_path / "never-there")]}
    checked = run(params, check_mode=True, diff=True)
    assert checked["changed"] and checked["removed_files"] == [str(stale)] and stale.exists()
    assert f"{stale}: absent" in checked["diff"][0]["after"]
    result = run(params)
    assert result["removed_files"] == [str(stale)] and not stale.exists() and result["services_changed"] == []
    assert not run(params)["changed"]


@pytest.mark.parametrize("absent, fragment", [("relative", "must be an absolute path"), ("{dir}", "is a directory"), ("{dir}/f", "is also in files")])
def test_bad_absent(tmp_path, absent, fragment):
    params = {"files": [{"dest": str(tmp_path / "f"), "content": "x"}], "absent": [absent.format(dir=tmp_path)]}
    with pytest.raises(FilesError, match=fragment):
        run(params)


def real_run(argv):
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


CHECKER = f"{sys.executable} -c \"import sys; text = open(sys.argv[1]).read(); sys.exit('bad: ' + text.strip() if 'bad' in text else 0)\" %s"


def test_a_checked_file_is_written_only_when_its_checker_accepts_it_and_then_nothing_of_the_bundle(tmp_path):
    params = bundle(tmp_path)
    conf = tmp_path / "pki" / "nginx.conf"
    params["files"].append({"dest": str(conf), "content_base64": b64("good\n"), "validate": CHECKER})
    assert run(params, run_command=real_run)["changed"] and conf.read_text() == "good\n"
    params["files"][-1]["content_base64"] = b64("bad\n")
    params["files"][0]["content_base64"] = b64("CERT 2\n")
    with pytest.raises(FilesError, match="refused the new content, nothing written: bad: bad"):
        run(params, run_command=real_run)
    assert conf.read_text() == "good\n" and (tmp_path / "pki" / "a.crt").read_text() == "CERT\n"
    assert [name for name in os.listdir(tmp_path / "pki") if name.endswith(".check")] == []


def test_the_checker_runs_only_on_new_content_and_never_in_check_mode(tmp_path):
    calls = []

    def recording(argv):
        calls.append(argv)
        return 0, "", ""
    params = bundle(tmp_path, files=[{"dest": str(tmp_path / "etc" / "x.conf"), "content_base64": b64("x\n"), "validate": "checker -f %s"}])
    run(params, check_mode=True, run_command=recording)
    assert calls == []
    run(params, run_command=recording)
    assert len(calls) == 1 and calls[0][:2] == ["checker", "-f"] and calls[0][2].endswith(".check")
    run(params, run_command=recording)
    assert len(calls) == 1


def test_a_validate_command_without_the_path_placeholder_is_refused(tmp_path):
    params = bundle(tmp_path, files=[{"dest": str(tmp_path / "x.conf"), "content_base64": b64("x\n"), "validate": "nginx -t"}])
    with pytest.raises(FilesError, match="must contain %s"):
        run(params)


def test_a_directory_can_set_its_own_mode(tmp_path):
    params = {"files": [], "directories": [str(tmp_path / "config"), {"path": str(tmp_path / "audit"), "mode": "0700"}]}
    assert run(params)["changed_directories"] == [str(tmp_path / "config"), str(tmp_path / "audit")]
    assert mode_of(tmp_path / "config") == 0o755 and mode_of(tmp_path / "audit") == 0o700
    with pytest.raises(FilesError, match="must be an absolute path"):
        run({"files": [], "directories": [{"path": "relative", "mode": "0700"}]})


def test_a_file_not_forced_is_written_only_where_there_is_none(tmp_path):
    dest = tmp_path / "encryption.yaml"
    params = {"files": [{"dest": str(dest), "content_base64": b64(SECRET), "mode": "0600", "force": False}]}
    first = run(params)
    assert first["changed_files"] == [str(dest)] and dest.read_text() == SECRET
    assert first["stale_files"] == []  # created by this run, not stale
    os.chmod(dest, 0o644)
    assert run(params)["stale_files"] == []  # only the content counts
    dest.write_text("the keys the apiserver runs with\n")
    result = run(params)
    assert not result["changed"] and result["stale_files"] == [str(dest)]
    assert run(params, check_mode=True)["stale_files"] == [str(dest)]
    assert dest.read_text() == "the keys the apiserver runs with\n" and mode_of(dest) == 0o644
    assert run({"files": [dict(params["files"][0], force=True)]}, check_mode=True)["stale_files"] == []


MARKER = "# {mark} cluster hosts"


def test_a_block_replaces_only_its_own_lines_and_is_appended_where_there_is_none(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n# BEGIN cluster hosts\n10.0.0.1 old\n# END cluster hosts\n10.9.9.9 mine\n")
    params = {"files": [{"dest": str(hosts), "marker": MARKER, "block": "10.0.0.1 cp1\n10.0.0.2 cp2"}]}
    assert run(params)["changed_files"] == [str(hosts)]
    assert hosts.read_text() == "127.0.0.1 localhost\n# BEGIN cluster hosts\n10.0.0.1 cp1\n10.0.0.2 cp2\n# END cluster hosts\n10.9.9.9 mine\n"
    assert not run(params)["changed"]
    other = tmp_path / "other"
    other.write_text("127.0.0.1 localhost")
    run({"files": [{"dest": str(other), "marker": MARKER, "block": "10.0.0.1 cp1\n"},
                   {"dest": str(tmp_path / "new"), "marker": MARKER, "block": "10.0.0.1 cp1\n"}]})
    assert other.read_text() == "127.0.0.1 localhost\n# BEGIN cluster hosts\n10.0.0.1 cp1\n# END cluster hosts\n"
    assert (tmp_path / "new").read_text() == "# BEGIN cluster hosts\n10.0.0.1 cp1\n# END cluster hosts\n"


def test_a_marker_needs_its_mark(tmp_path):
    with pytest.raises(FilesError, match=r"marker '# cluster hosts' must contain \{mark\}"):
        run({"files": [{"dest": str(tmp_path / "hosts"), "marker": "# cluster hosts", "block": "x"}]})


@pytest.mark.parametrize("unsafe_writes", [True, False])
def test_a_file_that_cannot_be_renamed_over_is_written_in_place_only_with_unsafe_writes(tmp_path, monkeypatch, unsafe_writes):
    """A bind mount (a container's /etc/hosts) refuses rename() with EBUSY: the same inode is rewritten instead."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n" + "# padding\n" * 50)
    inode = os.stat(hosts).st_ino

    def busy(*_args):
        raise OSError(16, "Device or resource busy")
    monkeypatch.setattr(os, "replace", busy)
    params = {"files": [{"dest": str(hosts), "marker": MARKER, "block": "10.0.0.1 cp1\n", "unsafe_writes": unsafe_writes}]}
    if not unsafe_writes:
        with pytest.raises(FilesError, match="Device or resource busy"):
            run(params)
        assert hosts.read_text().count("# padding") == 50 and os.listdir(tmp_path) == ["hosts"]
        return
    assert run(params)["changed"]
    assert hosts.read_text() == "127.0.0.1 localhost\n" + "# padding\n" * 50 + "# BEGIN cluster hosts\n10.0.0.1 cp1\n# END cluster hosts\n"
    assert os.stat(hosts).st_ino == inode and os.listdir(tmp_path) == ["hosts"]

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""etcd_snapshot's backend: the SHA-256 trailer, etcdutl output, restore command lines and the restore's file moves."""
from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import os
import stat

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd import snapshot as snap
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import EtcdError

BODY = bytes(range(256)) * 300
GOOD = BODY + hashlib.sha256(BODY).digest()


@pytest.mark.parametrize("step", [1, 7, 31, 32, 33, 4096, len(GOOD)])
def test_trailer_check_at_any_split(step):
    check = snap.TrailerCheck()
    for i in range(0, len(GOOD), step):
        check.update(GOOD[i:i + step])
    assert check.valid and check.size == len(GOOD) and check.sha256 == hashlib.sha256(GOOD).hexdigest()


@pytest.mark.parametrize("data", [
    BODY,                                      # no trailer (a db copied from a data directory)
    GOOD[:-1] + bytes([GOOD[-1] ^ 1]),         # trailer damaged
    bytes([GOOD[0] ^ 1]) + GOOD[1:],           # body damaged
    GOOD[-32:],                                # only 32 bytes
    b"",
])
def test_trailer_check_refuses(data):
    check = snap.TrailerCheck()
    check.update(data)
    assert not check.valid


def test_check_file(tmp_path):
    (tmp_path / "s.db").write_bytes(GOOD)
    assert snap.check_file(str(tmp_path / "s.db")).valid


# Recorded from etcdutl 3.5.30 (Debian sid) and the 3.6 format, which adds "version".
@pytest.mark.parametrize("output, expected", [
    ('{"hash":1233162140,"revision":51,"totalKey":56,"totalSize":61440}\n',
     {"hash": 1233162140, "revision": 51, "total_keys": 56, "total_size": 61440}),
    ('Deprecated: Use `etcdutl snapshot status` instead.\n\n{"hash":1,"revision":2,"totalKey":3,"totalSize":4,"version":"3.6.0"}\n',
     {"hash": 1, "revision": 2, "total_keys": 3, "total_size": 4, "version": "3.6.0"}),
])
def test_parse_etcdutl_status(output, expected):
    assert snap.parse_etcdutl_status(output) == expected


@pytest.mark.parametrize("output", ["", "49808f9c, 51, 56, 61 kB\n", "{not json"])
def test_parse_etcdutl_status_refuses(output):
    with pytest.raises(EtcdError, match="cannot read etcdutl"):
        snap.parse_etcdutl_status(output)


RESTORE = {"name": "m0", "initial_cluster": "m0=https://a:2380,m1=https://b:2380", "initial_cluster_token": "new",
           "initial_advertise_peer_urls": ["https://a:2380"]}


@pytest.mark.parametrize("extra, tail", [
    ({}, []),
    ({"bump_revision": 1000000000}, ["--bump-revision", "1000000000", "--mark-compacted"]),
    ({"mark_compacted": True}, ["--mark-compacted"]),
    ({"skip_hash_check": True}, ["--skip-hash-check"]),
])
def test_restore_args(extra, tail):
    args = snap.restore_args("/bin/etcdutl", "/s.db", "/d", dict(RESTORE, **extra))
    assert args[:6] == ["/bin/etcdutl", "snapshot", "restore", "/s.db", "--data-dir", "/d"]
    assert args[6:14] == ["--name", "m0", "--initial-cluster", "m0=https://a:2380,m1=https://b:2380", "--initial-cluster-token", "new",
                          "--initial-advertise-peer-urls", "https://a:2380"]
    assert args[14:] == tail


def test_member_db_locked(tmp_path):
    db = tmp_path / "member" / "snap" / "db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"x")
    assert not snap.member_db_locked(str(tmp_path))
    with open(db, "rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)  # as bbolt does in a running etcd
        assert snap.member_db_locked(str(tmp_path))
    assert not snap.member_db_locked(str(tmp_path / "missing"))


class FakeTools:
    """Fake etcdutl / etcdctl runners (unit test only) recording their command lines; restore creates the data dir as etcdutl does."""

    def __init__(self, revision=51):
        self.calls = []
        self.revision = revision

    def __call__(self, args):
        self.calls.append(args)
        if args[1:3] == ["snapshot", "status"]:
            return 0, json.dumps({"hash": 7, "revision": self.revision, "totalKey": 3, "totalSize": 100}), ""
        if args[1:3] == ["snapshot", "restore"]:
            data_dir = args[args.index("--data-dir") + 1]
            os.makedirs(os.path.join(data_dir, "member", "snap"))
            open(os.path.join(data_dir, "member", "snap", "db"), "wb").close()
            return 0, "", "restored snapshot"
        if "save" in args:
            with open(args[-1], "wb") as handle:
                handle.write(GOOD)
            return 0, "Snapshot saved", ""
        return 1, "", "unexpected"


@pytest.fixture
def tools(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("etcdutl", "etcdctl"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 1\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return FakeTools()


def restore_backend(tmp_path, tools, **extra):
    (tmp_path / "s.db").write_bytes(GOOD)
    params = dict(RESTORE, state="restored", path=str(tmp_path / "s.db"), data_dir=str(tmp_path / "etcd"), **extra)
    stamps = iter(datetime.datetime(2025, 1, 1, 2, 0, s, tzinfo=datetime.timezone.utc) for s in range(60))
    return snap.EtcdSnapshotBackend(params, tools, now=lambda: next(stamps))


def test_restore_moves_the_old_data_dir_aside_and_is_idempotent(tmp_path, tools):
    old = tmp_path / "etcd" / "member"
    old.mkdir(parents=True)
    (old / "old-data").write_text("keep me")
    first = restore_backend(tmp_path, tools, bump_revision=1000).run()
    assert first["changed"] and first["moved_to"] == str(tmp_path / "etcd.moved-20250101T020000Z")
    assert (tmp_path / "etcd.moved-20250101T020000Z" / "member" / "old-data").read_text() == "keep me"
    assert first["snapshot_revision"] == 51 and first["revision_after"] == 1051
    assert stat.S_IMODE(os.stat(tmp_path / "etcd").st_mode) == 0o700
    marker = json.loads((tmp_path / "etcd" / snap.MARKER_NAME).read_text())
    assert marker["snapshot_sha256"] == hashlib.sha256(GOOD).hexdigest() and marker["bump_revision"] == 1000
    restore_call = [c for c in tools.calls if c[2] == "restore"][0]
    assert restore_call[restore_call.index("--data-dir") + 1] == str(tmp_path / "etcd.restore-20250101T020000Z")
    again = restore_backend(tmp_path, tools, bump_revision=1000).run()
    assert not again["changed"] and len([c for c in tools.calls if c[2] == "restore"]) == 1
    other_token = restore_backend(tmp_path, tools, bump_revision=1000, initial_cluster_token="newer").run(check_mode=True)
    assert other_token["changed"] and other_token["moved_to"].startswith(str(tmp_path / "etcd.moved-"))


def test_restore_check_mode_writes_nothing(tmp_path, tools):
    result = restore_backend(tmp_path, tools).run(check_mode=True)
    assert result["changed"] and result["moved_to"] is None
    assert sorted(os.listdir(tmp_path)) == ["bin", "s.db"]


def test_restore_in_check_mode_before_the_snapshot_is_on_the_member_reports_the_restore(tmp_path, tools):
    """etcd_restore.yml --check: the copy to the member only reported, the restore is too; a real run still refuses."""
    backend = restore_backend(tmp_path, tools)
    (tmp_path / "s.db").unlink()
    result = backend.run(check_mode=True)
    assert result["changed"] and result["snapshot_missing"] and tools.calls == []
    assert sorted(os.listdir(tmp_path)) == ["bin"]
    with pytest.raises(EtcdError, match="does not exist"):
        backend.run()


def test_restore_refuses_a_damaged_snapshot(tmp_path, tools):
    backend = restore_backend(tmp_path, tools)
    (tmp_path / "s.db").write_bytes(GOOD[:-1] + b"\0")
    with pytest.raises(EtcdError, match="fails its SHA-256 check"):
        backend.run()
    assert tools.calls == []


def test_restore_refuses_a_running_member(tmp_path, tools):
    db = tmp_path / "etcd" / "member" / "snap" / "db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"x")
    with open(db, "rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        with pytest.raises(EtcdError, match="in use by a running etcd"):
            restore_backend(tmp_path, tools).run()


def test_restore_plan_in_check_mode_reports_a_running_member(tmp_path, tools):
    db = tmp_path / "etcd" / "member" / "snap" / "db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"x")
    with open(db, "rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        result = restore_backend(tmp_path, tools).run(check_mode=True)
    assert result["changed"] is True and result["data_dir_in_use"] is True
    assert (tmp_path / "etcd" / "member" / "snap" / "db").read_bytes() == b"x"


def test_restore_needs_its_options(tmp_path, tools):
    backend = restore_backend(tmp_path, tools)
    del backend.params["initial_cluster_token"]
    with pytest.raises(EtcdError, match="needs initial_cluster_token"):
        backend.run()


class BlobClient:
    def __init__(self, blobs):
        self.blobs = blobs
        self.closed = False

    def snapshot(self):
        yield from self.blobs

    def close(self):
        self.closed = True


def save_backend(tmp_path, blobs, tools=None, **extra):
    params = {"state": "saved", "path": str(tmp_path / "s.db"), "endpoints": ["https://a:2379"], "method": "gateway", **extra}
    client = BlobClient(blobs)
    return snap.EtcdSnapshotBackend(params, tools, client_factory=lambda: client), client


def test_save_through_the_gateway(tmp_path):
    backend, client = save_backend(tmp_path, [GOOD[:1000], GOOD[1000:]])
    result = backend.run()
    assert result["changed"] and result["method"] == "gateway" and result["size"] == len(GOOD) and client.closed
    assert (tmp_path / "s.db").read_bytes() == GOOD and stat.S_IMODE(os.stat(tmp_path / "s.db").st_mode) == 0o600
    assert not (tmp_path / "s.db.part").exists()
    again = save_backend(tmp_path, [b"never read"])[0]
    assert not again.run()["changed"]


def test_save_refuses_a_snapshot_without_its_trailer(tmp_path):
    backend = save_backend(tmp_path, [BODY])[0]
    with pytest.raises(EtcdError, match="fails its SHA-256 check"):
        backend.run()
    assert os.listdir(tmp_path) == []


def test_save_with_etcdctl(tmp_path, tools):
    backend = save_backend(tmp_path, [], tools=tools, method="auto", ca_cert="/ca.crt", client_cert="/c.crt", client_key="/c.key")[0]
    result = backend.run()
    assert result["method"] == "etcdctl" and (tmp_path / "s.db").read_bytes() == GOOD
    call = tools.calls[0]
    assert call[0].endswith("/etcdctl") and "--endpoints=https://a:2379" in call and "--cacert=/ca.crt" in call
    assert call[-3:] == ["snapshot", "save", str(tmp_path / "s.db.part")] and "--command-timeout=1h" in call


def test_save_check_mode(tmp_path):
    backend = save_backend(tmp_path, [GOOD])[0]
    assert backend.run(check_mode=True)["changed"] and os.listdir(tmp_path) == []


def test_save_refuses_a_missing_directory(tmp_path):
    backend = save_backend(tmp_path / "absent", [GOOD])[0]
    with pytest.raises(EtcdError, match="the directory of .*absent/s.db does not exist"):
        backend.run()
    assert os.listdir(tmp_path) == []


def test_save_check_mode_reports_a_save_into_a_directory_a_run_would_create(tmp_path):
    backend, client = save_backend(tmp_path / "absent", [GOOD])
    result = backend.run(check_mode=True)
    assert result["changed"] and result["path"] == str(tmp_path / "absent" / "s.db") and not client.closed
    assert os.listdir(tmp_path) == []


def test_status(tmp_path, tools):
    (tmp_path / "s.db").write_bytes(GOOD)
    result = snap.EtcdSnapshotBackend({"state": "status", "path": str(tmp_path / "s.db")}, tools).run()
    assert result["revision"] == 51 and result["total_keys"] == 3 and result["trailer_valid"] and not result["changed"]


def test_etcdctl_failing_on_every_endpoint(tmp_path, tools):
    def refuse(args):
        tools.calls.append(args)
        return 1, "", '{"level":"warn"}\nError: context deadline exceeded\n'
    params = {"state": "saved", "path": str(tmp_path / "s.db"), "endpoints": ["https://a:2379", "https://b:2379"], "method": "etcdctl"}
    with pytest.raises(EtcdError, match=r"on every endpoint: https://a:2379: Error: context deadline exceeded; https://b:2379: Error"):
        snap.EtcdSnapshotBackend(params, refuse).run()
    assert len(tools.calls) == 2 and os.listdir(tmp_path) == ["bin"]

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host side of artifact_install (_artifact_install): verify, install, link, report changed binaries.

Downloads come from a fake fetch (a dict of URLs), processes from a fake /proc; the host is tmp_path.
"""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
import time

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils import _artifact_install as ai

ETCD_URL = "https://github.com/etcd-io/etcd/releases/download/v3.5.33/etcd-v3.5.33-linux-amd64.tar.gz"
APISERVER_URL = "https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kube-apiserver"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tarball(files: dict, top: str = "etcd-v3.5.33-linux-amd64", extra=()) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}" if top else name)
            info.size, info.mode = len(data), 0o755 if not name.endswith(".md") else 0o644
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return buffer.getvalue()


ETCD_FILES = {"etcd": b"etcd 3.5.33", "etcdctl": b"etcdctl 3.5.33", "etcdutl": b"etcdutl 3.5.33", "README.md": b"readme"}
ETCD = tarball(ETCD_FILES)
APISERVER = b"kube-apiserver 1.36.4"


class Host:
    """A host in tmp_path: its directories, the downloads it can reach and its processes."""

    def __init__(self, root) -> None:
        self.root = str(root)
        self.urls = {ETCD_URL: ETCD, APISERVER_URL: APISERVER, APISERVER_URL + ".sha256": f"{sha(APISERVER)}  kube-apiserver\n".encode()}
        self.fetched = []
        self.proc = os.path.join(self.root, "proc")
        os.makedirs(self.proc)

    def path(self, *parts) -> str:
        return os.path.join(self.root, *parts)

    def fetch(self, url: str):
        self.fetched.append(url)
        if url not in self.urls:
            raise ai.InstallError(f"cannot download {url}: HTTP Error 404: Not Found")
        return io.BytesIO(self.urls[url])

    def run(self, *artifacts, check_mode=False, **extra) -> dict:
        params = {"install_dir": self.path("opt"), "bin_dir": self.path("bin"), "cache_dir": self.path("cache"), "artifacts": list(artifacts),
                  **extra}
        return ai.ArtifactInstaller(params, self.fetch, check_mode=check_mode, proc=self.proc).run()

    def process(self, pid: int, exe: str) -> None:
        os.makedirs(os.path.join(self.proc, str(pid)))
        os.symlink(exe, os.path.join(self.proc, str(pid), "exe"))

    def files(self) -> list:
        return sorted(os.path.relpath(os.path.join(root, name), self.root)
                      for root, dirs, names in os.walk(self.root) for name in names + [d for d in dirs if os.path.islink(os.path.join(root, d))]
                      if not os.path.relpath(root, self.root).startswith("proc"))


def etcd(**overrides) -> dict:
    return {"name": "etcd", "version": "3.5.33", "arch": "amd64", "filename": "etcd-v3.5.33-linux-amd64.tar.gz",
            "binaries": ["etcd", "etcdctl", "etcdutl"], "daemons": ["etcd"], "strip_components": 1, "url": ETCD_URL,
            "sha256": sha(ETCD), "origin": "the published checksum", **overrides}


def apiserver(**overrides) -> dict:
    return {"name": "kube-apiserver", "version": "1.36.4", "arch": "amd64", "filename": "kube-apiserver", "url": APISERVER_URL,
            "checksum_url": APISERVER_URL + ".sha256", "origin": APISERVER_URL + ".sha256", "daemons": ["kube-apiserver"], **overrides}


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


def test_first_install_unpacks_links_and_reports_every_binary(host):
    result = host.run(etcd(), apiserver())
    assert result["changed"] and result["changed_binaries"] == ["etcd", "etcdctl", "etcdutl", "kube-apiserver"]
    assert result["needs_source"] == []
    first, second = result["artifacts"]
    assert first == {"name": "etcd", "version": "3.5.33", "platform": "linux/amd64", "sha256": sha(ETCD), "changed": True,
                     "changed_binaries": ["etcd", "etcdctl", "etcdutl"], "needs_source": False,
                     "files": {name: sha(ETCD_FILES[name]) for name in ("etcd", "etcdctl", "etcdutl")}}
    assert second["sha256"] == sha(APISERVER) and "files" not in second  # read from the .sha256 beside the download
    assert os.readlink(host.path("bin", "etcd")) == host.path("opt", "etcd", "v3.5.33", "etcd")
    assert os.readlink(host.path("bin", "kube-apiserver")) == host.path("opt", "kube-apiserver", "v1.36.4", "kube-apiserver")
    with open(host.path("bin", "kube-apiserver"), "rb") as handle:
        assert handle.read() == APISERVER
    assert os.stat(host.path("opt", "etcd", "v3.5.33", "etcd")).st_mode & 0o777 == 0o755
    assert os.stat(host.path("opt", "etcd", "v3.5.33", "README.md")).st_mode & 0o777 == 0o644
    assert os.stat(host.path("opt", "kube-apiserver", "v1.36.4", "kube-apiserver")).st_mode & 0o777 == 0o755
    # The archive stays in the cache; no temporary file is left anywhere; the install is recorded.
    assert host.files() == ["bin/etcd", "bin/etcdctl", "bin/etcdutl", "bin/kube-apiserver", "cache/etcd-v3.5.33-linux-amd64.tar.gz",
                            "opt/digests.json", "opt/etcd/v3.5.33/README.md", "opt/etcd/v3.5.33/etcd", "opt/etcd/v3.5.33/etcdctl",
                            "opt/etcd/v3.5.33/etcdutl", "opt/installed.json", "opt/kube-apiserver/v1.36.4/kube-apiserver"]


def test_a_new_archive_is_read_once_hashed_and_unpacked_together(host, monkeypatch):
    opened = []
    real_open = ai.tarfile.open

    def counting_open(*args, **kwargs):
        opened.append(args[0])
        return real_open(*args, **kwargs)
    monkeypatch.setattr(ai.tarfile, "open", counting_open)
    host.run(etcd())
    assert len(opened) == 1 and os.path.isfile(host.path("opt", "etcd", "v3.5.33", "etcdutl"))


def test_the_artifacts_of_a_batch_are_fetched_and_verified_side_by_side(host):
    """Both downloads must be under way at once for either to finish (a barrier that fails after 10 s)."""
    both = threading.Barrier(2, timeout=10)
    plain_fetch = host.fetch

    def fetch(url):
        if not url.endswith(".sha256"):
            both.wait()
        return plain_fetch(url)
    host.fetch = fetch
    result = host.run(etcd(), apiserver())
    assert result["changed_binaries"] == ["etcd", "etcdctl", "etcdutl", "kube-apiserver"] and not both.broken


def test_a_directory_another_artifact_of_the_batch_just_made_is_used(host, monkeypatch):
    """Two archives of a batch, verified side by side, both make the cache directory: the second one finds it made
    between its look and its mkdir (forced here: the first two looks at the cache directory say it is not there)."""
    real_isdir, looks = os.path.isdir, []

    def isdir(path):
        if path == host.path("cache"):
            looks.append(path)
            if len(looks) <= 2:
                return False
        return real_isdir(path)
    monkeypatch.setattr(ai.os.path, "isdir", isdir)
    host.urls[ETCD_URL.replace("3.5.33", "3.5.34")] = ETCD
    other = etcd(name="etcd-other", url=ETCD_URL.replace("3.5.33", "3.5.34"), bin_dir=host.path("other-bin"))
    result = host.run(etcd(), other)
    assert result["changed_binaries"] == ["etcd", "etcdctl", "etcdutl"] and not result.get("failed")
    assert [item["changed"] for item in result["artifacts"]] == [True, True]


def test_the_installed_binaries_are_not_read_again_after_their_verified_install(host, monkeypatch):
    """The bits were hashed on their way in: the new links are reported from those digests, not a second read."""
    read = reads(monkeypatch)
    result = host.run(etcd(), apiserver())
    assert result["changed_binaries"] == ["etcd", "etcdctl", "etcdutl", "kube-apiserver"]
    assert result["artifacts"][1]["sha256"] == sha(APISERVER)
    assert read == []


def reads(monkeypatch) -> list:
    """The files the installer reads to hash them, in a list that fills as it runs."""
    read = []
    real = ai.file_sha256

    def counting(path):
        read.append(path)
        return real(path)
    monkeypatch.setattr(ai, "file_sha256", counting)
    return read


def test_a_rerun_reads_no_binary_unchanged_since_it_was_hashed(host, monkeypatch):
    files = host.run(etcd(), apiserver())["artifacts"][0]["files"]
    read = reads(monkeypatch)
    again = host.run(etcd(files=files, locked=True), apiserver(sha256=sha(APISERVER), checksum_url="", locked=True))
    assert not again["changed"] and read == []
    # Without the digests file, every binary is read again.
    os.unlink(host.path("opt", ai.DIGESTS))
    host.run(etcd(files=files, locked=True), apiserver(sha256=sha(APISERVER), checksum_url="", locked=True))
    assert sorted(os.path.basename(path) for path in read) == ["etcd", "etcdctl", "etcdutl", "kube-apiserver"]


def test_a_binary_rewritten_with_its_size_and_mtime_kept_is_hashed_again_and_replaced(host, monkeypatch):
    files = host.run(etcd())["artifacts"][0]["files"]
    target = host.path("opt", "etcd", "v3.5.33", "etcdctl")
    kept = os.stat(target)
    time.sleep(0.05)  # past the file system clock's tick: the write below moves the ctime
    with open(target, "r+b") as handle:
        handle.write(b"X")
    os.utime(target, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    assert os.stat(target).st_size == kept.st_size and os.stat(target).st_mtime_ns == kept.st_mtime_ns
    read = reads(monkeypatch)
    result = host.run(etcd(files=files, locked=True))
    assert result["changed_binaries"] == ["etcdctl"] and read.count(target) == 1
    with open(host.path("bin", "etcdctl"), "rb") as handle:
        assert handle.read() == ETCD_FILES["etcdctl"]


def test_a_locked_install_verifies_the_binaries_without_fetching_anything(host):
    files = host.run(etcd(), apiserver())["artifacts"][0]["files"]
    host.fetched.clear()
    again = host.run(etcd(files=files, locked=True), apiserver(sha256=sha(APISERVER), checksum_url="", locked=True))
    assert not again["changed"] and again["changed_binaries"] == [] and host.fetched == []


def test_a_rebuilt_artifact_of_the_same_version_is_installed_and_reported(host):
    host.run(etcd(), apiserver())
    rebuilt = b"kube-apiserver 1.36.4, rebuilt"
    host.urls[APISERVER_URL] = rebuilt
    host.urls[APISERVER_URL + ".sha256"] = sha(rebuilt).encode()
    # What a lock update passes: the source's new checksum.
    result = host.run(etcd(), apiserver(sha256=sha(rebuilt), checksum_url=""))
    assert result["changed"] and result["changed_binaries"] == ["kube-apiserver"]
    assert result["artifacts"][0]["changed"] is False
    with open(host.path("bin", "kube-apiserver"), "rb") as handle:
        assert handle.read() == rebuilt


def test_a_file_that_does_not_match_the_lock_fails_showing_both_and_nothing_is_installed(host):
    host.run(apiserver())
    host.urls[APISERVER_URL] = b"tampered"
    os.unlink(host.path("opt", "kube-apiserver", "v1.36.4", "kube-apiserver"))  # forces a new download
    lock = "the artifacts lock /inv/artifacts.lock.yml"
    with pytest.raises(ai.InstallError) as caught:
        host.run(etcd(), apiserver(sha256=sha(APISERVER), checksum_url="", origin=lock, locked=True))
    assert caught.value.errors == [f"kube-apiserver 1.36.4 linux/amd64: locked sha256 {sha(APISERVER)} ({lock}), "
                                   f"found {sha(b'tampered')} ({APISERVER_URL})"]
    # The batch is verified before anything is installed: etcd, which was fine, was not installed either.
    assert not os.path.exists(host.path("bin", "etcd")) and not os.path.exists(host.path("opt", "etcd", "v3.5.33", "etcd"))
    assert [name for name in host.files() if ".part" in name or "/.v" in name] == []


def test_a_download_that_does_not_match_its_first_use_reference_fails(host):
    host.urls[APISERVER_URL + ".sha256"] = ("0" * 64).encode()
    with pytest.raises(ai.InstallError, match=f"{APISERVER_URL} has sha256 {sha(APISERVER)}, {APISERVER_URL}.sha256 says {'0' * 64}"):
        host.run(apiserver())
    assert not os.path.exists(host.path("bin", "kube-apiserver"))


def test_a_tampered_installed_binary_is_replaced_from_the_verified_cache(host):
    files = host.run(etcd())["artifacts"][0]["files"]
    with open(host.path("opt", "etcd", "v3.5.33", "etcdctl"), "wb") as handle:
        handle.write(b"tampered")
    host.fetched.clear()
    result = host.run(etcd(files=files, locked=True))
    assert result["changed_binaries"] == ["etcdctl"] and host.fetched == []  # the cached archive still had the locked sha256
    with open(host.path("bin", "etcdctl"), "rb") as handle:
        assert handle.read() == ETCD_FILES["etcdctl"]


def test_an_archive_whose_binary_differs_from_the_lock_is_refused(host):
    lock = {"etcd": "0" * 64, "etcdctl": sha(ETCD_FILES["etcdctl"]), "etcdutl": sha(ETCD_FILES["etcdutl"])}
    with pytest.raises(ai.InstallError, match=f"its etcd has sha256 {sha(ETCD_FILES['etcd'])} where the lock records {'0' * 64}"):
        host.run(etcd(files=lock, locked=True, origin="the lock"))
    # The archive was unpacked while it was hashed: neither the unpacked tree nor the download is left.
    assert host.files() == []


def test_an_upgrade_switches_the_links_and_keeps_the_old_version(host):
    host.run(etcd())
    newer = tarball({"etcd": b"etcd 3.5.34", "etcdctl": b"etcdctl 3.5.34", "etcdutl": ETCD_FILES["etcdutl"]}, top="etcd-v3.5.34-linux-amd64")
    host.urls["https://example/etcd-v3.5.34.tar.gz"] = newer
    result = host.run(etcd(version="3.5.34", filename="etcd-v3.5.34-linux-amd64.tar.gz", url="https://example/etcd-v3.5.34.tar.gz",
                           sha256=sha(newer)))
    assert result["changed_binaries"] == ["etcd", "etcdctl"]  # etcdutl's bits are the same
    assert os.readlink(host.path("bin", "etcdutl")) == host.path("opt", "etcd", "v3.5.34", "etcdutl")
    assert os.path.exists(host.path("opt", "etcd", "v3.5.33", "etcd"))


def test_a_daemon_still_running_a_replaced_copy_is_reported_until_restarted(host):
    files = host.run(etcd(), apiserver())["artifacts"][0]["files"]
    locked = (etcd(files=files, locked=True), apiserver(sha256=sha(APISERVER), checksum_url=""))
    target = host.path("opt", "kube-apiserver", "v1.36.4", "kube-apiserver")
    host.process(100, target + " (deleted)")  # the file was replaced, the process kept the old one
    host.process(101, host.path("opt", "etcd", "v3.5.33", "etcdctl") + " (deleted)")  # not a daemon
    host.process(102, "/usr/bin/bash")
    result = host.run(*locked)
    assert result["changed"] and result["changed_binaries"] == ["kube-apiserver"]
    os.unlink(os.path.join(host.proc, "100", "exe"))
    os.symlink(target, os.path.join(host.proc, "100", "exe"))  # restarted
    assert not host.run(*locked)["changed"]
    host.process(103, host.path("opt", "etcd", "v3.5.32", "etcd"))  # an older version still running
    assert host.run(*locked)["changed_binaries"] == ["etcd"]


def test_check_mode_writes_nothing_and_reports_what_would_change(host):
    result = host.run(etcd(), apiserver(), check_mode=True)
    assert result["changed"] and result["changed_binaries"] == ["etcd", "etcdctl", "etcdutl", "kube-apiserver"]
    assert host.files() == [] and host.fetched == [APISERVER_URL + ".sha256"]  # only the reference was read
    host.run(etcd(), apiserver())
    assert not host.run(etcd(), apiserver(sha256=sha(APISERVER)), check_mode=True)["changed"]


def test_an_offline_file_the_host_lacks_is_asked_for_then_installed_from_src(host, tmp_path):
    offline = {"url": "", "offline": True, "location": "/srv/artifacts/release/v1.36.4/bin/linux/amd64/kube-apiserver"}
    first = host.run(etcd(), apiserver(sha256=sha(APISERVER), checksum_url="", **offline))
    assert first["needs_source"] == ["kube-apiserver"] and not first["changed"] and first["changed_binaries"] == []
    assert host.files() == []  # nothing installed, etcd neither, until every file of the batch is verified
    copied = tmp_path / "ansible-tmp" / "1-kube-apiserver"
    copied.parent.mkdir()
    copied.write_bytes(APISERVER)
    second = host.run(etcd(), apiserver(sha256=sha(APISERVER), checksum_url="", src=str(copied), **offline))
    assert second["needs_source"] == [] and second["changed_binaries"] == ["etcd", "etcdctl", "etcdutl", "kube-apiserver"]
    assert host.run(apiserver(sha256=sha(APISERVER), checksum_url="", **offline))["needs_source"] == []  # installed: not asked again


def lock_of(result: dict) -> dict:
    """The lock the action plugin would hold after ``result`` (first use recorded)."""
    return {item["name"]: {item["version"]: {item["platform"]: {"sha256": item["sha256"], **({"files": item["files"]} if "files" in item else {})}}}
            for item in result["artifacts"]}


def key(entry: dict, host: Host) -> str:
    links = entry.get("binaries") or [entry["name"]]
    return ai.artifact_key(entry["name"], entry["version"], entry["arch"], host.path("bin"), links, entry["daemons"])


def test_verify_recorded_returns_the_recorded_artifacts_installed_as_locked(host):
    lock = lock_of(host.run(etcd(), apiserver()))
    # A later install of another batch (kube-apiserver alone) checks etcd too.
    result = host.run(apiserver(sha256=sha(APISERVER), checksum_url=""), verify_recorded=True, lock=lock)
    assert not result["changed"] and result["verified"] == [key(etcd(), host), key(apiserver(), host)]
    assert "verified" not in host.run(apiserver(sha256=sha(APISERVER), checksum_url=""))  # only when asked


@pytest.mark.parametrize("spoil", ["tampered", "relinked", "unlocked", "lock differs", "stale daemon"])
def test_verify_recorded_leaves_out_an_artifact_not_installed_as_locked(host, spoil):
    lock = lock_of(host.run(etcd(), apiserver()))
    etcd_bin = host.path("opt", "etcd", "v3.5.33", "etcd")
    if spoil == "tampered":
        with open(etcd_bin, "ab") as handle:
            handle.write(b"!")
    elif spoil == "relinked":
        os.unlink(host.path("bin", "etcdctl"))
        os.symlink(host.path("opt", "etcd", "v3.5.32", "etcdctl"), host.path("bin", "etcdctl"))
    elif spoil == "unlocked":
        del lock["etcd"]
    elif spoil == "lock differs":
        lock["etcd"]["3.5.33"]["linux/amd64"]["files"]["etcdutl"] = sha(b"another etcdutl")
    else:
        host.process(100, etcd_bin + " (deleted)")
    result = host.run(apiserver(sha256=sha(APISERVER), checksum_url=""), verify_recorded=True, lock=lock)
    assert result["verified"] == [key(apiserver(), host)]


def test_the_record_follows_an_upgrade_and_check_mode_writes_none(host):
    host.run(etcd(), check_mode=True)
    assert not os.path.exists(host.path("opt", ai.RECORD))
    host.run(apiserver())
    newer = b"kube-apiserver 1.37.2"
    url = APISERVER_URL.replace("1.36.4", "1.37.2")
    host.urls[url] = newer
    host.run(apiserver(version="1.37.2", url=url, sha256=sha(newer), checksum_url=""))
    record = ai.read_record(host.path("opt"))
    assert list(record) == ["kube-apiserver"] and record["kube-apiserver"]["version"] == "1.37.2"
    # An unreadable record is no record: every phase then checks its own artifacts.
    with open(host.path("opt", ai.RECORD), "w", encoding="utf-8") as handle:
        handle.write("{not json")
    assert ai.read_record(host.path("opt")) == {}


def test_a_regular_file_in_the_way_of_a_link_is_replaced(host):
    os.makedirs(host.path("bin"))
    with open(host.path("bin", "kube-apiserver"), "wb") as handle:
        handle.write(b"installed by hand")
    result = host.run(apiserver())
    assert result["changed_binaries"] == ["kube-apiserver"] and os.path.islink(host.path("bin", "kube-apiserver"))


@pytest.mark.parametrize("entry, message", [
    (etcd(binaries=[]), "an archive needs the binaries to link from it"),
    (etcd(binaries=["../etc/passwd"]), "binaries must be plain file names"),
    (etcd(sha256="xyz"), "sha256 'xyz' is not 64 hex digits"),
    (apiserver(checksum_url=""), "needs sha256 or checksum_url"),
    (apiserver(offline=True), "needs exactly one of url and offline"),
    (apiserver(version="../../etc"), "name and version must be plain names"),
])
def test_bad_entries_are_all_reported(host, entry, message):
    with pytest.raises(ai.InstallError) as caught:
        host.run(entry, apiserver(url=""))
    assert len(caught.value.errors) == 2 and message in caught.value.errors[0]


def test_an_archive_member_that_leaves_the_directory_is_refused(host):
    evil = tarfile.TarInfo("etcd-v3.5.33-linux-amd64/../../etc/cron.d/x")
    bad = tarball(ETCD_FILES, extra=[evil])
    host.urls[ETCD_URL] = bad
    with pytest.raises(ai.InstallError, match="leaves the install directory"):
        host.run(etcd(sha256=sha(bad)))
    assert not os.path.exists(host.path("bin", "etcd"))
    assert host.files() == []


def test_an_archive_without_a_binary_is_refused(host):
    with pytest.raises(ai.InstallError, match=r"has no etcd, etcdctl, etcdutl once 2 leading path component\(s\) are dropped"):
        host.run(etcd(strip_components=2))


@pytest.mark.parametrize("name, strip, expected", [
    ("etcd-v3.5.33-linux-amd64/etcd", 1, "etcd"),
    ("./bridge", 1, "bridge"),              # as tar --strip-components counts: '.' is a component
    ("bin/containerd", 1, "containerd"),
    ("crictl", 0, "crictl"),
    ("etcd-v3.5.33-linux-amd64/", 1, None),
    ("./", 1, None),
])
def test_stripped(name, strip, expected):
    assert ai.stripped(name, strip) == expected


def test_parse_sidecar():
    assert ai.parse_sidecar(f"{'A' * 64}  kube-apiserver\n") == "a" * 64
    assert ai.parse_sidecar("<html>Not Found</html>") is None and ai.parse_sidecar("") is None

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where artifacts come from, what they are checked against, and the cluster's lock (_artifacts)."""
from __future__ import annotations

import hashlib
import os

import pytest
import yaml

from ansible_collections.kubeforge.cluster.plugins.module_utils import _artifact_install, _artifacts

# The collection's published checksum of etcd 3.5.33 linux/amd64 (plugins/module_utils/_data/releases.yml).
ETCD_PUBLISHED = _artifacts.published_sha256("etcd", "3.5.33", "amd64")
A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)


def _offline(root, name, version, data: bytes, sidecar: bool = True) -> str:
    path = os.path.join(str(root), _artifacts.relpath(name, version, "amd64"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    if sidecar:
        with open(path + ".sha256", "w", encoding="utf-8") as handle:
            handle.write(f"{hashlib.sha256(data).hexdigest()}  {os.path.basename(path)}\n")
    return path


def test_the_collection_carries_a_published_checksum_for_etcd():
    assert ETCD_PUBLISHED and len(ETCD_PUBLISHED) == 64


# -- resolve: the reference checksum of a run ----------------------------------------------------

def test_first_use_of_a_download_takes_the_published_checksum():
    source = _artifacts.resolve("etcd", "3.5.33", "amd64")
    assert (source.sha256, source.origin, source.locked) == (ETCD_PUBLISHED, "the published checksum", False)
    assert source.url == "https://github.com/etcd-io/etcd/releases/download/v3.5.33/etcd-v3.5.33-linux-amd64.tar.gz"
    assert source.src == "" and source.checksum == f"sha256:{ETCD_PUBLISHED}"


def test_first_use_of_a_download_without_published_checksum_reads_the_sidecar_url():
    source = _artifacts.resolve("kube-apiserver", "1.36.4", "amd64", mirror="https://mirror.example/k8s/")
    assert source.sha256 == "" and source.url == "https://mirror.example/k8s/release/v1.36.4/bin/linux/amd64/kube-apiserver"
    assert source.checksum_url == source.url + ".sha256" and source.checksum == f"sha256:{source.url}.sha256"


def test_first_use_of_an_offline_file_reads_its_sidecar_on_the_controller(tmp_path):
    path = _offline(tmp_path, "kube-apiserver", "1.36.4", b"apiserver")
    source = _artifacts.resolve("kube-apiserver", "1.36.4", "amd64", artifacts_dir=str(tmp_path))
    assert (source.src, source.sha256, source.origin) == (path, hashlib.sha256(b"apiserver").hexdigest(), path + ".sha256")


def test_an_offline_file_without_any_checksum_is_refused(tmp_path):
    _offline(tmp_path, "kube-apiserver", "1.36.4", b"apiserver", sidecar=False)
    with pytest.raises(_artifacts.ArtifactsError, match=r"kube-apiserver 1.36.4 linux/amd64: .*\.sha256 is missing"):
        _artifacts.resolve("kube-apiserver", "1.36.4", "amd64", artifacts_dir=str(tmp_path))


def test_sidecar_source_ignores_the_published_checksum(tmp_path):
    path = _offline(tmp_path, "etcd", "3.5.33", b"local build")
    source = _artifacts.resolve("etcd", "3.5.33", "amd64", artifacts_dir=str(tmp_path), checksum_source="sidecar")
    assert (source.sha256, source.origin) == (hashlib.sha256(b"local build").hexdigest(), path + ".sha256")


def test_the_locked_checksum_wins_over_every_other_source(tmp_path):
    _offline(tmp_path, "kube-apiserver", "1.36.4", b"rebuilt apiserver")  # its sidecar says something else
    lock = {"kube-apiserver": {"1.36.4": {"linux/amd64": {"sha256": A}}}}
    source = _artifacts.resolve("kube-apiserver", "1.36.4", "amd64", artifacts_dir=str(tmp_path), lock=lock, lock_path="/inv/lock.yml")
    assert (source.sha256, source.locked, source.origin) == (A, True, "the artifacts lock /inv/lock.yml")


def test_lock_update_ignores_the_lock(tmp_path):
    _offline(tmp_path, "kube-apiserver", "1.36.4", b"rebuilt apiserver")
    lock = {"kube-apiserver": {"1.36.4": {"linux/amd64": {"sha256": A}}}}
    source = _artifacts.resolve("kube-apiserver", "1.36.4", "amd64", artifacts_dir=str(tmp_path), lock=lock, update=True)
    assert source.sha256 == hashlib.sha256(b"rebuilt apiserver").hexdigest() and not source.locked


def test_a_lock_that_contradicts_the_published_checksum_is_refused_showing_both():
    lock = {"etcd": {"3.5.33": {"linux/amd64": {"sha256": A, "files": {"etcd": B}}}}}
    with pytest.raises(_artifacts.ArtifactsError) as caught:
        _artifacts.resolve("etcd", "3.5.33", "amd64", lock=lock, lock_path="/inv/artifacts.lock.yml")
    assert f"etcd 3.5.33 linux/amd64: locked sha256 {A} (/inv/artifacts.lock.yml)" in str(caught.value)
    assert f"published checksum is {ETCD_PUBLISHED}" in str(caught.value)
    # With the sidecar source (a local build), the lock is the only reference.
    assert _artifacts.resolve("etcd", "3.5.33", "amd64", checksum_source="sidecar", lock=lock).files == {"etcd": B}


@pytest.mark.parametrize("name, source, message", [
    ("kubeadm", "published", "unknown artifact 'kubeadm'"),
    ("etcd", "trust-me", "checksum source 'trust-me' must be one of published, sidecar"),
])
def test_bad_input(name, source, message):
    with pytest.raises(_artifacts.ArtifactsError, match=message):
        _artifacts.resolve(name, "1.0.0", "amd64", checksum_source=source)


# -- record: the lock logic ------------------------------------------------------------------------

def test_first_use_records():
    lock = {}
    assert _artifacts.record(lock, "kubelet", "1.36.4", "amd64", A, {}, update=False) == "added"
    assert lock == {"kubelet": {"1.36.4": {"linux/amd64": {"sha256": A}}}}


def test_a_match_passes_and_changes_nothing():
    lock = {"etcd": {"3.5.33": {"linux/amd64": {"sha256": A, "files": {"etcd": B}}}}}
    assert _artifacts.record(lock, "etcd", "3.5.33", "amd64", A, {"etcd": B}, update=False) is None
    assert lock == {"etcd": {"3.5.33": {"linux/amd64": {"sha256": A, "files": {"etcd": B}}}}}


def test_a_mismatch_fails_showing_name_version_platform_locked_and_found():
    lock = {"kube-apiserver": {"1.36.4": {"linux/amd64": {"sha256": A}}}}
    with pytest.raises(_artifacts.ArtifactsError) as caught:
        _artifacts.record(lock, "kube-apiserver", "1.36.4", "amd64", B, {}, update=False, lock_path="/inv/artifacts.lock.yml",
                          where="installed on cp2")
    assert caught.value.errors == [f"kube-apiserver 1.36.4 linux/amd64: locked sha256 {A} (/inv/artifacts.lock.yml), found {B} (installed on cp2)"]
    assert "kubeforge_artifacts_lock_update=true" in str(caught.value)
    assert lock["kube-apiserver"]["1.36.4"]["linux/amd64"] == {"sha256": A}


def test_a_binary_that_differs_from_the_lock_fails_too():
    lock = {"etcd": {"3.5.33": {"linux/amd64": {"sha256": A, "files": {"etcd": B, "etcdctl": C}}}}}
    with pytest.raises(_artifacts.ArtifactsError) as caught:
        _artifacts.record(lock, "etcd", "3.5.33", "amd64", A, {"etcd": B, "etcdctl": D}, update=False)
    assert caught.value.errors == [f"etcd 3.5.33 linux/amd64: locked sha256 for etcdctl {C} (), found {D} ()"]


def test_update_replaces_the_entry():
    lock = {"etcd": {"3.5.33": {"linux/amd64": {"sha256": A, "files": {"etcd": B}}}}}
    assert _artifacts.record(lock, "etcd", "3.5.33", "amd64", C, {"etcd": D}, update=True) == "updated"
    assert lock == {"etcd": {"3.5.33": {"linux/amd64": {"sha256": C, "files": {"etcd": D}}}}}
    assert _artifacts.record(lock, "etcd", "3.5.33", "amd64", C, {"etcd": D}, update=True) is None


def test_a_new_version_is_appended_not_a_mismatch():
    lock = {"kubelet": {"1.36.4": {"linux/amd64": {"sha256": A}}}}
    assert _artifacts.record(lock, "kubelet", "1.36.5", "amd64", B, {}, update=False) == "added"
    assert _artifacts.record(lock, "kubelet", "1.36.4", "arm64", C, {}, update=False) == "added"
    assert lock == {"kubelet": {"1.36.4": {"linux/amd64": {"sha256": A}, "linux/arm64": {"sha256": C}},
                                "1.36.5": {"linux/amd64": {"sha256": B}}}}


def test_binaries_are_added_to_a_hand_filled_entry():
    lock = {"etcd": {"3.5.33": {"linux/amd64": {"sha256": A}}}}
    assert _artifacts.record(lock, "etcd", "3.5.33", "amd64", A, {"etcd": B}, update=False) == "completed"
    assert lock["etcd"]["3.5.33"]["linux/amd64"] == {"sha256": A, "files": {"etcd": B}}


# -- the lock file -----------------------------------------------------------------------------

def test_lock_file_first_use_then_match_then_mismatch_then_update(tmp_path):
    path = str(tmp_path / "inventory" / "artifacts.lock.yml")
    assert _artifacts.load_lock(path) == {}
    changes = _artifacts.update_lock_file(path, [("etcd", "3.5.33", "amd64", A, {"etcd": B}), ("kubelet", "1.36.4", "amd64", C, {})], False)
    assert changes == [f"added etcd 3.5.33 linux/amd64 {A}", f"added kubelet 1.36.4 linux/amd64 {C}"]
    text = (tmp_path / "inventory" / "artifacts.lock.yml").read_text()
    assert text.startswith("---\n# The sha256 of every release file") and "kubeforge_artifacts_lock_update=true" in text
    assert yaml.safe_load(text) == {"artifacts": {"etcd": {"3.5.33": {"linux/amd64": {"sha256": A, "files": {"etcd": B}}}},
                                                  "kubelet": {"1.36.4": {"linux/amd64": {"sha256": C}}}}}
    before = os.stat(path).st_mtime_ns
    assert _artifacts.update_lock_file(path, [("kubelet", "1.36.4", "amd64", C, {})], False) == []
    assert os.stat(path).st_mtime_ns == before  # nothing to record: not rewritten
    with pytest.raises(_artifacts.ArtifactsError) as caught:
        _artifacts.update_lock_file(path, [("kubelet", "1.36.4", "amd64", D, {})], False, where="installed on w1")
    assert f"kubelet 1.36.4 linux/amd64: locked sha256 {C} ({path}), found {D} (installed on w1)" in str(caught.value)
    assert _artifacts.load_lock(path)["kubelet"]["1.36.4"]["linux/amd64"]["sha256"] == C
    assert _artifacts.update_lock_file(path, [("kubelet", "1.36.4", "amd64", D, {})], True) == [f"updated kubelet 1.36.4 linux/amd64 {D}"]
    assert _artifacts.load_lock(path)["kubelet"]["1.36.4"]["linux/amd64"]["sha256"] == D
    assert _artifacts.load_lock(path)["etcd"]["3.5.33"]["linux/amd64"]["files"] == {"etcd": B}


def test_check_mode_reports_without_writing(tmp_path):
    path = str(tmp_path / "artifacts.lock.yml")
    assert _artifacts.update_lock_file(path, [("kubelet", "1.36.4", "amd64", C, {})], False, write=False) == [f"added kubelet 1.36.4 linux/amd64 {C}"]
    assert not os.path.exists(path)


def test_every_lock_problem_is_reported(tmp_path):
    path = tmp_path / "artifacts.lock.yml"
    path.write_text(yaml.safe_dump({"artifacts": {"etcd": {"3.5.33": {"linux/amd64": {"sha256": "nope"}}},
                                                  "kubelet": {"1.36.4": {"linux/amd64": {"sha256": A, "files": {"kubelet": "x"}}}}}}))
    with pytest.raises(_artifacts.ArtifactsError) as caught:
        _artifacts.load_lock(str(path))
    assert len(caught.value.errors) == 2 and "etcd 3.5.33 linux/amd64: sha256 must be 64" in caught.value.errors[0]
    path.write_text("artifacts: [unclosed\n")
    with pytest.raises(_artifacts.ArtifactsError, match="is not valid YAML"):
        _artifacts.load_lock(str(path))
    path.write_text("- a list\n")
    with pytest.raises(_artifacts.ArtifactsError, match="not a kubeforge artifacts lock"):
        _artifacts.load_lock(str(path))


def test_dump_sorts_versions_numerically():
    lock = {"kubelet": {"1.36.10": {"linux/amd64": {"sha256": A}}, "1.36.9": {"linux/amd64": {"sha256": B}}}}
    text = _artifacts.dump_lock(lock)
    assert text.index("1.36.9:") < text.index("1.36.10:")
    assert _artifacts.parse_lock(yaml.safe_load(text)) == lock


# -- preflight's checks of the offline directory and the lock ----------------------------------

def test_offline_problems_check_the_lock_first(tmp_path):
    path = _offline(tmp_path, "kube-apiserver", "1.36.4", b"rebuilt")  # a valid sidecar beside it
    wanted = [("kube-apiserver", "1.36.4")]
    assert _artifacts.offline_problems(str(tmp_path), wanted, "amd64", "published") == []
    lock = {"kube-apiserver": {"1.36.4": {"linux/amd64": {"sha256": A}}}}
    problems = _artifacts.offline_problems(str(tmp_path), wanted, "amd64", "published", lock, "/inv/artifacts.lock.yml")
    found = hashlib.sha256(b"rebuilt").hexdigest()
    assert len(problems) == 1 and f"locked sha256 {A} (/inv/artifacts.lock.yml), found {found} ({path})" in problems[0]
    assert _artifacts.offline_problems(str(tmp_path), wanted, "amd64", "published", lock, "/inv/artifacts.lock.yml", update=True) == []


def test_the_controller_hashes_an_offline_file_again_only_when_its_stat_moved(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    directory = str(tmp_path / "artifacts")
    path = _offline(tmp_path / "artifacts", "kube-apiserver", "1.36.4", b"kube-apiserver")
    wanted = [("kube-apiserver", "1.36.4")]
    lock = {"kube-apiserver": {"1.36.4": {"linux/amd64": {"sha256": hashlib.sha256(b"kube-apiserver").hexdigest()}}}}
    real_sha256, hashed = _artifact_install.file_sha256, []
    monkeypatch.setattr(_artifact_install, "file_sha256", lambda name: hashed.append(name) or real_sha256(name))

    def run() -> list:
        digests = _artifacts.controller_digests(directory)
        problems = _artifacts.offline_problems(directory, wanted, "amd64", "published", lock, "/inv/lock.yml", digest=digests.digest)
        digests.save()
        return problems
    assert run() == [] and hashed == [os.path.realpath(path)]
    assert os.path.isfile(tmp_path / "cache" / "kubeforge.cluster" / "offline-digests.json")
    assert run() == [] and len(hashed) == 1  # the stat is the one it had: not read again
    with open(path, "wb") as handle:
        handle.write(b"kube-apiserver, rebuilt")
    problems = run()
    assert len(hashed) == 2 and len(problems) == 1 and "does not match the lock" in problems[0]


def test_lock_problems_name_locks_that_contradict_the_published_checksums():
    lock = {"etcd": {"3.5.33": {"linux/amd64": {"sha256": A}}}, "kube-apiserver": {"1.36.4": {"linux/amd64": {"sha256": B}}}}
    wanted = [("etcd", "3.5.33"), ("kube-apiserver", "1.36.4")]
    problems = _artifacts.lock_problems(lock, wanted, "amd64", "published", "/inv/lock.yml")
    assert len(problems) == 1 and problems[0].startswith(f"etcd 3.5.33 linux/amd64: locked sha256 {A} (/inv/lock.yml)")
    assert _artifacts.lock_problems(lock, wanted, "amd64", "sidecar") == []

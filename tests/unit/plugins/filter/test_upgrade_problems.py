# SPDX-License-Identifier: GPL-3.0-or-later
"""upgrade_problems: upgrade.yml's registered `--version` reads, checked against the policies, with
etcd's newest known patches taken from the collection's release data."""
from __future__ import annotations

from ansible_collections.kubeforge.cluster.plugins.filter.upgrade_problems import upgrade_problems
from ansible_collections.kubeforge.cluster.plugins.module_utils import _artifacts, _upgrade


def read(item: str, stdout: str, rc: int = 0) -> dict:
    return {"item": item, "rc": rc, "stdout": stdout}


def control_plane(kube: str, etcd: str) -> list:
    return [read(name, f"Kubernetes v{kube}") for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")] + [
        read("etcd", f"etcd Version: {etcd}\nGit SHA: 0\nGo Version: go1.26.8\nGo OS/Arch: linux/amd64")]


def worker(kube: str) -> list:
    absent = [read(name, "", rc=2) for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")]
    return absent + [read("kubelet", f"Kubernetes v{kube}"), read("kube-proxy", f"Kubernetes v{kube}")]


def newest_known_35() -> str:
    known = {version for arch in _artifacts.published_checksums()["etcd"].values() for version in arch}
    return _upgrade.newest_patches(known)["3.5"]


def test_the_next_minor_is_allowed_and_a_skip_is_refused():
    reads = {"cp1": control_plane("1.36.4", newest_known_35()), "w1": worker("1.36.4")}
    assert upgrade_problems(reads, "1.37.2", newest_known_35()) == []
    refused = upgrade_problems(reads, "1.38.0", newest_known_35())
    assert len(refused) == 1 and "skips a minor" in refused[0]


def test_absent_programs_are_not_installed_and_unreadable_output_is_a_problem():
    reads = {"cp1": control_plane("1.36.4", newest_known_35()), "w1": worker("1.36.4")[:-1] + [read("kube-proxy", "garbage")]}
    problems = upgrade_problems(reads, "1.36.4", newest_known_35())
    assert problems == ["kube-proxy on w1: `kube-proxy --version` printed 'garbage', no version"]


def test_etcd_36_needs_the_newest_known_35_patch_first():
    newest = _upgrade.parse_version(newest_known_35())
    older = f"{newest[0]}.{newest[1]}.{newest[2] - 1}"
    reads = {"cp1": control_plane("1.36.4", older), "cp2": control_plane("1.36.4", newest_known_35())}
    problems = upgrade_problems(reads, "1.36.4", "3.6.16")
    assert len(problems) == 1 and "cp1" in problems[0] and "cp2" not in problems[0] and newest_known_35() in problems[0]
    assert upgrade_problems({"cp2": control_plane("1.36.4", newest_known_35())}, "1.36.4", "3.6.16") == []


def test_newest_patches_takes_the_newest_release_of_each_minor():
    assert _upgrade.newest_patches(["3.5.9", "3.5.35", "3.6.1", "3.5.10", "junk"]) == {"3.5": "3.5.35", "3.6": "3.6.1"}


def test_with_the_node_count_the_runs_settings_are_checked_with_the_versions():
    reads = {"cp1": control_plane("1.36.4", newest_known_35()), "w1": worker("1.36.4")}
    assert upgrade_problems(reads, "1.37.2", newest_known_35(), node_batch_size="1", drain_timeout="300", nodes=2) == []
    refused = upgrade_problems(reads, "1.38.0", newest_known_35(), node_batch_size="2", drain_timeout="300", nodes=2)
    assert len(refused) == 2 and "skips a minor" in refused[0] and refused[1].startswith("upgrade_node_batch_size 2 drains all 2 nodes")
    # Without the node count, the settings are not read.
    assert upgrade_problems(reads, "1.37.2", newest_known_35(), node_batch_size="0") == []

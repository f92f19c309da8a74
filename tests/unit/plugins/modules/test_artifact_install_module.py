# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The artifact_install module and action plugin: docs against the spec, and runs through ansible-playbook
with an offline artifacts directory and a lock file (this machine plays the host)."""
from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile

import pytest
import yaml

from ansible_collections.kubeforge.cluster.plugins.module_utils import _artifacts
from ansible_collections.kubeforge.cluster.plugins.modules import artifact_install
from module_checks import compare  # pylint: disable=import-error  # beside this file
from one_task_play import PLAYBOOK, module_runs, run_task  # pylint: disable=import-error  # beside this file

MODULE = "kubeforge.cluster.artifact_install"
DOC = yaml.safe_load(artifact_install.DOCUMENTATION)
SPEC = artifact_install.argument_spec()
needs_ansible = pytest.mark.skipif(not os.path.exists(PLAYBOOK), reason="ansible-playbook is not installed beside this Python")


def test_documentation_matches_the_argument_spec():
    compare(DOC["options"], SPEC, type_default=None)  # a type left out on one side only is a difference here
    assert DOC["author"] == ["kubeforge developers (@kubeforge)"]
    assert all(DOC["attributes"][name]["description"] for name in DOC["attributes"])


def test_examples_use_only_options_that_exist():
    tasks = [task[MODULE] for task in yaml.safe_load(artifact_install.EXAMPLES) if MODULE in task]
    assert len(tasks) == 2
    for args in tasks:
        assert set(args) <= set(SPEC)
        for entry in args["artifacts"]:
            assert set(entry) <= set(SPEC["artifacts"]["options"])


# -- through ansible-playbook ----------------------------------------------------------------------

def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put(root, name: str, version: str, data: bytes) -> str:
    """An offline file in the release layout with its .sha256 beside it."""
    path = os.path.join(str(root), _artifacts.relpath(name, version, "amd64"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    with open(path + ".sha256", "w", encoding="utf-8") as handle:
        handle.write(f"{sha(data)}  {os.path.basename(path)}\n")
    return path


def etcd_tarball(version: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("etcd", "etcdctl", "etcdutl"):
            data = f"{name} {version}".encode()
            info = tarfile.TarInfo(f"etcd-v{version}-linux-amd64/{name}")
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def world(tmp_path):
    offline = tmp_path / "artifacts"
    put(offline, "kube-apiserver", "1.36.4", b"kube-apiserver 1.36.4")
    put(offline, "etcd", "3.5.33", etcd_tarball("3.5.33"))
    return tmp_path


def play(collections_path, world, host: str = "host1", *flags: str, **args) -> dict:
    """Run the module on this machine as the host `host` (its own install, bin and cache directories)."""
    root = world / host
    task = {MODULE: {
        "artifacts": [{"name": "etcd", "version": "3.5.33", "binaries": ["etcd", "etcdctl", "etcdutl"], "daemons": ["etcd"]},
                      {"name": "kube-apiserver", "version": "1.36.4", "daemons": ["kube-apiserver"]}],
        "artifacts_dir": str(world / "artifacts"), "checksum_source": "sidecar", "lock_file": str(world / "inventory" / "artifacts.lock.yml"),
        "install_dir": str(root / "opt"), "bin_dir": str(root / "bin"), "cache_dir": str(root / "cache"), **args}, "register": "out"}
    return run_task(task, world, collections_path, *flags)


def lock(world) -> dict:
    return _artifacts.load_lock(str(world / "inventory" / "artifacts.lock.yml"))


@needs_ansible
def test_first_use_records_the_lock_a_second_run_changes_nothing_a_new_version_is_added(collections_path, world):
    first = play(collections_path, world)
    assert first["changed"] and not first.get("failed"), first["_stdout"]
    assert first["changed_binaries"] == ["etcd", "etcdctl", "etcdutl", "kube-apiserver"]
    assert [change.split()[:2] for change in first["lock_changes"]] == [["added", "etcd"], ["added", "kube-apiserver"]]
    assert "Recorded in the artifacts lock" in first["_stdout"]
    recorded = lock(world)
    assert recorded["kube-apiserver"]["1.36.4"]["linux/amd64"] == {"sha256": sha(b"kube-apiserver 1.36.4")}
    assert recorded["etcd"]["3.5.33"]["linux/amd64"]["files"]["etcd"] == sha(b"etcd 3.5.33")
    with open(world / "host1" / "bin" / "kube-apiserver", "rb") as handle:
        assert handle.read() == b"kube-apiserver 1.36.4"
    second = play(collections_path, world)
    assert not second["changed"] and second["changed_binaries"] == [] and second["lock_changes"] == [], second["_stdout"]
    # A new version is first use again: added beside the locked one, not a mismatch.
    put(world / "artifacts", "kube-apiserver", "1.36.5", b"kube-apiserver 1.36.5")
    newer = play(collections_path, world, artifacts=[{"name": "kube-apiserver", "version": "1.36.5", "daemons": ["kube-apiserver"]}])
    assert newer["changed_binaries"] == ["kube-apiserver"], newer["_stdout"]
    assert newer["lock_changes"] == [f"added kube-apiserver 1.36.5 linux/amd64 {sha(b'kube-apiserver 1.36.5')}"]
    assert set(lock(world)["kube-apiserver"]) == {"1.36.4", "1.36.5"}


@needs_ansible
def test_a_rebuilt_artifact_fails_on_a_new_node_until_the_lock_is_updated(collections_path, world):
    play(collections_path, world)
    locked = sha(b"kube-apiserver 1.36.4")
    put(world / "artifacts", "kube-apiserver", "1.36.4", b"kube-apiserver 1.36.4, rebuilt")  # new .sha256, same version
    rebuilt = sha(b"kube-apiserver 1.36.4, rebuilt")
    # A node added later must get the locked bits: the new file is refused, with both checksums.
    refused = play(collections_path, world, "host2")
    assert refused.get("failed"), refused["_stdout"]
    assert f"kube-apiserver 1.36.4 linux/amd64: locked sha256 {locked}" in refused["msg"] and f"found {rebuilt}" in refused["msg"]
    assert "kubeforge_artifacts_lock_update=true" in refused["msg"]
    assert not os.path.exists(world / "host2" / "bin" / "kube-apiserver")
    # Check mode with the update: what would change, nothing written.
    checked = play(collections_path, world, "host1", "--check", lock_update=True)
    assert checked["changed"] and checked["changed_binaries"] == ["kube-apiserver"], checked["_stdout"]
    assert lock(world)["kube-apiserver"]["1.36.4"]["linux/amd64"]["sha256"] == locked
    # The documented update: the new file is installed, reported as a changed binary, and locked.
    updated = play(collections_path, world, "host1", lock_update=True)
    assert updated["changed_binaries"] == ["kube-apiserver"] and updated["lock_changes"] == [f"updated kube-apiserver 1.36.4 linux/amd64 {rebuilt}"]
    assert lock(world)["kube-apiserver"]["1.36.4"]["linux/amd64"]["sha256"] == rebuilt
    assert lock(world)["etcd"]["3.5.33"]["linux/amd64"]["files"]["etcd"] == sha(b"etcd 3.5.33")
    with open(world / "host1" / "bin" / "kube-apiserver", "rb") as handle:
        assert handle.read() == b"kube-apiserver 1.36.4, rebuilt"
    assert not play(collections_path, world, "host2").get("failed")  # the new node now gets the new bits


def sent(output: str) -> list[str]:
    """The offline files a -vvv run copied to the host, in the order the log shows (one batch's files go side by side)."""
    return [os.path.basename(path) for path in re.findall(r"PUT (\S+/artifacts/\S+) TO ", output)]


@needs_ansible
def test_a_new_host_gets_its_files_before_the_one_module_run_and_a_missing_binary_is_sent_in_a_second(collections_path, world):
    new = play(collections_path, world, "host1", "-vvv")
    assert new["changed_binaries"] == ["etcd", "etcdctl", "etcdutl", "kube-apiserver"], new["_stdout"]
    assert sorted(sent(new["_stdout"])) == ["etcd-v3.5.33-linux-amd64.tar.gz", "kube-apiserver"]
    assert module_runs(new["_stdout"], "artifact_install") == 1
    again = play(collections_path, world, "host1", "-vvv")
    assert not again["changed"] and sent(again["_stdout"]) == [] and module_runs(again["_stdout"], "artifact_install") == 1
    # A new etcd version (no directory yet: sent first), and a kube-apiserver whose file went missing from its
    # version's directory: the module names it, and the batch runs again with both copies.
    put(world / "artifacts", "etcd", "3.5.34", etcd_tarball("3.5.34"))
    os.remove(world / "host1" / "opt" / "kube-apiserver" / "v1.36.4" / "kube-apiserver")
    both = play(collections_path, world, "host1", "-vvv",
                artifacts=[{"name": "etcd", "version": "3.5.34", "binaries": ["etcd", "etcdctl", "etcdutl"], "daemons": ["etcd"]},
                           {"name": "kube-apiserver", "version": "1.36.4", "daemons": ["kube-apiserver"]}])
    assert not both.get("failed"), both["_stdout"]
    assert sent(both["_stdout"]) == ["etcd-v3.5.34-linux-amd64.tar.gz", "kube-apiserver"] and module_runs(both["_stdout"], "artifact_install") == 2
    assert both["changed_binaries"] == ["etcd", "etcdctl", "etcdutl", "kube-apiserver"]
    with open(world / "host1" / "bin" / "etcd", "rb") as handle:
        assert handle.read() == b"etcd 3.5.34"
    with open(world / "host1" / "bin" / "kube-apiserver", "rb") as handle:
        assert handle.read() == b"kube-apiserver 1.36.4"


@needs_ansible
def test_a_copy_is_checked_with_the_digest_the_preflight_keeps_until_the_file_changes(collections_path, world, monkeypatch):
    """The controller does not hash a file again while its stat is the one the preflight hashed (controller_digests)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(world / "cache-home"))
    path = os.path.join(str(world / "artifacts"), _artifacts.relpath("kube-apiserver", "1.36.4", "amd64"))
    kept = _artifacts.controller_digests(str(world / "artifacts"))
    kept.note(path, "0" * 64)  # a digest the file does not have, for the stat it has now
    kept.save()
    refused = play(collections_path, world)
    assert refused.get("failed") and f"{path} has sha256 {'0' * 64}" in refused["msg"], refused["_stdout"]
    assert not os.path.exists(world / "host1" / "bin" / "kube-apiserver")
    os.utime(path, (1, 1))  # a new stat: hashed again
    assert not play(collections_path, world).get("failed")

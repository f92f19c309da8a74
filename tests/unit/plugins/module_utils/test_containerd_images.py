# SPDX-License-Identifier: GPL-3.0-or-later
"""The images containerd has, asked through CRI, waiting for a containerd whose CRI plugin is not up yet."""
from __future__ import annotations

import json
import os
import subprocess

import pytest
from fake_clock import Clock  # pylint: disable=import-error  # beside this file

from ansible_collections.kubeforge.cluster.plugins.module_utils._containerd_images import (
    READY_POLL_INTERVAL, import_archives, nothing_to_do, probe_command, runtime_images_when_ready, split_present, uncached_archives)

NOT_UP = 'level=error msg="validate service connection: rpc error: code = Unimplemented desc = unknown service runtime.v1.ImageService"'
IMAGES = json.dumps({"images": [{"id": "sha256:aa", "repoTags": ["registry.k8s.io/pause:3.10.2"]}]})


def answers(*replies):
    calls = []

    def run(argv):
        calls.append(argv)
        return replies[min(len(calls), len(replies)) - 1]
    return run, calls


def test_asks_again_until_the_image_service_answers():
    clock = Clock()
    run, calls = answers((1, "", NOT_UP), (1, "", NOT_UP), (0, IMAGES, ""))
    assert runtime_images_when_ready(run, "/usr/local/bin/crictl", 60, sleep=clock.sleep, clock=clock) == {
        "registry.k8s.io/pause:3.10.2": "sha256:aa"}
    assert calls == [["/usr/local/bin/crictl", "images", "-o", "json"]] * 3
    assert clock.now == pytest.approx(2 * READY_POLL_INTERVAL)


def test_fails_with_crictls_message_once_the_time_is_up():
    clock = Clock()
    run, calls = answers((1, "", NOT_UP))
    with pytest.raises(RuntimeError, match=r"crictl images failed for 5 s: .*unknown service runtime.v1.ImageService"):
        runtime_images_when_ready(run, "crictl", 5, sleep=clock.sleep, clock=clock)
    # Asked every READY_POLL_INTERVAL until 5 s have passed, then once more.
    assert clock.now >= 5 and abs(len(calls) - (5 / READY_POLL_INTERVAL + 1)) <= 1


def test_only_the_wanted_archives_missing_on_the_host_are_to_be_copied():
    wanted = {"/c/pause.tar": ["registry.k8s.io/pause:3.10.2"], "/c/coredns.tar": ["registry.k8s.io/coredns/coredns:v1.15.0"]}
    importable, absent = split_present(wanted, exists=lambda path: path == "/c/pause.tar")
    assert importable == {"/c/pause.tar": ["registry.k8s.io/pause:3.10.2"]} and absent == ["/c/coredns.tar"]
    assert split_present({}, exists=lambda path: False) == ({}, [])


def test_every_archive_is_imported_and_every_failure_is_reported():
    """The imports run side by side: each archive is imported once, and each failure is named."""
    calls = []

    def run(argv):
        calls.append(argv)
        return (1, "", "ctr: content digest mismatch\n") if argv[-1].endswith("bad.tar") else (0, "", "")
    paths = ["/c/a.tar", "/c/bad.tar", "/c/b.tar", "/c/zz-bad.tar", "/c/pause.tar"]
    assert import_archives(run, "/usr/local/bin/ctr", paths) == [
        "ctr images import /c/bad.tar failed: ctr: content digest mismatch",
        "ctr images import /c/zz-bad.tar failed: ctr: content digest mismatch"]
    assert sorted(calls) == sorted(["/usr/local/bin/ctr", "-n", "k8s.io", "images", "import", "--local", path] for path in paths)
    assert import_archives(run, "ctr", ["/c/a.tar"]) == [] and import_archives(run, "ctr", []) == []


# --------------------------------------------------------------------------- the probe the action plugin asks first

def run_probe(tmp_path, archives, crictl_output: str | None) -> str:
    """The probe command run here with a crictl that prints ``crictl_output`` (None: one that fails, a runtime not up)."""
    crictl = tmp_path / "crictl"
    crictl.write_text("#!/bin/sh\n" + (f"cat <<'END'\n{crictl_output}\nEND\n" if crictl_output is not None else f"echo '{NOT_UP}' >&2; exit 1\n"))
    os.chmod(crictl, 0o755)
    return subprocess.run(["sh", "-c", probe_command(str(crictl), archives)], capture_output=True, text=True, check=False).stdout


WANTED = {"pause.tar": {"registry.k8s.io/pause:3.10.2": "sha256:aa"}}


@pytest.mark.parametrize("cached, crictl_output, settled, uncached", [
    (True, IMAGES, True, []),
    (False, IMAGES, False, ["pause.tar"]),
    (True, json.dumps({"images": [{"id": "sha256:bb", "repoTags": ["registry.k8s.io/pause:3.10.2"]}]}), False, []),
    (True, json.dumps({"images": []}), False, []),
    (True, None, False, []),
    (False, None, False, ["pause.tar"]),
])
def test_the_probe_settles_only_a_host_with_every_archive_and_every_image_at_its_id(tmp_path, cached, crictl_output, settled, uncached):
    archive = tmp_path / "pause.tar"
    if cached:
        archive.write_bytes(b"")
    wanted = {str(archive): WANTED["pause.tar"]}
    output = run_probe(tmp_path, sorted(wanted), crictl_output)
    assert nothing_to_do(wanted, output) is settled
    assert uncached_archives(output) == [str(tmp_path / name) for name in uncached]


def test_an_unreadable_probe_settles_nothing_and_names_nothing():
    assert not nothing_to_do(WANTED, "") and uncached_archives("") == []
    assert not nothing_to_do(WANTED, "--kubeforge-images--\nnot json\n")

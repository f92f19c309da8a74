# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The containerd_images module and action plugin run through ansible-playbook (this machine plays the host):
the archives a host lacks are copied from src_dir and imported in the same task, checked against the images
read on the controller.

Stand-ins: containerd cannot run here, so ``crictl`` and ``ctr`` are two small scripts. The fake crictl reports
the images listed in a file; the fake ctr records each import. The real ones import the lab's archives in the
molecule site scenario (tests/molecule/site: every pod starts from an imported image)."""
from __future__ import annotations

import io
import json
import os
import stat
import tarfile

from ansible_collections.kubeforge.cluster.plugins.filter.image_archive_ids import image_archive_ids
from one_task_play import collections_dir, module_runs, run_task  # pylint: disable=import-error  # beside this file

PAUSE = "registry.k8s.io/pause:3.10.2"
PAUSE_ID = "sha256:" + "a" * 64
BUSYBOX = "kubeforge.local/busybox:1"
BUSYBOX_ID = "sha256:" + "b" * 64


def saved_archive(path, tag: str, image_id: str) -> str:
    """A `docker save` archive: its manifest only (what the module and the filter read)."""
    raw = json.dumps([{"Config": f"blobs/sha256/{image_id.split(':')[1]}", "RepoTags": [tag]}]).encode()
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    return str(path)


def script(path, text: str) -> str:
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(0o755)
    return str(path)


def world(tmp_path) -> dict:
    controller = tmp_path / "images"
    controller.mkdir()
    saved_archive(controller / "pause.tar", PAUSE, PAUSE_ID)
    saved_archive(controller / "busybox.tar", BUSYBOX, BUSYBOX_ID)
    runtime = tmp_path / "runtime.json"
    runtime.write_text(json.dumps({"images": []}))
    imports = tmp_path / "imports.log"
    return {
        "controller": controller, "cache": tmp_path / "host-cache", "runtime": runtime, "imports": imports,
        "crictl": script(tmp_path / "crictl", f'cat "{runtime}"\n'),
        "ctr": script(tmp_path / "ctr", f'printf "%s\\n" "$*" >> "{imports}"\n'),
    }


def play(tmp_path, lab: dict, *flags: str, images: dict | None = None) -> dict:
    if images is None:
        images = image_archive_ids(sorted(str(path) for path in lab["controller"].iterdir()), str(lab["cache"]))
    args = {"ctr": lab["ctr"], "crictl": lab["crictl"], "images": images, "src_dir": str(lab["controller"])}
    task = {"kubeforge.cluster.containerd_images": args}
    return run_task(task, tmp_path, collections_dir(tmp_path / "collections"), *flags)


def imports(lab: dict) -> list[str]:
    return lab["imports"].read_text().splitlines() if lab["imports"].exists() else []


def test_the_archives_a_host_lacks_are_copied_and_imported_in_one_task_and_a_second_run_copies_nothing(tmp_path):
    lab = world(tmp_path)
    cached_pause, cached_busybox = str(lab["cache"] / "pause.tar"), str(lab["cache"] / "busybox.tar")
    first = play(tmp_path, lab, "-vvv")
    assert first["changed"] and not first.get("failed"), first["_stdout"]
    assert first["copied"] == [cached_busybox, cached_pause] and first["absent_archives"] == []
    # The cache lacked both: they were copied before the module's one run.
    assert module_runs(first["_stdout"], "containerd_images") == 1
    assert sorted(first["imported"]) == [cached_busybox, cached_pause]
    # Imported side by side: in either order.
    assert sorted(imports(lab)) == [f"-n k8s.io images import --local {cached_busybox}", f"-n k8s.io images import --local {cached_pause}"]
    for path in (cached_pause, cached_busybox):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
        with open(path, "rb") as copy, open(lab["controller"] / os.path.basename(path), "rb") as source:
            assert copy.read() == source.read()
    assert not [name for name in os.listdir(lab["cache"]) if name.endswith(".part")]

    # The runtime has both images now: nothing is copied or imported.
    lab["runtime"].write_text(json.dumps({"images": [{"id": PAUSE_ID, "repoTags": [PAUSE]}, {"id": BUSYBOX_ID, "repoTags": [BUSYBOX]}]}))
    second = play(tmp_path, lab)
    assert not second["changed"] and second["copied"] == [] and second["imported"] == {}, second["_stdout"]
    assert len(imports(lab)) == 2

    # A cache emptied by hand is filled again (a change), with nothing imported; then nothing changes.
    os.remove(cached_pause)
    refilled = play(tmp_path, lab)
    assert refilled["changed"] and refilled["copied"] == [cached_pause] and refilled["imported"] == {}, refilled["_stdout"]
    assert len(imports(lab)) == 2 and not play(tmp_path, lab)["changed"]


def test_an_archive_in_the_cache_is_imported_without_a_copy(tmp_path):
    lab = world(tmp_path)
    lab["cache"].mkdir()
    saved_archive(lab["cache"] / "pause.tar", PAUSE, PAUSE_ID)
    result = play(tmp_path, lab)
    assert result["copied"] == [str(lab["cache"] / "busybox.tar")], result["_stdout"]
    assert sorted(result["imported"]) == [str(lab["cache"] / "busybox.tar"), str(lab["cache"] / "pause.tar")]


def test_check_mode_copies_and_imports_nothing_but_reports_the_change(tmp_path):
    lab = world(tmp_path)
    result = play(tmp_path, lab, "--check")
    assert result["changed"] and not result.get("failed"), result["_stdout"]
    assert result["copied"] == [] and result["absent_archives"] == [str(lab["cache"] / "busybox.tar"), str(lab["cache"] / "pause.tar")]
    assert not lab["cache"].exists() and imports(lab) == []


def test_check_mode_on_a_host_without_the_runtime_reports_every_image_to_import(tmp_path):
    # A node that add_nodes.yml would add: crictl is not installed yet.
    lab = world(tmp_path)
    os.remove(lab["crictl"])
    result = play(tmp_path, lab, "--check")
    assert result["changed"] and not result.get("failed"), result["_stdout"]
    assert result["absent_archives"] == [str(lab["cache"] / "busybox.tar"), str(lab["cache"] / "pause.tar")]
    assert imports(lab) == []


def test_a_copy_that_does_not_hold_the_images_read_on_the_controller_is_refused_and_not_imported(tmp_path):
    lab = world(tmp_path)
    images = image_archive_ids([str(lab["controller"] / "pause.tar")], str(lab["cache"]))
    # The archive changed on the controller after its images were read.
    saved_archive(lab["controller"] / "pause.tar", PAUSE, "sha256:" + "c" * 64)
    result = play(tmp_path, lab, images=images)
    assert result.get("failed"), result["_stdout"]
    assert "cannot put a copied image archive in place" in result["msg"] and "sha256:" + "c" * 64 in result["msg"]
    assert not os.path.exists(lab["cache"] / "pause.tar") and imports(lab) == []


def test_an_archive_the_controller_does_not_hold_fails_before_any_copy(tmp_path):
    lab = world(tmp_path)
    images = {str(lab["cache"] / "gone.tar"): {PAUSE: PAUSE_ID}}
    result = play(tmp_path, lab, images=images)
    assert result.get("failed"), result["_stdout"]
    assert f"does not hold: {lab['controller'] / 'gone.tar'}" in result["msg"]
    assert not lab["cache"].exists() and imports(lab) == []

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which image archives containerd still needs, compared by image ID (the config digest).

An archive made by ``docker save`` lists its images in ``manifest.json`` (RepoTags, Config); an
OCI archive lists them in ``index.json`` (the ref name annotation, the manifest's config). The
CRI (``crictl images -o json``) reports each image's ID, which is the same config digest, so an
archive is imported only when one of its tags is missing or points at another image.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.kubeforge.cluster.plugins.module_utils._fs import moved

OCI_REF_NAME = "io.containerd.image.name"
OCI_REF_NAME_SHORT = "org.opencontainers.image.ref.name"
# Seconds between two questions to a containerd whose CRI plugin is not up yet (it comes up within a second or so).
READY_POLL_INTERVAL = 0.2
# Archives imported at once: containerd unpacks each one's layers on its own, so a host's cores share the work.
IMPORT_WORKERS = 4
DEFAULT_CRICTL = "/usr/local/bin/crictl"
_SEPARATOR = "--kubeforge-images--"


def probe_command(crictl: str, archives) -> str:
    """One shell command printing the archives of the host's image cache that are not there, then (after a separator
    line) what the runtime holds: what the module would read, without a module run."""
    quote = shlex.quote
    return "; ".join([*(f"[ -e {quote(path)} ] || echo {quote(path)}" for path in archives), f"echo {_SEPARATOR}",
                      f"{quote(crictl)} images -o json 2>/dev/null"])


def uncached_archives(output: str) -> list[str]:
    """The archives the probe's ``output`` names as missing from the host's cache ([] when it cannot tell: the module's
    run then names what it needs)."""
    absent, separator, _runtime = output.partition(_SEPARATOR + "\n")
    return [line for line in absent.splitlines() if line] if separator else []


def nothing_to_do(images: dict, output: str) -> bool:
    """Whether the probe's ``output`` shows the host has every archive of ``images`` ({path: {tag: image id}}) in its
    cache and the runtime has every image at its ID: the module would copy and import nothing. False when the
    output cannot be read (a runtime not up yet: the module waits for it)."""
    absent, separator, runtime = output.partition(_SEPARATOR + "\n")
    if not separator or absent.strip():
        return False
    try:
        present = runtime_images(runtime)
    except (ValueError, KeyError, AttributeError, TypeError):
        return False
    return not missing(images, present)


def _digest(text: str) -> str:
    text = text.split("/")[-1].removesuffix(".json")
    return text if text.startswith("sha256:") else f"sha256:{text}"


def archive_images(path: str) -> dict:
    """{tag: image id} of every tagged image in an archive (docker save or OCI layout)."""
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
        if "manifest.json" in names:
            manifest = json.load(tar.extractfile("manifest.json"))
            return {tag: _digest(entry["Config"]) for entry in manifest for tag in entry.get("RepoTags") or []}
        if "index.json" in names:
            images = {}
            index = json.load(tar.extractfile("index.json"))
            for entry in index.get("manifests", []):
                annotations = entry.get("annotations") or {}
                tag = annotations.get(OCI_REF_NAME) or annotations.get(OCI_REF_NAME_SHORT)
                blob = json.load(tar.extractfile("blobs/" + entry["digest"].replace(":", "/")))
                if tag and "config" in blob:
                    images[tag] = blob["config"]["digest"]
            return images
    raise ValueError(f"{path} is neither a docker save archive (manifest.json) nor an OCI archive (index.json)")


def runtime_images(crictl_json: str) -> dict:
    """{tag: image id} from `crictl images -o json`."""
    images = {}
    for image in json.loads(crictl_json).get("images", []):
        for tag in image.get("repoTags") or []:
            images[tag] = image["id"]
    return images


def _normalize(tag: str) -> str:
    """containerd names Docker Hub images in full (docker.io/library/busybox:1)."""
    first = tag.split("/")[0]
    if "/" not in tag:
        return f"docker.io/library/{tag}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{tag}"
    return tag


def missing(archives: dict, present: dict) -> dict:
    """{archive path: [tags to import]} for every archive with a tag absent or at another ID."""
    wanted = {}
    for path, images in archives.items():
        tags = [tag for tag, image_id in sorted(images.items()) if present.get(_normalize(tag)) != image_id]
        if tags:
            wanted[path] = tags
    return wanted


def split_present(wanted: dict, exists=os.path.isfile) -> tuple[dict, list]:
    """(the wanted archives on the host {path: tags}, the wanted archives not on it, sorted): an
    archive named by the controller is copied only when the runtime needs it."""
    absent = sorted(path for path in wanted if not exists(path))
    return {path: tags for path, tags in wanted.items() if path not in absent}, absent


def place_archive(source: str, dest: str, expected: dict) -> None:
    """Put the archive copied to ``source`` at ``dest`` (0644, moved or copied then renamed into place), once it holds the
    images ``expected`` ({tag: image id}, read on the controller): a copy cut short or swapped on the way
    is refused, and the import checks every layer against its digest."""
    found = archive_images(source)
    if found != expected:
        raise ValueError(f"{source} (copied for {dest}) holds {found}, the controller's archive {expected}")
    directory = os.path.dirname(dest)
    os.makedirs(directory, 0o755, exist_ok=True)
    os.chmod(source, 0o644)
    if moved(source, dest):  # the copy is the action's, on the cache's file system: not written again
        return
    fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(dest)}.", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as handle:
            shutil.copyfileobj(handle, out, 1 << 20)
            os.fchmod(out.fileno(), 0o644)
        os.replace(temp, dest)
    except BaseException:
        os.unlink(temp)
        raise


def runtime_images_when_ready(run_command, crictl: str, timeout: float, sleep=time.sleep, clock=time.monotonic) -> dict:
    """{tag: image id} from `crictl images -o json`, asked again every READY_POLL_INTERVAL for up to ``timeout``
    seconds while it fails: a containerd just (re)started answers before its CRI plugin is up
    ("unknown service runtime.v1.ImageService"). RuntimeError with crictl's message after that."""
    deadline = clock() + timeout
    while True:
        rc, out, err = run_command([crictl, "images", "-o", "json"])
        if rc == 0:
            return runtime_images(out)
        if clock() >= deadline:
            raise RuntimeError(f"crictl images failed for {timeout:g} s: {err.strip()}")
        sleep(READY_POLL_INTERVAL)


def import_archives(run_command, ctr: str, paths) -> list[str]:
    """Import each archive into containerd's k8s.io namespace, IMPORT_WORKERS at a time; the failures, one message
    each (empty when every import succeeded). An archive is imported whole or not at all: a failed one can be
    imported again."""
    def one(path: str) -> str:
        rc, out, err = run_command([ctr, "-n", "k8s.io", "images", "import", "--local", path])
        return f"ctr images import {path} failed: {err.strip() or out.strip()}" if rc != 0 else ""
    with ThreadPoolExecutor(max_workers=IMPORT_WORKERS) as pool:
        return [message for message in pool.map(one, sorted(paths)) if message]

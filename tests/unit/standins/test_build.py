# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""build-standins.sh: release layout, sha256 sidecars, executables, deterministic bytes, baked lists."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile

import pytest

from .helpers import COMPONENTS, OLD_VERSION, REPO, VERSION

SHARED = os.path.join(REPO, "..", "shared", "k8s-flags")
# Without ../shared beside the checkout, build-standins.sh builds from the collection's own copy
# (plugins/module_utils/_data/flags/<minor>/<component>.txt, no derived/ level).
HAS_SHARED = os.path.isdir(SHARED)
ALL = COMPONENTS + ("kubectl",)


@pytest.mark.parametrize("name", ALL)
def test_installed_in_release_layout_with_sidecar(standins, name):
    path = standins.path(name)
    assert path.endswith(f"release/v{VERSION}/bin/linux/amd64/{name}")
    assert os.access(path, os.X_OK)
    with open(path, "rb") as handle:
        content = handle.read()
    assert content.startswith(b"#!/usr/bin/env python3\n")
    with open(path + ".sha256", encoding="utf-8") as handle:
        assert handle.read() == f"{hashlib.sha256(content).hexdigest()}  {name}\n"


def test_build_is_deterministic(standins, tmp_path):
    subprocess.run([os.path.join(REPO, "tests", "harness", "build-standins.sh"), str(tmp_path), VERSION],
                   check=True, capture_output=True, env=dict(os.environ, PYTHON=sys.executable), timeout=120)
    for name in ALL:
        with open(standins.path(name), "rb") as first, open(tmp_path / f"release/v{VERSION}/bin/linux/amd64/{name}", "rb") as second:
            assert first.read() == second.read(), name


def test_unknown_version_fails(tmp_path):
    result = subprocess.run([os.path.join(REPO, "tests", "harness", "build-standins.sh"), str(tmp_path), "1.20.1"],
                            capture_output=True, text=True, check=False, env=dict(os.environ, PYTHON=sys.executable), timeout=120)
    assert result.returncode == 1
    assert "no flag list for kube-apiserver 1.20" in result.stderr


def _source(relative: str) -> str:
    if HAS_SHARED:
        return relative
    return relative.replace("/derived/", "/")


def _shared_flags(relative: str) -> dict:
    base = SHARED if HAS_SHARED else os.path.join(REPO, "plugins", "module_utils", "_data", "flags")
    with open(os.path.join(base, _source(relative)), encoding="utf-8") as handle:
        return {line.split("\t")[0].strip(): line.rstrip("\n").endswith("\tdeprecated") for line in handle if line.strip()}


@pytest.mark.parametrize("name, version, relative", [
    ("kube-apiserver", VERSION, "1.36/derived/kube-apiserver.txt"),
    ("kube-scheduler", VERSION, "1.36/kube-scheduler.txt"),
    ("kubelet", VERSION, "1.36/derived/kubelet.txt"),
    ("kube-controller-manager", OLD_VERSION, "1.35/kube-controller-manager.txt"),
])
def test_baked_flag_list_is_the_shared_one(standins, name, version, relative):
    with zipfile.ZipFile(standins.path(name, version)) as bundle:
        data = json.loads(bundle.read("kubeforge_standins/data.json"))
    assert data["flags"] == _shared_flags(relative)
    assert data["flag_list"] == _source(relative)


def test_config_lists_are_the_newest_at_or_below_the_version(standins):
    with zipfile.ZipFile(standins.path("kube-scheduler")) as bundle:
        data = json.loads(bundle.read("kubeforge_standins/data.json"))
    assert data["configs"]["KubeSchedulerConfiguration"]["source"] == "config-api/1.35/KubeSchedulerConfiguration.nested.txt"
    assert "clientConnection.kubeconfig" in data["configs"]["KubeSchedulerConfiguration"]["paths"]

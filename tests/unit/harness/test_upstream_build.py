# SPDX-License-Identifier: GPL-3.0-or-later
"""The pure parts of tests/harness/upstream/build.py: which replace lines the scratch module gets,
the pins, and the deterministic release tarballs."""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import tarfile

import pytest

HARNESS = os.path.join(os.path.dirname(__file__), "..", "..", "harness", "upstream")


@pytest.fixture(scope="module")
def build():
    sys.path.insert(0, HARNESS)  # build.py imports images.py from beside it
    try:
        spec = importlib.util.spec_from_file_location("upstream_build", os.path.join(HARNESS, "build.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(HARNESS)


# Trimmed from k8s.io/kubernetes v1.36.4's go.mod: staging modules required at the v0.0.0
# placeholder and replaced by directories that a dependency's module zip does not carry.
KUBERNETES_GOMOD = """module k8s.io/kubernetes

go 1.26.0

require (
\tgithub.com/spf13/pflag v1.0.10
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
)
"""

# Trimmed from go.etcd.io/etcd/etcdctl/v3 v3.5.35's go.mod: siblings required at real versions
# (client/v2 is versioned v2.305.x), and guards against importing the root module.
ETCDCTL_GOMOD = """module go.etcd.io/etcd/etcdctl/v3

require (
\tgo.etcd.io/etcd/api/v3 v3.5.35
\tgo.etcd.io/etcd/client/v2 v2.305.35
)

replace (
\tgo.etcd.io/etcd/api/v3 => ../api
\tgo.etcd.io/etcd/client/v2 => ../client/v2
\tgo.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY // a guard
)

replace github.com/example/fork => github.com/example/fork v1.2.3
"""


def test_kubernetes_staging_modules_become_their_published_versions(build):
    lines = build.upstream_replaces(KUBERNETES_GOMOD, lambda _module: "v0.36.4")
    assert lines == ["k8s.io/api => k8s.io/api v0.36.4", "k8s.io/client-go => k8s.io/client-go v0.36.4"]


def test_etcd_siblings_take_the_required_version_and_guards_are_dropped(build):
    lines = build.upstream_replaces(ETCDCTL_GOMOD, lambda _module: "v3.5.35")
    assert lines == [
        "go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 v3.5.35",
        "go.etcd.io/etcd/client/v2 => go.etcd.io/etcd/client/v2 v2.305.35",
        "github.com/example/fork => github.com/example/fork v1.2.3",
    ]


def test_every_component_has_a_builder_and_the_lab_versions_come_first(build):
    with open(os.path.join(HARNESS, "components.json"), encoding="utf-8") as handle:
        pins = json.load(handle)["components"]
    assert set(pins) == set(build.COMPONENTS)
    assert all(isinstance(versions, list) and versions for versions in pins.values())
    # The first pin of each is what the lab and the tests run: the sample's kube_version and the lab's etcd_version.
    with open(os.path.join(HARNESS, "..", "..", "..", "inventory", "sample", "group_vars", "all.yml"), encoding="utf-8") as handle:
        assert f'kube_version: "{pins["kubernetes"][0]}"' in handle.read()
    with open(os.path.join(HARNESS, "..", "..", "..", "inventory", "lab", "group_vars", "all", "lab.yml"), encoding="utf-8") as handle:
        assert f'etcd_version: "{pins["etcd"][0]}"' in handle.read()


def test_a_release_tarball_is_deterministic_and_in_the_release_layout(build, tmp_path):
    binary = tmp_path / "etcd"
    binary.write_bytes(b"\x7fELF not really")
    first, second = tmp_path / "one" / "etcd.tar.gz", tmp_path / "two" / "etcd.tar.gz"
    build.pack_tar(first, [("etcd", binary)], top="etcd-v3.5.35-linux-amd64")
    build.pack_tar(second, [("etcd", binary)], top="etcd-v3.5.35-linux-amd64")
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["etcd-v3.5.35-linux-amd64", "etcd-v3.5.35-linux-amd64/etcd"]
    assert members["etcd-v3.5.35-linux-amd64/etcd"].mode == 0o755
    digest, name = (tmp_path / "one" / "etcd.tar.gz.sha256").read_text().split()
    assert name == "etcd.tar.gz" and len(digest) == 64

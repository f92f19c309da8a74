# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The three modules end to end: `ansible localhost -m kubeforge.cluster.etcd_*` against real etcd (AnsiballZ, main(), JSON)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from etcd_harness import REPO, etcd_binary

pytestmark = pytest.mark.integration

ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")


@pytest.fixture(scope="module")
def collections_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("collections")
    os.makedirs(root / "ansible_collections" / "kubeforge")
    os.symlink(REPO, root / "ansible_collections" / "kubeforge" / "cluster")
    (root / "ansible.cfg").write_text("[defaults]\n")
    return root


def ansible(collections_path, module: str, args: dict, *flags: str) -> dict:
    assert os.path.exists(ANSIBLE), f"{ANSIBLE} is missing: the ansible CLI must be installed beside this Python"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_path), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_CONFIG=str(collections_path / "ansible.cfg"))
    done = subprocess.run([ANSIBLE, "localhost", "-m", f"kubeforge.cluster.{module}", "-a", json.dumps(args), *flags],
                          env=env, capture_output=True, text=True, check=False, timeout=120)
    output = json.JSONDecoder().raw_decode(done.stdout)[0]
    return output["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_etcd_member_through_ansible(collections_path, clusters):
    cluster = clusters()
    args = {**cluster.client_params(), "state": "present", "name": "m1", "peer_urls": ["https://127.0.0.1:1"]}
    checked = ansible(collections_path, "etcd_member", args, "--check", "--diff")
    assert checked["changed"] and len(checked["diff"]["after"]["members"]) == 2, checked
    added = ansible(collections_path, "etcd_member", args)
    assert added["changed"] and added["member"]["is_learner"] and "diff" not in added, added
    listed = ansible(collections_path, "etcd_member", cluster.client_params())
    assert not listed["changed"] and sorted(m["is_learner"] for m in listed["members"]) == [False, True]
    assert listed["leader"]["name"] == "m0"


def test_etcd_mirror_through_ansible(collections_path, clusters, connect):
    source, dest = clusters(), clusters()
    connect(source).put(b"/registry/a", b"1")
    args = {**source.client_params(), "destination": {"endpoints": dest.endpoints}, "prefix": "/registry/",
            "min_dest_revision_above_source": True, "revision_margin": 5}
    result = ansible(collections_path, "etcd_mirror", args)
    assert result["changed"] and result["keys_copied"] == 1 and result["verification"]["equal"], result
    assert connect(dest).get(b"/registry/a").value == b"1"  # the destination inherited the source's TLS files
    again = ansible(collections_path, "etcd_mirror", args)
    assert not again["changed"], again


def test_etcd_snapshot_through_ansible(collections_path, shared, connect, tmp_path):
    revision = connect(shared).put(b"/cli/key", b"v")
    path = str(tmp_path / "cli.db")
    saved = ansible(collections_path, "etcd_snapshot", {**shared.client_params(), "path": path, "etcdctl_path": etcd_binary("etcdctl")})
    assert saved["changed"] and saved["method"] == "etcdctl" and saved["mode"] == "0600", saved
    status = ansible(collections_path, "etcd_snapshot", {"state": "status", "path": path, "etcdutl_path": etcd_binary("etcdutl")})
    assert status["trailer_valid"] and status["revision"] >= revision and not status["changed"], status
    failed = ansible(collections_path, "etcd_snapshot", {"state": "status", "path": str(tmp_path / "missing.db")})
    assert failed["failed"] and "does not exist" in failed["msg"]

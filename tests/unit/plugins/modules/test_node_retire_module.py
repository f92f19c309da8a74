# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The node_retire module: docs against the spec, EXAMPLES and RETURN, and main() moving directories of tmp_path
aside on this machine (no services, no crictl: nothing else is touched).

The parsers and the backend are tested in tests/unit/plugins/module_utils/test_retire.py."""
from __future__ import annotations

import os
import re

import pytest
import yaml

from ansible_collections.kubeforge.cluster.plugins.modules import node_retire
from module_checks import run_main  # pylint: disable=import-error  # beside this file

MODULE = "kubeforge.cluster.node_retire"
DOC = yaml.safe_load(node_retire.DOCUMENTATION)
RETURNED = yaml.safe_load(node_retire.RETURN)
SPEC = node_retire.argument_spec()
STAMPED = re.compile(r"\.removed-\d{8}T\d{6}Z$")


def test_documentation_matches_the_argument_spec():
    assert DOC["module"] == "node_retire"
    assert set(DOC["options"]) == set(SPEC)
    for name, spec in SPEC.items():
        doc = DOC["options"][name]
        for key in ("type", "default", "choices", "elements"):
            assert doc.get(key) == spec.get(key), f"{name}: {key}"
        assert bool(doc.get("required")) == bool(spec.get("required")), name
        assert doc.get("description"), name
    assert DOC["author"] == ["kubeforge developers (@kubeforge)"]


def test_documented_attributes():
    assert {name: DOC["attributes"][name]["support"] for name in ("check_mode", "diff_mode", "idempotent")} == {
        "check_mode": "full", "diff_mode": "none", "idempotent": "full"}
    assert all(attribute["description"] for attribute in DOC["attributes"].values())


def test_examples_use_only_options_that_exist():
    tasks = [task[MODULE] for task in yaml.safe_load(node_retire.EXAMPLES) if MODULE in task]
    assert len(tasks) == 2
    for args in tasks:
        assert set(args) <= set(SPEC), args


def test_return_is_documented_with_samples():
    assert set(RETURNED) == {"changed", "pods_removed", "stopped", "disabled", "missing", "links_deleted", "unmounted", "moved", "lock_holder"}
    for key, entry in RETURNED.items():
        assert {"description", "returned", "type", "sample"} <= set(entry), key
    assert set(RETURNED["moved"]["contains"]) == {"path", "moved_to"}


@pytest.fixture
def state(tmp_path):
    """Two state directories with content, and a path that does not exist."""
    root = os.path.realpath(str(tmp_path))
    for name in ("kubelet", "kubernetes"):
        os.makedirs(os.path.join(root, name, "pki"))
        with open(os.path.join(root, name, "pki", "ca.crt"), "w", encoding="utf-8") as handle:
            handle.write(name)
    return root


def test_check_mode_reports_the_moves_and_changes_nothing(state):
    paths = [os.path.join(state, "kubelet"), os.path.join(state, "kubernetes"), os.path.join(state, "cni")]
    result = run_main(node_retire, {"services": [], "paths": paths}, check_mode=True)
    assert result["changed"] is True and not result.get("failed")
    assert [entry["path"] for entry in result["moved"]] == paths[:2]
    assert all(STAMPED.search(entry["moved_to"]) for entry in result["moved"])
    assert (result["pods_removed"], result["stopped"], result["disabled"], result["missing"], result["unmounted"]) == (0, [], [], [], [])
    assert sorted(os.listdir(state)) == ["kubelet", "kubernetes"]


def test_moves_aside_then_a_second_run_changes_nothing(state):
    paths = [os.path.join(state, "kubelet"), os.path.join(state, "kubernetes/")]
    result = run_main(node_retire, {"services": [], "paths": paths})
    assert result["changed"] is True and not result.get("failed"), result
    moved = {entry["path"]: entry["moved_to"] for entry in result["moved"]}
    assert list(moved) == [os.path.join(state, "kubelet"), os.path.join(state, "kubernetes")]
    assert len({target[-16:] for target in moved.values()}) == 1  # one stamp per run
    for path, target in moved.items():
        assert os.path.dirname(target) == state and STAMPED.search(target) and target.startswith(path + ".removed-")
        with open(os.path.join(target, "pki", "ca.crt"), encoding="utf-8") as handle:
            assert handle.read() == os.path.basename(path)
    assert sorted(os.listdir(state)) == sorted(os.path.basename(target) for target in moved.values())
    again = run_main(node_retire, {"services": [], "paths": paths})
    assert again["changed"] is False and again["moved"] == [] and again["unmounted"] == []


def test_refused_paths_fail_the_module_with_every_one_named(state):
    result = run_main(node_retire, {"paths": ["/etc", "relative", os.path.join(state, "kubelet"), "/var/lib"]})
    assert result["failed"] is True
    assert result["msg"] == ("refusing to move these paths aside: /etc is a system directory; 'relative' is not an absolute path; "
                             "/var/lib is a system directory")
    assert len(result["errors"]) == 3
    assert sorted(os.listdir(state)) == ["kubelet", "kubernetes"]


def test_a_run_beside_one_a_killed_run_left_on_the_host_waits_then_fails_naming_it_and_changes_nothing(state, lock_dir, lock_holder):
    paths = [os.path.join(state, "kubelet")]
    with lock_holder.held(lock_dir, "node_retire", domain="node_retire") as (holder, _child):
        result = run_main(node_retire, {"paths": paths, "lock_timeout": 0.3})
    assert result["failed"] is True
    assert f"another node_retire operation holds this host's lock {lock_dir}/node_retire.lock: PID {holder.pid} " in result["msg"], result
    assert result["lock_holder"]["pid"] == holder.pid
    assert sorted(os.listdir(state)) == ["kubelet", "kubernetes"]
    # Once it has ended, the next run does the work.
    assert run_main(node_retire, {"paths": paths})["moved"][0]["path"] == paths[0]


def test_check_mode_does_not_wait_for_the_host_lock(state, lock_dir, lock_holder):
    with lock_holder.held(lock_dir, "node_retire", domain="node_retire"):
        result = run_main(node_retire, {"paths": [os.path.join(state, "kubelet")], "lock_timeout": 0.3}, check_mode=True)
    assert not result.get("failed") and result["changed"] is True, result

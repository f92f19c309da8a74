# SPDX-License-Identifier: GPL-3.0-or-later
"""The phases a run selects by its tags, and what each needs done before it."""
from __future__ import annotations

import glob
import os
import pathlib
import re

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils import _phases


@pytest.mark.parametrize("phases, run_tags, skip_tags, expected", [
    ("all", ["all"], [], list(_phases.ORDER)),
    ("all", None, None, list(_phases.ORDER)),
    ("all", ["flannel", "etcd"], [], ["etcd", "flannel"]),
    ("all", ["tagged"], ["etcd", "coredns"], [phase for phase in _phases.ORDER if phase not in ("etcd", "coredns")]),
    ("all", ["all"], ["all"], []),
    ("all", ["preflight"], [], []),
    (["coredns"], ["all"], [], ["coredns"]),
    (["coredns"], ["etcd"], [], []),
    (["coredns"], ["all"], ["coredns"], []),
])
def test_the_phases_a_run_selects_follow_ansibles_tags(phases, run_tags, skip_tags, expected):
    assert _phases.selected(phases, run_tags, skip_tags) == expected


def test_an_unknown_phase_is_named():
    with pytest.raises(ValueError, match="unknown phases dns, nginx: the phases are prepare, pki, etcd"):
        _phases.selected(["coredns", "nginx", "dns"], ["all"], [])


@pytest.mark.parametrize("phase, expected", [
    ("prepare", []),
    ("pki", []),
    ("ha_nginx", []),
    ("container_runtime", []),
    ("etcd", ["pki"]),
    ("control_plane", ["pki", "etcd"]),
    ("ipvs", ["pki", "etcd", "control_plane"]),
    ("coredns", ["pki", "etcd", "control_plane", "kubelet_bootstrap", "flannel"]),
])
def test_a_phase_needs_what_its_needs_need(phase, expected):
    assert _phases.needed(phase) == expected


def test_every_phase_a_phase_needs_is_a_phase_before_it():
    for phase in _phases.ORDER:
        assert all(_phases.ORDER.index(before) < _phases.ORDER.index(phase) for before in _phases.needed(phase)), phase


@pytest.mark.parametrize("phases, expected", [
    (list(_phases.ORDER), {}),
    (["prepare", "pki", "etcd"], {}),
    (["container_runtime"], {}),
    (["control_plane"], {"control_plane": ["pki", "etcd"]}),
    (["pki", "control_plane", "flannel"], {"control_plane": ["etcd"], "flannel": ["etcd", "kubelet_bootstrap"]}),
])
def test_what_a_selection_leaves_out(phases, expected):
    assert _phases.left_out(phases) == expected


@pytest.mark.parametrize("phase", sorted(_phases.WRITES))
def test_each_phase_writes_the_unit_file_it_is_known_by_on_the_hosts_of_its_group(phase):
    """_phases.WRITES repeats a path of the phase's role and the group of its playbook: a change to either fails here."""
    group, unit = _phases.WRITES[phase]
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
    role = "".join(pathlib.Path(path).read_text(encoding="utf-8") for path in sorted(glob.glob(os.path.join(repo, "roles", phase, "*", "*.yml"))))
    assert re.search(rf"""['"]?dest['"]?: ['"]?{re.escape(unit)}['",}}]""", role), f"roles/{phase} writes no {unit}"
    with open(os.path.join(repo, "playbooks", "phases", f"{phase}.yml"), encoding="utf-8") as handle:
        assert f"""hosts: "{{{{ '{group}' | kubeforge.cluster.phase_hosts(""" in handle.read()

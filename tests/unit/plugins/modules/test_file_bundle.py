# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The file_bundle module and action plugin: docs against the spec, main(), and runs through the ansible CLI."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
import yaml

from ansible_collections.kubeforge.cluster.plugins.modules import file_bundle
from module_checks import compare, run_main  # pylint: disable=import-error  # beside this file

PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
MODULE = "kubeforge.cluster.file_bundle"
DOC = yaml.safe_load(file_bundle.DOCUMENTATION)
SPEC = file_bundle.argument_spec()
SECRET = "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n"


def test_documentation_matches_the_argument_spec():
    compare(DOC["options"], SPEC, "")
    assert DOC["author"] == ["kubeforge developers (@kubeforge)"]
    assert all(DOC["attributes"][name]["description"] for name in DOC["attributes"])


def test_contents_are_no_log():
    assert SPEC["files"]["options"]["content"]["no_log"] and SPEC["files"]["options"]["content_base64"]["no_log"]


def test_examples_use_only_options_that_exist():
    tasks = [task[MODULE] for task in yaml.safe_load(file_bundle.EXAMPLES) if MODULE in task]
    assert len(tasks) >= 2
    for args in tasks:
        assert set(args) <= set(SPEC)
        for entry in args.get("files", []):
            assert set(entry) <= set(SPEC["files"]["options"])


def test_main_writes_and_hides_the_content(tmp_path):
    args = {"files": [{"dest": str(tmp_path / "k.key"), "content": SECRET, "mode": "0600"}]}
    result = run_main(file_bundle, args)
    assert result["changed"] and (tmp_path / "k.key").read_text() == SECRET
    assert "TOPSECRETKEYMATERIAL" not in json.dumps(result)
    returned = yaml.safe_load(file_bundle.RETURN)
    assert set(result) - {"invocation"} == set(returned)
    assert not run_main(file_bundle, args)["changed"]


def test_main_reports_every_problem(tmp_path):
    result = run_main(file_bundle, {"files": [{"dest": "rel", "content": "x"}, {"dest": "/y", "content": "x", "mode": "rw"}]})
    assert result["failed"] and len(result["errors"]) == 2


def test_main_rejects_src_with_content():
    result = run_main(file_bundle, {"files": [{"dest": "/x", "src": "/a", "content": "b"}]})
    assert result["failed"] and "mutually exclusive" in result["msg"]


# -- through ansible-playbook: the action plugin reads src on the controller --------------------------

def play(collections_path, tmp_path, task: dict, *flags: str) -> dict:
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [dict(task, register="out")]}]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_CONFIG=os.path.join(collections_path, "ansible.cfg"))
    done = subprocess.run([PLAYBOOK, str(playbook), "-vvv", *flags], env=env, capture_output=True, text=True, check=False, timeout=120)
    output, _end = json.JSONDecoder().raw_decode(done.stdout[done.stdout.index("{"):])
    result = output["plays"][0]["tasks"][0]["hosts"]["localhost"]
    result["_stdout"] = done.stdout + done.stderr
    return result


@pytest.mark.skipif(not os.path.exists(PLAYBOOK), reason="ansible-playbook is not installed beside this Python")
def test_action_copies_controller_files_in_one_task(collections_path, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.key").write_text(SECRET)
    (source / "a.crt").write_text("CERT\n")
    dest = tmp_path / "dest" / "pki"
    task = {MODULE: {"files": [
        {"src": str(source / "a.crt"), "dest": str(dest / "a.crt"), "mode": "0644", "services": ["kubelet"]},
        {"src": str(source / "a.key"), "dest": str(dest / "a.key"), "mode": "0600", "services": ["kubelet"]},
        {"dest": str(dest / "inline.txt"), "content": "inline\n"},
    ]}}
    first = play(collections_path, tmp_path, task)
    assert first["changed"] and first["services_changed"] == ["kubelet"], first
    assert (dest / "a.key").read_text() == SECRET and stat.S_IMODE(os.stat(dest / "a.key").st_mode) == 0o600
    assert (dest / "inline.txt").read_text() == "inline\n"
    assert "TOPSECRETKEYMATERIAL" not in first["_stdout"]  # not even at -vvv
    second = play(collections_path, tmp_path, task, "--diff")
    assert not second["changed"] and second["changed_files"] == []


@pytest.mark.skipif(not os.path.exists(PLAYBOOK), reason="ansible-playbook is not installed beside this Python")
def test_action_missing_source(collections_path, tmp_path):
    task = {MODULE: {"files": [{"src": str(tmp_path / "not-yet.crt"), "dest": str(tmp_path / "out.crt"), "services": ["etcd"]},
                               {"dest": str(tmp_path / "x.txt"), "content": "x"}]}}
    checked = play(collections_path, tmp_path, task, "--check")
    assert checked["changed"] and not checked.get("failed"), checked
    assert [item["changes"] for item in checked["files"]] == [["source_pending"], ["created"]]
    assert checked["services_changed"] == ["etcd"] and not (tmp_path / "x.txt").exists()
    failed = play(collections_path, tmp_path, task)
    assert failed["failed"] and f"src {tmp_path / 'not-yet.crt'} does not exist" in failed["msg"]
    assert not (tmp_path / "x.txt").exists()


@pytest.mark.skipif(not os.path.exists(PLAYBOOK), reason="ansible-playbook is not installed beside this Python")
def test_a_block_written_by_blockinfile_is_taken_over_without_a_change(collections_path, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost")  # no newline at the end
    marker = "# {mark} kubeforge cluster hosts"
    block = "10.0.0.11 cp1\n10.0.0.21 w1\n"
    written = play(collections_path, tmp_path, {"ansible.builtin.blockinfile": {"path": str(hosts), "marker": marker, "block": block}})
    assert written["changed"], written
    by_blockinfile = hosts.read_bytes()
    task = {MODULE: {"files": [{"dest": str(hosts), "marker": marker, "block": block, "mode": "0644", "diff": True}]}}
    kept = play(collections_path, tmp_path, task)
    assert not kept["changed"] and hosts.read_bytes() == by_blockinfile, kept
    task[MODULE]["files"][0]["block"] = "10.0.0.11 cp1\n10.0.0.22 w2\n"
    changed = play(collections_path, tmp_path, task, "--diff")
    assert changed["changed"] and changed["changed_files"] == [str(hosts)]
    assert hosts.read_text() == by_blockinfile.decode().replace("10.0.0.21 w1", "10.0.0.22 w2")

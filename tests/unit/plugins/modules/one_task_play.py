# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs one task of this collection through ansible-playbook on this machine (localhost plays the host), so
that a module and its action plugin are tested together, as a play runs them."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def collections_dir(root) -> str:
    """``root`` holding this checkout as kubeforge.cluster, and an empty ansible.cfg (made once)."""
    namespace = os.path.join(root, "ansible_collections", "kubeforge")
    if not os.path.exists(namespace):
        os.makedirs(namespace)
        os.symlink(REPO, os.path.join(namespace, "cluster"))
        with open(os.path.join(root, "ansible.cfg"), "w", encoding="utf-8") as handle:
            handle.write("[defaults]\n")
    return str(root)


def run_task(task: dict, workdir, collections: str, *flags: str) -> dict:
    """The task's result on localhost, with the whole output under ``_stdout``."""
    playbook = os.path.join(workdir, "play.yml")
    with open(playbook, "w", encoding="utf-8") as handle:
        yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}], handle)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_CONFIG=os.path.join(collections, "ansible.cfg"))
    done = subprocess.run([PLAYBOOK, playbook, *flags], env=env, capture_output=True, text=True, check=False, timeout=120)
    output, _end = json.JSONDecoder().raw_decode(done.stdout[done.stdout.index("{"):])
    result = output["plays"][0]["tasks"][0]["hosts"]["localhost"]
    result["_stdout"] = done.stdout + done.stderr
    return result


def module_runs(output: str, module: str) -> int:
    """How many times a -vvv run sent ``module`` (its short name) to the host: the local connection, without pipelining."""
    return len(re.findall(rf"PUT \S+ TO \S+/AnsiballZ_{module}\.py", output))

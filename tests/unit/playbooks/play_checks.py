# SPDX-License-Identifier: GPL-3.0-or-later
"""What the tests of a day-2 playbook's refusals share: the playbook's checks run alone on an inventory, and a small
cluster's inventory to run them on."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
# Only the checks run (tagged always); the preflight, tested on its own, is left without hosts.
SKIP_PREFLIGHT = {"kubeforge_preflight_ran": True}


def run_checks(playbook: str, inventory: str, extra_vars: dict, *args: str) -> subprocess.CompletedProcess:
    """The playbook's checks run alone (--tags always) on an inventory, with extra_vars."""
    env = {**os.environ, "ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    command = [PLAYBOOK, playbook, "-i", inventory, "--tags", "always", "-e", json.dumps({**SKIP_PREFLIGHT, **extra_vars}), *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def run_check(playbook: str, inventory: str, extra_vars: dict, *args: str) -> str:
    """The message of the playbook's check on an inventory (its lines joined), "" when it passed. The message starts
    with the playbook's file name (reboot.yml: ...)."""
    run = run_checks(playbook, inventory, extra_vars, *args)
    out = " ".join((run.stdout + run.stderr).split())
    messages = re.findall(rf"msg: '({re.escape(os.path.basename(playbook))}: .*?)'", out)
    assert (run.returncode != 0) == bool(messages), out
    return messages[0] if messages else ""


def small_cluster(tmp_path, etcd: list[str], control_plane: list[str], nodes: list[str]) -> str:
    """hosts.yml of a cluster with these etcd members, control-plane hosts and nodes (kubespray's groups)."""
    hosts = sorted(set(etcd + control_plane + nodes))
    inventory = {"all": {"hosts": {name: {"ansible_host": f"192.0.2.{index + 10}"} for index, name in enumerate(hosts)},
                         "children": {"etcd": {"hosts": dict.fromkeys(etcd)},
                                      "kube_control_plane": {"hosts": dict.fromkeys(control_plane)},
                                      "kube_node": {"hosts": dict.fromkeys(nodes)},
                                      "k8s_cluster": {"children": {"kube_control_plane": None, "kube_node": None}}}}}
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
    return str(path)


def load_plays(playbook: str) -> list[dict]:
    with open(os.path.join(REPO, playbook), encoding="utf-8") as handle:
        return yaml.safe_load(handle)

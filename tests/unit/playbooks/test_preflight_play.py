# SPDX-License-Identifier: GPL-3.0-or-later
"""The preflight play as operators run it: site.yml --tags preflight, on the controller only."""
from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def preflight(inventory: str) -> subprocess.CompletedProcess:
    # No connection variables: a task that tried to reach a host would fail to resolve it.
    env = {**os.environ, "ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run([PLAYBOOK, "site.yml", "-i", inventory, "--tags", "preflight"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_sample_inventory_passes():
    run = preflight("inventory/sample")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Preflight passed for 5 hosts" in run.stdout or "ok: [master1 -> localhost]" in run.stdout


def test_broken_inventory_fails_with_every_problem_in_one_message():
    run = preflight("tests/fixtures/inventory/broken")
    assert run.returncode != 0
    out = run.stdout + run.stderr
    assert "Preflight found 5 problems; nothing was changed on any host" in out, out
    for expected in (
        "group 'etcd' has 2 hosts",
        "kube_pod_cidr 10.96.0.0/16 overlaps kube_service_cidr 10.96.0.0/12",
        "kube_cluster_dns_ip 10.200.0.10 is not a usable address of kube_service_cidr 10.96.0.0/12",
        "3 control-plane hosts but no kube_apiserver_lb_address",
        "kube_apiserver_extra_args: kube-apiserver 1.36 has no flag --insecure-port",
    ):
        assert expected in out, expected
    # Preflight stops the run: no later play started.
    assert "PLAY [Prepare" not in out

# SPDX-License-Identifier: GPL-3.0-or-later
"""The trust check of the preflight play and recover_credentials.yml as operators run them, this machine
standing in for every host (local connection; it holds no cluster files). The comparison itself is
tested in tests/unit/plugins/module_utils/_pki/test_trust.py; this is the wiring: the read on the hosts,
the registered results reaching the check, the refusal stopping the run (in check mode too), the escape
hatch only from -e, and recover running without the check it repairs."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._pki.trust import REINITIALISE_VAR

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
         "kube_proxy_mode": "iptables", "kubelet_fail_cgroup_v1": False}
SILENT = "master1, master2, master3 did not answer (unreachable, or left out by --limit) while the controller lacks cluster CA"

pytestmark = pytest.mark.skipif(not os.path.exists(PLAYBOOK), reason="needs ansible-playbook")


@pytest.fixture
def play(tmp_path):
    def run(path: str, extra_vars: dict, *args: str, inventory: str = "inventory/sample") -> tuple[int, str]:
        env = {**os.environ, "ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts")}
        variables = {**LOCAL, "kubeforge_credentials_dir": str(tmp_path / "credentials"), **extra_vars}
        done = subprocess.run([PLAYBOOK, path, "-i", inventory, "-e", json.dumps(variables), *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        return done.returncode, done.stdout + done.stderr
    return run


@pytest.mark.parametrize("mode", [[], ["--check"]], ids=["run", "check-mode"])
def test_a_controller_without_credentials_is_refused_when_the_control_plane_is_left_out(play, tmp_path, mode):
    code, out = play("site.yml", {}, "--tags", "preflight", "--limit", "worker1", *mode)
    assert code != 0 and SILENT in out, out
    assert "Nothing was changed on any host." in out and "playbooks/recover_credentials.yml" in out
    assert not (tmp_path / "credentials").exists()


def test_the_same_run_passes_when_every_host_is_read(play):
    code, out = play("site.yml", {}, "--tags", "preflight", "-v")
    assert code == 0, out
    assert "the controller's credentials match what the control-plane and etcd hosts hold" in out, out


def test_the_escape_hatch_from_the_command_line_goes_on_with_a_warning(play):
    code, out = play("site.yml", {REINITIALISE_VAR: True}, "--tags", "preflight", "--limit", "worker1")
    assert code == 0, out
    assert f"[WARNING]: {REINITIALISE_VAR} is set" in out and SILENT in out


def test_the_escape_hatch_in_the_inventory_is_ignored(play, tmp_path):
    inventory = tmp_path / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "group_vars" / "all" / "cluster.yml").symlink_to(os.path.join(REPO, "inventory", "sample", "group_vars", "all.yml"))
    (inventory / "group_vars" / "all" / "hatch.yml").write_text(f"{REINITIALISE_VAR}: true\n")
    (inventory / "hosts.yml").symlink_to(os.path.join(REPO, "inventory", "sample", "hosts.yml"))
    code, out = play("site.yml", {}, "--tags", "preflight", "--limit", "worker1", inventory=str(inventory / "hosts.yml"))
    assert code != 0 and SILENT in out, out


def test_recover_runs_without_the_check_and_refuses_what_it_cannot_read(play, tmp_path):
    # The preflight's check would refuse this run (see above); recover's own refusal is what stops it.
    code, out = play("playbooks/recover_credentials.yml", {}, "--limit", "worker1")
    assert code != 0, out
    assert "recover_credentials.yml refuses; nothing was written" in out
    assert "master1, master2, master3 did not answer: every control-plane and etcd host is read" in out, out
    assert SILENT not in out
    assert not (tmp_path / "credentials").exists()


def test_recover_finds_nothing_to_recover_on_hosts_that_hold_nothing(play, tmp_path):
    code, out = play("playbooks/recover_credentials.yml", {})
    assert code != 0, out
    assert "no host holds any of this cluster's CAs or service-account key: there is nothing to recover" in out, out
    assert not (tmp_path / "credentials").exists()

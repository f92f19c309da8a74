# SPDX-License-Identifier: GPL-3.0-or-later
"""The pki phase's controller side as operators run it (--tags pki_sign: no host is contacted): a fresh
PKI, then a second run that changes nothing, and check mode on a new cluster that writes nothing."""
from __future__ import annotations

import os
import re
import stat
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
COLLECTION = os.path.join(REPO, ".cache", "collections", "ansible_collections", "kubeforge", "cluster")

pytestmark = pytest.mark.skipif(not (os.path.exists(PLAYBOOK) and os.path.exists(COLLECTION)),
                                reason="needs ansible-playbook and `make collection`")


@pytest.fixture
def inventory(tmp_path):
    (tmp_path / "inv" / "group_vars" / "all").mkdir(parents=True)
    os.symlink(os.path.join(REPO, "inventory", "sample", "group_vars", "all.yml"), tmp_path / "inv" / "group_vars" / "all" / "cluster.yml")
    (tmp_path / "inv" / "group_vars" / "all" / "overrides.yml").write_text("kubelet_tls_mode: signed\n")
    hosts = {"all": {
        "hosts": {"m1": {"ansible_host": "192.168.56.11"}, "m2": {"ansible_host": "192.168.56.12"},
                  "m3": {"ansible_host": "192.168.56.13"}, "w1": {"ansible_host": "192.168.56.21"}},
        "children": {"etcd": {"hosts": {"m1": None, "m2": None, "m3": None}},
                     "kube_control_plane": {"hosts": {"m1": None, "m2": None, "m3": None}},
                     "kube_node": {"hosts": {"w1": None}},
                     "k8s_cluster": {"children": {"kube_control_plane": None, "kube_node": None}}},
    }}
    (tmp_path / "inv" / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return tmp_path / "inv" / "hosts.yml"


def sign(inventory, *flags) -> tuple[int, str]:
    env = {**os.environ, "ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CACHE_PLUGIN": "memory"}
    # The phase playbook runs the preflight first, which contacts the hosts: skipped here.
    done = subprocess.run([PLAYBOOK, "playbooks/phases/pki.yml", "-i", str(inventory), "--tags", "pki_sign", "--skip-tags", "preflight", *flags],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    return done.returncode, done.stdout + done.stderr


def changed(output: str) -> int:
    return sum(int(count) for count in re.findall(r"changed=(\d+)", output))


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_fresh_pki_then_nothing_to_change(inventory):
    credentials = inventory.parent / "credentials"
    code, out = sign(inventory)
    assert code == 0, out
    assert changed(out) == 3, out  # directories, certificates with the service-account key, kubeconfigs
    assert mode(credentials) == 0o700 and mode(credentials / "pki") == 0o700 and mode(credentials / "pki" / "etcd") == 0o700
    assert mode(credentials / "pki" / "ca.key") == 0o600 and mode(credentials / "pki" / "sa.key") == 0o600
    assert mode(credentials / "admin.kubeconfig") == 0o600 and mode(credentials / "pki" / "sa.pub") == 0o644
    assert mode(credentials / "kubelet-csr-approver.kubeconfig") == 0o600
    operator = yaml.safe_load((credentials / "admin.kubeconfig").read_text())
    assert operator["clusters"][0]["cluster"]["server"] == "https://192.168.56.10:6443"
    assert sorted(os.listdir(credentials / "kubeconfig")) == [
        "admin.kubeconfig", "controller-manager.kubeconfig", "kube-proxy.kubeconfig", "kubelet-csr-approver.kubeconfig",
        "kubelet-m1.kubeconfig", "kubelet-m2.kubeconfig",
        "kubelet-m3.kubeconfig", "kubelet-w1.kubeconfig", "scheduler.kubeconfig"]
    code, out = sign(inventory)
    assert code == 0 and changed(out) == 0, out


def test_check_mode_on_a_new_cluster_writes_nothing(inventory):
    code, out = sign(inventory, "--check")
    assert code == 0, out
    assert "the credentials directories do not exist yet" in out
    assert not (inventory.parent / "credentials").exists()

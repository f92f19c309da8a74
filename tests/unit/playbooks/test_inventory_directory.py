# SPDX-License-Identifier: GPL-3.0-or-later
"""An inventory given as a directory (`-i inventory/mycluster`) holds the controller's state the defaults keep there:
the credentials directory (inventory/sample/group_vars/all.yml), the etcd snapshots (etcd_controller_backup_dir) and
the artifacts lock (kubeforge_artifacts_lock_file). With this checkout's ansible.cfg, Ansible reads none as an
inventory source: an etcd snapshot read as one crashed the run, a key or a certificate gave warnings and could have
given hosts, and the lock gave a group "artifacts" with a warning per component."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
INVENTORY = os.path.join(os.path.dirname(sys.executable), "ansible-inventory")

pytestmark = pytest.mark.skipif(not os.path.exists(INVENTORY), reason="needs ansible-inventory beside this Python")


def listed(source: str, config: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": config, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CACHE_PLUGIN": "memory"}
    return subprocess.run([INVENTORY, "-i", source, "--list"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture()
def inventory_with_state(tmp_path) -> str:
    """inventory/sample with a credentials directory and an etcd snapshot beside hosts.yml, as a cluster has them."""
    directory = tmp_path / "mycluster"
    shutil.copytree(os.path.join(REPO, "inventory", "sample"), directory)
    credentials = directory / "credentials" / "ca"
    credentials.mkdir(parents=True)
    (credentials / "ca.key").write_text("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n")
    (directory / "credentials" / "hosts-seen").write_text("stray-host\n")
    backups = directory / "etcd-backups"
    backups.mkdir()
    # A bbolt file starts with its page header: binary, with NUL bytes and newlines in it.
    (backups / "etcd-20261206T001832Z-r911.db").write_bytes(b"\x00" * 16 + b"\xed\xda\x0c\xed\x02\x00\x00\x00\n'x y\n\x00z\n" * 8)
    (directory / "artifacts.lock.yml").write_text(
        "---\nartifacts:\n  etcd:\n    3.5.35:\n      linux/amd64:\n        sha256: 0123\n        files: {etcd: 4567}\n")
    return str(directory)


def test_the_state_beside_the_inventory_is_not_read_as_inventory(inventory_with_state):
    with_state = listed(inventory_with_state, os.path.join(REPO, "ansible.cfg"))
    plain = listed(os.path.join(REPO, "inventory", "sample"), os.path.join(REPO, "ansible.cfg"))
    assert with_state.returncode == 0, with_state.stderr
    assert "Unable to parse" not in with_state.stderr and "stray-host" not in with_state.stdout, with_state.stderr
    assert "Skipping unexpected key" not in with_state.stderr, with_state.stderr
    assert with_state.stdout == plain.stdout


def test_without_the_ignore_patterns_ansible_reads_the_state(inventory_with_state, tmp_path):
    """What the setting prevents: the same directory, read with the checkout's settings but for ignore_patterns."""
    config = tmp_path / "ansible.cfg"
    with open(os.path.join(REPO, "ansible.cfg")) as handle:
        config.write_text("".join(line for line in handle if not line.startswith("ignore_patterns")).replace(
            "collections_path = .cache/collections", f"collections_path = {os.path.join(REPO, '.cache', 'collections')}"))
    without = listed(inventory_with_state, str(config))
    assert without.returncode != 0 or "Unable to parse" in without.stderr or "stray-host" in without.stdout, without.stderr
    assert "Skipping unexpected key (etcd) in group (artifacts)" in without.stderr, without.stderr

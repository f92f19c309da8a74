# SPDX-License-Identifier: GPL-3.0-or-later
"""The maintenance and day-2 playbooks in check mode, on the converged cluster (site.yml's own check run is in
test_control_plane.py). An operator previews a change this way: each run must finish, and change nothing. Not a
service restarted, not a file on a host or the controller, not an etcd member, not a node cordoned, not a snapshot.
Last, site.yml in check mode on a host that was never converged: the preview ends, without failing, where the new
cluster's etcd would first start."""
from __future__ import annotations

import hashlib
import os

import pytest

from kubeforge_verify import (SERVICES, check_run_changes_nothing, credentials_dir, edited_inventory, etcd_client, host_state, inventory_file,
                              kubectl_json, lab_host, project_dir)

CONTROL_PLANE = {"site-cp1": "172.30.41.11", "site-cp2": "172.30.41.12", "site-cp3": "172.30.41.13"}
HOSTS = [*CONTROL_PLANE, "site-w1"]
SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A host of the scenario's network that site.yml never ran on: a new one-host cluster.
NEW, NEW_ADDRESS = "site-new1", "172.30.41.31"
# What these playbooks write on the hosts: configurations, units, certificates and keys, snapshots (etcd_backup_dir).
HOST_PATHS = ("/etc/kubernetes", "/etc/etcd", "/etc/nginx", "/etc/hosts", "/etc/systemd/system", "/var/lib/kubelet/pki",
              "/var/backups/etcd")


def controller_files() -> dict[str, str]:
    """sha256 of every file in the credentials directory and the controller's etcd snapshots (etcd_controller_backup_dir)."""
    found = {}
    for top in (credentials_dir(), os.path.join(os.path.dirname(inventory_file()), "etcd-backups")):
        for directory, _dirs, files in os.walk(top):
            for name in files:
                path = os.path.join(directory, name)
                with open(path, "rb") as handle:
                    found[path] = hashlib.sha256(handle.read()).hexdigest()
    return found


def cluster_state() -> dict:
    members, _revision = etcd_client([f"https://{address}:2379" for address in CONTROL_PLANE.values()]).member_list()
    return {
        "hosts": {host: host_state(host, SERVICES, HOST_PATHS) for host in HOSTS},
        "etcd members": sorted((member.name, member.is_learner) for member in members),
        "unschedulable nodes": sorted(node["metadata"]["name"] for node in kubectl_json("site-cp1", "get", "nodes")["items"]
                                      if node["spec"].get("unschedulable")),
        "controller files": controller_files(),
    }


@pytest.mark.parametrize("run", [
    pytest.param(("etcd_backup.yml",), id="etcd_backup"),
    pytest.param(("renew_certs.yml", "-e", "pki_reissue_all_enabled=true"), id="renew_certs, every certificate"),
    pytest.param(("rotate_encryption_key.yml",), id="rotate_encryption_key"),
    pytest.param(("remove_control_plane.yml", "-e", "remove_control_plane_hosts=site-cp3"), id="remove_control_plane"),
    pytest.param(("remove_nodes.yml", "-e", "remove_nodes_hosts=site-w1"), id="remove_nodes"),
])
def test_a_playbook_in_check_mode_finishes_and_changes_nothing(run):
    check_run_changes_nothing(inventory_file(), os.path.join(project_dir(), "playbooks", run[0]), *run[1:], state=cluster_state)


@pytest.fixture(scope="module")
def new_host():
    yield from lab_host("kubeforge-molecule-site", NEW, NEW_ADDRESS)


def only_the_new_host(inventory: dict) -> None:
    """The scenario's inventory, its hosts replaced by the new one in every group it needs (a one-host cluster)."""
    connection = next(iter(inventory["all"]["hosts"].values()))
    for group in ("all", "etcd", "kube_control_plane", "kube_node", "k8s_cluster"):
        inventory[group]["hosts"] = {NEW: {**connection, "kubeforge_node_ip": NEW_ADDRESS}}


def test_site_yml_in_check_mode_on_a_new_cluster_ends_at_etcds_first_start(new_host, tmp_path):
    """The run reports the phases before etcd's first start (prepare, the certificates it would create, etcd's files),
    then ends there, rc 0: every later phase needs the cluster it would start. Nothing on the host or the controller
    changes: not a file, not a unit, no credentials directory."""
    controller = tmp_path / "controller"
    new_cluster = (f"kubeforge_credentials_dir={controller}/credentials", f"kubeforge_artifacts_lock_file={controller}/artifacts.lock.yml",
                   f"kube_apiserver_lb_address={NEW_ADDRESS}")
    inventory = edited_inventory(str(tmp_path), SCENARIO, only_the_new_host)

    def state() -> dict:
        return {"host": host_state(new_host, SERVICES, HOST_PATHS), "controller files": sorted(p.name for p in tmp_path.glob("controller/**/*"))}

    output = check_run_changes_nothing(inventory, os.path.join(project_dir(), "site.yml"), *(arg for var in new_cluster for arg in ("-e", var)),
                                       state=state)
    assert "TASK [kubeforge.cluster.etcd : Write the first-start settings of a new cluster]" in output, output[-6000:]
    assert "Check mode ends here: etcd has never run on site-new1" in output, output[-6000:]
    later = output.split("Check mode ends here", 1)[1]
    assert "TASK [kubeforge.cluster.etcd : Start etcd" not in later and "TASK [kubeforge.cluster.control_plane" not in later, later[-6000:]
    assert "PLAY [CoreDNS - cluster DNS] ***" in later and later.count("skipping: no hosts matched") >= 8, later[-6000:]

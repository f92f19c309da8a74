# SPDX-License-Identifier: GPL-3.0-or-later
"""The maintenance and day-2 playbooks in check mode, on the converged cluster (site.yml's own check run is in
test_control_plane.py). An operator previews a change this way: each run must finish, and change nothing. Not a
service restarted, not a file on a host or the controller, not an etcd member, not a node cordoned, not a snapshot.
Last, site.yml in check mode on a host that was never converged: the preview ends, without failing, where the new
cluster's etcd would first start, or, after a first run that stopped after the etcd phase, its apiservers. There too,
a run of phases without the earlier ones they need is refused by the preflight, with or without --check: before any run,
and after one that stopped part way."""
from __future__ import annotations

import hashlib
import os
import re

import pytest

from kubeforge_verify import (SERVICES, check_run_changes_nothing, credentials_dir, edited_inventory, etcd_client, group_var, host_state,
                              inventory_file, kubectl_json, lab_host, playbook, playbook_refused, project_dir)

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
        "users' bindings": sorted(binding["metadata"]["name"] for binding in kubectl_json("site-cp1", "get", "clusterrolebindings")["items"]
                                  if binding["metadata"]["name"].startswith("kubeforge-user-")),
        "controller files": controller_files(),
    }


@pytest.mark.parametrize("run", [
    pytest.param(("etcd_backup.yml",), id="etcd_backup"),
    pytest.param(("renew_certs.yml", "-e", "pki_reissue_all_enabled=true"), id="renew_certs, every certificate"),
    pytest.param(("rotate_encryption_key.yml",), id="rotate_encryption_key"),
    pytest.param(("remove_control_plane.yml", "-e", "remove_control_plane_hosts=site-cp3"), id="remove_control_plane"),
    pytest.param(("remove_nodes.yml", "-e", "remove_nodes_hosts=site-w1"), id="remove_nodes"),
    pytest.param(("user_kubeconfig.yml", "-e", '{"user_kubeconfig_name": "check-mode-user", "user_kubeconfig_groups": ["developers"], '
                  '"user_kubeconfig_clusterrole": "view"}'), id="user_kubeconfig, a first user"),
    pytest.param(("recover_credentials.yml",), id="recover_credentials"),
    pytest.param(("cert_report.yml",), id="cert_report"),
    pytest.param(("reboot.yml", "-e", "reboot_hosts=all"), id="reboot, every host"),
    # 0: every member would give something back, so every step is previewed.
    pytest.param(("etcd_defrag.yml", "-e", "etcd_defrag_min_free_bytes=0"), id="etcd_defrag, every member"),
])
def test_a_playbook_in_check_mode_finishes_and_changes_nothing(run):
    check_run_changes_nothing(inventory_file(), os.path.join(project_dir(), "playbooks", run[0]), *run[1:], state=cluster_state)


def test_upgrade_refuses_a_batch_of_every_node_and_a_timeout_that_is_no_number_before_any_play_that_changes_a_host():
    """Both problems in one message, from the play that reads the versions. Unchecked, they would meet the run only
    after etcd and the control plane were upgraded: the first drain failing on its timeout, or every node drained at once."""
    output = playbook_refused(inventory_file(), os.path.join(project_dir(), "playbooks", "upgrade.yml"),
                              "-e", "upgrade_node_batch_size=100%", "-e", "upgrade_drain_timeout=soon")
    assert ("upgrade.yml: upgrade_node_batch_size 100% drains all 4 nodes at once, leaving none to run their pods: at most 3; "
            "upgrade_drain_timeout soon is not a number of seconds (300)") in output, output[-4000:]
    plays = re.findall(r"^PLAY \[(.*)\] \*", output, re.M)
    assert plays[-1] == "Upgrade - read the versions the hosts run and check the targets and the run's settings", plays


def test_runs_that_once_did_harm_before_they_failed_are_refused_before_any_host_changes():
    """Each once did harm before it failed, or without failing: rotate_encryption_key.yml --limit gave one apiserver a key
    the others lacked (Secrets it wrote were unreadable through them), upgrade.yml --limit upgraded a node's kubelet
    past the apiservers, etcd_restore.yml stopped every apiserver before it found the snapshot missing, and
    remove_control_plane.yml of the host the load balancer address names removed its etcd member and stopped its
    services, then failed to delete its Node object through that address."""
    before = cluster_state()
    for run, expected in (
            (("rotate_encryption_key.yml", "--limit", "site-cp1"), "run without --limit (site-cp1): every apiserver must hold the same keys"),
            (("upgrade.yml", "--limit", "site-w1"), "run without --limit (site-w1): the versions every host runs decide"),
            (("etcd_restore.yml", "--limit", "site-cp1"), "run without --limit (site-cp1): a restore stops every apiserver"),
            (("etcd_restore.yml", "-e", "etcd_restore_snapshot=/nonexistent/etcd.db"), "Set etcd_restore_snapshot to a snapshot file"),
            (("remove_control_plane.yml", "-e", "remove_control_plane_hosts=site-cp1"),
             f"the API is reached at site-cp1 (kube_apiserver_lb_address {CONTROL_PLANE['site-cp1']}, ")):
        output = playbook_refused(inventory_file(), os.path.join(project_dir(), "playbooks", run[0]), *run[1:])
        assert expected in output, output[-4000:]
    after = cluster_state()
    assert [part for part in before if after.get(part) != before[part]] == []


def test_a_playbook_that_installs_the_versions_refuses_other_versions_than_the_hosts_run():
    """site.yml with another kube_version upgraded a lab cluster in place (no drain, no snapshot, no version policy);
    only upgrade.yml changes versions. The preflight reads the versions the hosts' programs link."""
    kube, etcd = group_var(SCENARIO, "kube_version"), group_var(SCENARIO, "etcd_version")
    before = cluster_state()
    for run, expected in (
            (("site.yml", "-e", "kube_version=1.37.2"), f"kube_version is 1.37.2, but {', '.join(HOSTS)} run {kube}: "),
            (("playbooks/renew_certs.yml", "-e", "etcd_version=3.6.16"), f"etcd_version is 3.6.16, but {', '.join(CONTROL_PLANE)} run {etcd}: ")):
        output = " ".join(playbook_refused(inventory_file(), os.path.join(project_dir(), run[0]), *run[1:]).split())
        assert expected + "this playbook would install" in output and "Change versions with playbooks/upgrade.yml" in output, output[-4000:]
    assert [part for part in before if cluster_state().get(part) != before[part]] == []


def only_the_new_host(inventory: dict) -> None:
    """The scenario's inventory, its hosts replaced by the new one in every group it needs (a one-host cluster)."""
    connection = next(iter(inventory["all"]["hosts"].values()))
    for group in ("all", "etcd", "kube_control_plane", "kube_node", "k8s_cluster"):
        inventory[group]["hosts"] = {NEW: {**connection, "kubeforge_node_ip": NEW_ADDRESS}}


@pytest.fixture(scope="module")
def new_host():
    yield from lab_host("kubeforge-molecule-site", NEW, NEW_ADDRESS)


@pytest.fixture(scope="module")
def new_cluster(new_host, tmp_path_factory):
    """A one-host cluster that site.yml never ran on: (its inventory, its state, the -e arguments giving it its own
    controller files and API endpoint). Its state: the host's services and files, and the controller's files."""
    directory = tmp_path_factory.mktemp("new-cluster")
    controller = directory / "controller"
    settings = (f"kubeforge_credentials_dir={controller}/credentials", f"kubeforge_artifacts_lock_file={controller}/artifacts.lock.yml",
                f"kube_apiserver_lb_address={NEW_ADDRESS}")

    def state() -> dict:
        return {"host": host_state(new_host, SERVICES, HOST_PATHS), "controller files": sorted(str(path) for path in controller.glob("**/*"))}

    return edited_inventory(str(directory), SCENARIO, only_the_new_host), state, [arg for setting in settings for arg in ("-e", setting)]


def check_run_ends_early(new_cluster, why: str) -> str:
    """site.yml --check on the new cluster: it finishes, changes nothing, says ``why`` it ends, and runs no later task;
    its output up to the end."""
    inventory, state, settings = new_cluster
    output = check_run_changes_nothing(inventory, os.path.join(project_dir(), "site.yml"), *settings, state=state)
    assert f"Check mode ends here: {why}" in output, output[-6000:]
    shown, later = output.split("Check mode ends here", 1)
    tasks = [task.split(" : ")[-1] for task in re.findall(r"^TASK \[(.+)\] \*", later, flags=re.MULTILINE)]
    assert tasks == ["Leave every host out of the later phases of this run", "End the play"], later[-6000:]
    assert "PLAY [CoreDNS - cluster DNS] ***" in later and later.count("skipping: no hosts matched") >= 8, later[-6000:]
    return shown


def test_site_yml_in_check_mode_on_a_new_cluster_ends_at_etcds_first_start(new_cluster):
    """The run reports the phases before etcd's first start (prepare, the certificates it would create, etcd's files),
    then ends there, rc 0: every later phase needs the cluster it would start. Nothing on the host or the controller
    changes: not a file, not a unit, no credentials directory."""
    shown = check_run_ends_early(new_cluster, f"etcd has never run on {NEW}")
    assert "TASK [kubeforge.cluster.etcd : Write the first-start settings of a new cluster]" in shown, shown[-6000:]


@pytest.mark.parametrize("run", [
    pytest.param(("site.yml", "--tags", "control_plane"), id="site.yml --tags control_plane"),
    pytest.param(("site.yml", "--check", "--tags", "kubelet_bootstrap,flannel"), id="site.yml --check --tags kubelet_bootstrap,flannel"),
    pytest.param(("playbooks/phases/coredns.yml",), id="the coredns phase playbook"),
])
def test_on_a_new_cluster_phases_without_the_phases_they_need_are_refused_before_any_host_changes(new_cluster, run):
    """Without the refusal, site.yml --tags control_plane installed and started an apiserver with no certificate and no
    etcd, and failed a minute later; the API phases failed on the admin kubeconfig that no run had written."""
    inventory, state, settings = new_cluster
    before = state()
    output = playbook_refused(inventory, os.path.join(project_dir(), run[0]), *settings, *run[1:])
    assert "Preflight found 1 problem; nothing was changed on any host" in output, output[-6000:]
    assert "the phases this run selects need earlier ones it leaves out" in output, output[-6000:]
    assert state() == before


def test_on_a_new_cluster_a_phase_that_needs_no_earlier_one_is_previewed(new_cluster):
    """The container runtime needs nothing that the pki phase makes: its preview runs to the end, and changes nothing."""
    inventory, state, settings = new_cluster
    output = check_run_changes_nothing(inventory, os.path.join(project_dir(), "site.yml"), *settings, "--tags", "container_runtime", state=state)
    assert "TASK [kubeforge.cluster.container_runtime : Import into containerd the images" in output, output[-6000:]


def refused_as_not_run(new_cluster, run, not_run: str) -> None:
    """``run`` on the new cluster is refused by the preflight, which says the phase ``not_run`` has not run on it; nothing
    changes on the host or the controller."""
    inventory, state, settings = new_cluster
    before = state()
    output = playbook_refused(inventory, os.path.join(project_dir(), run[0]), *settings, *run[1:])
    assert "Preflight found 1 problem; nothing was changed on any host" in output, output[-6000:]
    assert f"{not_run} there)" in output, output[-6000:]
    assert state() == before


def test_after_a_first_run_that_stopped_after_pki_a_phase_that_needs_etcd_is_refused(new_cluster):
    """The controller holds the new cluster's CAs now, but its etcd never ran: without the refusal, site.yml --tags
    control_plane started an apiserver with no etcd, and failed a minute later."""
    inventory, _state, settings = new_cluster
    playbook(inventory, os.path.join(project_dir(), "site.yml"), *settings, "--tags", "prepare,pki")
    refused_as_not_run(new_cluster, ("site.yml", "--tags", "control_plane"), f"etcd has not run on {NEW} (no /etc/systemd/system/etcd.service")


def test_site_yml_in_check_mode_after_a_first_run_that_stopped_after_etcd_ends_at_the_apiservers_first_start(new_cluster):
    """A first run that stopped after the etcd phase: the preview goes through etcd and the HA endpoint, and ends where
    the apiservers would first start."""
    inventory, _state, settings = new_cluster
    playbook(inventory, os.path.join(project_dir(), "site.yml"), *settings, "--tags", "prepare,pki,etcd")
    shown = check_run_ends_early(new_cluster, f"no apiserver has run on {NEW}")
    assert "TASK [kubeforge.cluster.ha_nginx" in shown, shown[-6000:]


@pytest.mark.parametrize("run", [
    pytest.param(("site.yml", "--tags", "kubelet_bootstrap"), id="site.yml --tags kubelet_bootstrap"),
    pytest.param(("playbooks/phases/ipvs.yml", "--check"), id="the ipvs phase playbook in check mode"),
])
def test_after_a_first_run_that_stopped_after_etcd_phases_that_need_the_apiservers_are_refused(new_cluster, run):
    refused_as_not_run(new_cluster, run, f"control_plane has not run on {NEW} (no /etc/systemd/system/kube-apiserver.service")

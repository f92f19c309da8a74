# SPDX-License-Identifier: GPL-3.0-or-later
"""add_nodes.yml and remove_nodes.yml: the hosts they refuse (every problem in one message, before
any host is touched), the node phases they run on the new hosts only, and the node state that
remove_nodes.yml moves aside covering what the node roles write, and the pod network devices it deletes."""
from __future__ import annotations

import fnmatch
import os
import re
import subprocess

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from play_checks import REPO, run_checks  # pylint: disable=import-error  # tests/unit/playbooks

NODE_PHASES = ["prepare", "pki", "ha_nginx", "container_runtime", "kubelet_bootstrap", "ipvs", "flannel"]
CLUSTER_OBJECT_PHASES = ["phases/kubelet_bootstrap.yml", "phases/flannel.yml"]


def load(path: str):
    with open(os.path.join(REPO, path), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def template(value, variables: dict):
    """value as Ansible templates it with variables."""
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(value))


def run_check(playbook: str, extra_vars: dict, *args: str) -> subprocess.CompletedProcess:
    """The playbook's checks alone on the sample inventory; the preflight, tested on its own (test_preflight_play.py),
    is left without hosts, so that no host of the sample inventory is contacted."""
    return run_checks(playbook, "inventory/sample", extra_vars, *args)


@pytest.mark.parametrize("playbook, variable, group", [
    ("playbooks/add_nodes.yml", "add_nodes_hosts", "add_control_plane.yml"),
    ("playbooks/remove_nodes.yml", "remove_nodes_hosts", "remove_control_plane.yml"),
])
def test_hosts_that_are_not_workers_are_refused_with_every_problem_in_one_message(playbook, variable, group):
    run = run_check(playbook, {variable: "master1,worker1"}, "--limit", "worker1")
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert f"control-plane or etcd hosts (use {group}): master1" in out
    assert "run without --limit" in out
    assert re.search(r"control-plane or etcd hosts \(use [\w.]+\): ([^;\"\n]*)", out).group(1) == "master1"


@pytest.mark.parametrize("playbook, variable", [("playbooks/add_nodes.yml", "add_nodes_hosts"),
                                                ("playbooks/remove_nodes.yml", "remove_nodes_hosts")])
def test_the_hosts_must_be_named(playbook, variable):
    run = run_check(playbook, {})
    assert run.returncode != 0
    assert f"-e {variable}=HOST[,HOST...]" in run.stdout + run.stderr


def test_a_worker_passes_the_check():
    """worker2 is a fine host to add: with --limit, the limit is the only problem named."""
    run = run_check("playbooks/add_nodes.yml", {"add_nodes_hosts": "worker2"}, "--limit", "worker1")
    assert "run without --limit" in run.stdout  # the check sees worker2 as fine, only the limit is refused
    assert "not in the kube_node group" not in run.stdout and "control-plane" not in run.stdout


def test_add_nodes_runs_the_node_phases_of_site_on_the_new_hosts_only():
    """Every node phase of site.yml, in its order; the ha_nginx and ipvs phases' files go with the containerd and kubelet
    phases' writes (next test)."""
    site = [play["ansible.builtin.import_playbook"] for play in load("site.yml") if "ansible.builtin.import_playbook" in play]
    imports = [play for play in load("playbooks/add_nodes.yml") if "ansible.builtin.import_playbook" in play][1:]
    phases = [phase for phase in NODE_PHASES if phase not in ("ha_nginx", "ipvs")]
    assert [play["ansible.builtin.import_playbook"] for play in imports] == [f"phases/{phase}.yml" for phase in phases]
    assert [f"playbooks/{play['ansible.builtin.import_playbook']}" for play in imports] == [p for p in site if p.split("/")[-1][:-4] in phases]
    for play in imports:
        # The cluster-wide objects (TLS bootstrap RBAC, flannel's DaemonSet) are site.yml's: adding a node changes none.
        settled = {"kubeforge_apply_cluster_objects": False} if play["ansible.builtin.import_playbook"] in CLUSTER_OBJECT_PHASES else {}
        deferred = ({"kubelet_bootstrap_wait_for_approval": False, "kubelet_bootstrap_also_files": "{{ ipvs_node_files }}",
                     "kubelet_bootstrap_also_running_units": ["kube-proxy"]}
                    if play["ansible.builtin.import_playbook"] == "phases/kubelet_bootstrap.yml" else {})
        early = ({"container_runtime_also_install": play["vars"].get("container_runtime_also_install"),
                  "container_runtime_also_files": "{{ ha_nginx_node_files }}", "container_runtime_also_running_units": "{{ ha_nginx_node_units }}",
                  "container_runtime_also_reload_units": "{{ ha_nginx_node_units }}"}
                 if play["ansible.builtin.import_playbook"] == "phases/container_runtime.yml" else {})
        # The new hosts write their membership files in their prepare phase, as site.yml does.
        assert play["vars"] == {"kubeforge_preflight_ran": True, "kubeforge_phase_hosts": "kubeforge_adding",
                                **settled, **deferred, **early}
    for phase in NODE_PHASES:
        hosts = load(f"playbooks/phases/{phase}.yml")[1]["hosts"]
        assert hosts.endswith(" | kubeforge.cluster.phase_hosts(kubeforge_phase_hosts | default('all'), groups) }}"), (phase, hosts)


def test_add_nodes_writes_nginx_with_containerd_and_kube_proxy_with_the_kubelet_as_their_roles_define_them():
    """The new node's nginx and kube-proxy files are their roles' own (one definition each: ha_nginx_files, ipvs_files),
    rendered in those roles, and written by containerd's and the kubelet's writes, which start nginx and kube-proxy;
    nginx is checked to listen before the kubelet starts."""
    plays = load("playbooks/add_nodes.yml")
    names = [play.get("ansible.builtin.import_playbook") or play["name"] for play in plays]
    handover = names.index("Add nodes - hand the new nodes' load balancer and kube-proxy files to the containerd and kubelet writes")
    assert names[handover + 1:handover + 4] == ["phases/container_runtime.yml", "Add nodes - the load balancer listens", "phases/kubelet_bootstrap.yml"]
    assert plays[handover]["hosts"] == plays[handover + 2]["hosts"] == "k8s_cluster:&kubeforge_adding"
    assert [task["ansible.builtin.import_role"] for task in plays[handover]["tasks"]] == [
        {"name": "kubeforge.cluster.ha_nginx", "tasks_from": "node_files"}, {"name": "kubeforge.cluster.ipvs", "tasks_from": "node_files"}]
    assert [task["ansible.builtin.import_role"] for task in plays[handover + 2]["tasks"]] == [
        {"name": "kubeforge.cluster.ha_nginx", "tasks_from": "listening"}]
    nginx = load("roles/ha_nginx/tasks/node_files.yml")[0]["ansible.builtin.set_fact"]
    assert nginx == {"ha_nginx_node_files": "{{ ha_nginx_files if ha_nginx_serves_endpoint | bool else [] }}",
                     "ha_nginx_node_units": "{{ ['nginx'] if ha_nginx_serves_endpoint | bool else [] }}"}
    block = load("roles/ha_nginx/tasks/main.yml")[0]["block"]
    assert block[0]["kubeforge.cluster.file_bundle"]["files"] == "{{ ha_nginx_files }}"
    assert block[1] == {"name": "Check the load balancer listens on the API endpoint's port, once nginx started or reloaded",
                        "ansible.builtin.import_tasks": "listening.yml", "when": "ha_nginx_written.unit_changes | length > 0"}
    containerd = next(task for task in load("roles/container_runtime/tasks/main.yml") if task["name"].startswith("Write the containerd"))
    assert containerd["kubeforge.cluster.file_bundle"]["files"] == "{{ container_runtime_files + container_runtime_also_files }}"
    assert containerd["kubeforge.cluster.file_bundle"]["running_units"] == "{{ container_runtime_also_running_units + ['containerd'] }}"
    assert containerd["kubeforge.cluster.file_bundle"]["reload_units"] == "{{ container_runtime_also_reload_units }}"
    handed = load("roles/ipvs/tasks/node_files.yml")[0]["ansible.builtin.set_fact"]
    assert handed == {"ipvs_node_artifacts": "{{ ipvs_artifacts }}", "ipvs_node_files": "{{ ipvs_files }}"}
    write = next(task for task in load("roles/ipvs/tasks/main.yml") if task["name"].startswith("Write the kube-proxy"))
    assert write["kubeforge.cluster.file_bundle"]["files"] == "{{ ipvs_files }}"
    assert all(entry["services"] == ["kube-proxy"] for entry in load("roles/ipvs/vars/main.yml")["ipvs_files"])
    kubelet = next(task for task in load("roles/kubelet_bootstrap/tasks/main.yml") if task["name"].startswith("Write the kubelet's"))
    assert kubelet["kubeforge.cluster.file_bundle"]["files"].rstrip().endswith("+ kubelet_bootstrap_also_files }}")
    assert kubelet["kubeforge.cluster.file_bundle"]["running_units"] == (
        "{{ ['kubelet'] + kubelet_bootstrap_approver_units + kubelet_bootstrap_also_running_units }}")
    defaults = load("roles/kubelet_bootstrap/defaults/main.yml")
    assert defaults["kubelet_bootstrap_also_files"] == [] and defaults["kubelet_bootstrap_also_running_units"] == []


def test_add_nodes_waits_for_the_serving_certificates_once_every_new_kubelet_runs():
    """The kubelet phase starts the new kubelets (and kube-proxy) without waiting; the approval play comes between
    the kubelet and flannel phases (after the hosts that stay learn the new addresses), on the new hosts, and runs the
    role's approval task alone."""
    plays = load("playbooks/add_nodes.yml")
    names = [play.get("ansible.builtin.import_playbook") or play["name"] for play in plays]
    approval = names.index("Add nodes - approve the new kubelets' serving certificates")
    assert names[approval - 2:approval + 2] == ["phases/kubelet_bootstrap.yml", "Add nodes - the hosts that stay learn the new addresses",
                                                names[approval], "phases/flannel.yml"]
    assert plays[approval]["hosts"] == "k8s_cluster:&kubeforge_adding"
    assert [task["ansible.builtin.include_role"] for task in plays[approval]["tasks"]] == [
        {"name": "kubeforge.cluster.kubelet_bootstrap", "tasks_from": "approve"}]
    main = load("roles/kubelet_bootstrap/tasks/main.yml")
    assert next(task for task in main if task.get("ansible.builtin.import_tasks") == "approve.yml")["when"] == (
        "kubelet_bootstrap_wait_for_approval | bool")
    assert load("roles/kubelet_bootstrap/defaults/main.yml")["kubelet_bootstrap_wait_for_approval"] is True


def test_add_nodes_installs_the_kubelet_and_kube_proxy_with_containerd_as_their_roles_define_them():
    """One batch verifies the new node's binaries side by side; the entries are the kubelet_bootstrap and ipvs
    roles' own, so that the kubelet phase finds them verified (artifacts_verified_in_run) and installs nothing."""
    play = next(play for play in load("playbooks/add_nodes.yml") if play.get("ansible.builtin.import_playbook") == "phases/container_runtime.yml")
    own = {key: value for role in ("kubelet_bootstrap", "ipvs") for key, value in DataLoader().load_from_file(
        os.path.join(REPO, "roles", role, "vars", "main.yml"), cache="none", trusted_as_template=True).items()}
    assert [next(task for task in load(f"roles/{role}/tasks/main.yml") if task.get("ansible.builtin.include_role", {}).get("name")
                 == "kubeforge.cluster.artifacts")["vars"]["artifacts_list"] for role in ("kubelet_bootstrap", "ipvs")] == [
        "{{ kubelet_bootstrap_artifacts + kubelet_bootstrap_also_install }}", "{{ ipvs_artifacts }}"]
    # The kubelet's entry as its role writes it, kube-proxy's handed over by its role (ipvs_node_artifacts).
    variables = {**own, "kube_version": "1.36.4", "ipvs_node_artifacts": own["ipvs_artifacts"]}
    rendered = template(play["vars"]["container_runtime_also_install"], variables)
    assert rendered == template("{{ kubelet_bootstrap_artifacts + ipvs_artifacts }}", variables)
    assert [(entry["name"], entry["version"]) for entry in rendered] == [("kubelet", "1.36.4"), ("kube-proxy", "1.36.4")]
    install = next(task for task in load("roles/container_runtime/tasks/main.yml") if task["name"].startswith("Install containerd"))
    assert install["vars"]["artifacts_list"] == "{{ container_runtime_artifacts + container_runtime_also_install }}"
    assert load("roles/container_runtime/defaults/main.yml")["container_runtime_also_install"] == []
    assert not any("container_runtime_also_install" in (play.get("vars") or {}) for play in load("site.yml"))


def test_the_cluster_wide_objects_are_applied_unless_a_playbook_that_adds_hosts_says_they_are_in_place():
    applies = {"phases/kubelet_bootstrap.yml": ("roles/kubelet_bootstrap/tasks/main.yml", "Bind the TLS bootstrap roles"),
               "phases/flannel.yml": ("roles/flannel/tasks/main.yml", "Apply the flannel objects")}
    assert set(applies) == set(CLUSTER_OBJECT_PHASES)
    for path, name in applies.values():
        task = next(task for task in load(path) if task["name"].startswith(name))
        assert task["when"] == "kubeforge_apply_cluster_objects | default(true) | bool", path
    for playbook in ("add_nodes", "add_control_plane"):
        for play in load(f"playbooks/{playbook}.yml"):
            if play.get("ansible.builtin.import_playbook") in CLUSTER_OBJECT_PHASES:
                assert play["vars"]["kubeforge_apply_cluster_objects"] is False, (playbook, play["name"])
    assert not any("kubeforge_apply_cluster_objects" in (play.get("vars") or {}) for play in load("site.yml"))


def test_the_hosts_that_stay_only_learn_addresses():
    """The play on the hosts that stay runs the membership tasks (prepare's /etc/hosts and firewall, the
    approver's node list), nothing else; the remove playbooks leave the leaving hosts out of them."""
    for playbook in ("add_nodes", "add_control_plane", "remove_nodes", "remove_control_plane"):
        marker = "kubeforge_leaving" if playbook.startswith("remove") else "kubeforge_adding"
        stay = [play for play in load(f"playbooks/{playbook}.yml") if play.get("hosts") == f"k8s_cluster:etcd:!{marker}"]
        assert len(stay) == 1, playbook
        assert [task["ansible.builtin.import_tasks"] for task in stay[0]["tasks"]] == ["tasks/membership.yml"], playbook
        leaving = (stay[0]["tasks"][0].get("vars") or {}).get("kubeforge_hosts_leaving")
        assert leaving == ("{{ groups['kubeforge_leaving'] }}" if playbook.startswith("remove") else None), playbook
    # add_nodes.yml: the hosts that stay learn the new addresses once the new kubelets are started (a new node needs
    # nothing of it to become Ready), before the run waits for the new nodes.
    plays = load("playbooks/add_nodes.yml")
    names = [play.get("ansible.builtin.import_playbook") or play["name"] for play in plays]
    stay = names.index("Add nodes - the hosts that stay learn the new addresses")
    assert names.index("phases/kubelet_bootstrap.yml") < stay < names.index("phases/flannel.yml")
    prepare = load("roles/prepare/tasks/main.yml")
    assert next(task for task in prepare if task.get("ansible.builtin.include_tasks") == "membership.yml")["when"] == (
        "prepare_membership_enabled | bool")
    imported = [(task["ansible.builtin.import_role"]["name"], task["ansible.builtin.import_role"]["tasks_from"])
                for task in load("playbooks/tasks/membership.yml")]
    assert imported == [("kubeforge.cluster.kubelet_bootstrap", "approver_nodes"), ("kubeforge.cluster.prepare", "membership")]


def role_paths(role: str) -> list[str]:
    """The absolute host paths a role's vars name (files and directories it writes on a node)."""
    found = []
    for name, value in (load(f"roles/{role}/vars/main.yml") or {}).items():
        if isinstance(value, str) and value.startswith("/") and "{{" not in value:
            found.append((name, value))
    return found


def test_remove_nodes_moves_aside_what_the_node_roles_write():
    retire = next(task for task in load("playbooks/tasks/retire_host.yml") if "kubeforge.cluster.node_retire" in task)
    paths = retire["vars"]["retire_host_node_paths"]
    not_covered = []
    for role in ("kubelet_bootstrap", "ipvs"):
        for name, value in role_paths(role):
            # Units and programs are not the node's cluster state (stopped and disabled, not moved).
            if not value.startswith(("/etc/systemd/", "/usr/")) and not any(value == p or value.startswith(p + "/") for p in paths):
                not_covered.append(f"{name}={value}")
    cni = load("roles/container_runtime/vars/main.yml")["container_runtime_cni_conf_dir"]
    assert cni in paths
    assert not not_covered, not_covered


def test_remove_nodes_deletes_the_pod_network_devices_flannel_makes():
    retire = next(task for task in load("playbooks/tasks/retire_host.yml") if "kubeforge.cluster.node_retire" in task)
    links = retire["vars"]["retire_host_node_links"]
    flannel = load("roles/flannel/vars/main.yml")
    # The bridge plugin's default name, cni0, since flannel's CNI configuration names no other.
    assert [plugin for plugin in flannel["flannel_cni_conf"]["plugins"] if plugin["type"] == "flannel"][0]["delegate"].get("bridge") is None
    assert "cni0" in links
    # The vxlan backend's device, flannel.<VNI>, whatever the VNI.
    vni = load("roles/flannel/defaults/main.yml")["flannel_vxlan_vni"]
    assert "VNI" in flannel["flannel_net_conf"]["Backend"]
    assert [pattern for pattern in links if fnmatch.fnmatchcase(f"flannel.{vni}", pattern) and fnmatch.fnmatchcase("flannel.4096", pattern)]


def test_remove_control_plane_keeps_a_control_plane_and_an_etcd_member():
    run = run_check("playbooks/remove_control_plane.yml", {"remove_control_plane_hosts": "kube_control_plane,worker1"})
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "not in the kube_control_plane group: worker1" in out
    assert "no control-plane host would stay" in out and "no etcd member would stay" in out


@pytest.mark.parametrize("settings, named", [
    ({"kube_apiserver_lb_address": "192.168.56.11"}, "master1"),
    ({"kube_apiserver_endpoint": "https://master2:6443"}, "master2"),
])
def test_remove_control_plane_refuses_the_host_the_api_is_reached_at(settings, named):
    """The controller's kubeconfig reaches the API at the load balancer's address, the nodes at the endpoint."""
    run = run_check("playbooks/remove_control_plane.yml", {"remove_control_plane_hosts": "master1,master2", **settings})
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert set(re.findall(r"the API is reached at (\w+)", out)) == {named}, out


def test_remove_control_plane_takes_the_hosts_behind_a_load_balancer():
    """The sample's load balancer is none of the hosts: only the --limit is refused."""
    run = run_check("playbooks/remove_control_plane.yml", {"remove_control_plane_hosts": "master1"}, "--limit", "master2")
    out = run.stdout + run.stderr
    assert "run without --limit" in out
    assert "the API is reached" not in out


def test_add_control_plane_takes_control_plane_hosts_only():
    run = run_check("playbooks/add_control_plane.yml", {"add_control_plane_hosts": "worker1,master2"})
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert re.search(r"not in the kube_control_plane group: ([^;\"\n]*)", out).group(1) == "worker1"


def test_an_upgraded_node_is_uncordoned_once_it_is_ready():
    """upgrade.yml: after the kubelet and kube-proxy, one kube_nodes task waits for the node to be Ready and
    then uncordons it (also when an earlier run stopped after the drain); pods come back only to a Ready node."""
    plays = load("playbooks/upgrade.yml")
    [nodes] = [play for play in plays if any("Upgrade the kubelet" == task.get("name") for task in play.get("tasks", []))]
    names = [task["name"] for task in nodes["tasks"]]
    last = nodes["tasks"][-1]
    assert names.index("Upgrade kube-proxy") < names.index(last["name"])
    assert last["ansible.builtin.import_tasks"] == "tasks/uncordon_node.yml" and "when" not in last
    assert int(last["vars"]["uncordon_node_timeout"]) > 0


def test_the_node_plays_uncordon_a_node_only_once_it_is_ready():
    """tasks/uncordon_node.yml (upgrade.yml, reboot.yml): one kube_nodes call through the controller's admin
    kubeconfig waits for this host's node to be Ready, then uncordons it, within the play's timeout."""
    [uncordon] = load("playbooks/tasks/uncordon_node.yml")
    assert uncordon["kubeforge.cluster.kube_nodes"] == {
        "kubeconfig": "{{ kubeforge_credentials_dir }}/admin.kubeconfig", "names": ["{{ inventory_hostname }}"],
        "ready": True, "timeout": "{{ uncordon_node_timeout }}", "unschedulable": False}
    assert uncordon["delegate_to"] == "localhost"


def test_the_upgrade_puts_the_control_plane_binaries_on_the_hosts_before_anything_restarts():
    """upgrade.yml: the control_plane role's own binaries, at kube_version, go to the control-plane hosts before the
    etcd snapshot and phase, one host at a time, linked in a directory no unit runs and with no daemon: nothing a unit
    runs changes."""
    plays = load("playbooks/upgrade.yml")
    [stage] = [play for play in plays if any((task.get("ansible.builtin.include_role") or {}).get("tasks_from") == "stage"
                                             for task in play.get("tasks", []))]
    order = [play.get("ansible.builtin.import_playbook") or play["name"] for play in plays]
    snapshot = next(name for name in order if "snapshot" in name)
    assert stage["hosts"] == "kube_control_plane" and stage["serial"] == 1
    assert order.index(stage["name"]) < order.index(snapshot) < order.index("phases/etcd.yml") < order.index("phases/control_plane.yml")
    [task] = load("roles/control_plane/tasks/stage.yml")
    role_vars = load("roles/control_plane/vars/main.yml")
    variables = {"control_plane_artifacts": role_vars["control_plane_artifacts"],
                 "artifacts_install_dir": load("roles/artifacts/defaults/main.yml")["artifacts_install_dir"]}
    staged = template(task["vars"]["artifacts_list"], variables)
    assert [{key: value for key, value in entry.items() if key not in ("bin_dir", "daemons")} for entry in staged] == [
        {key: value for key, value in entry.items() if key != "daemons"} for entry in role_vars["control_plane_artifacts"]]
    assert {entry["bin_dir"] for entry in staged} == {"/opt/kubeforge/staged"}
    assert all(entry["daemons"] == [] for entry in staged)
    assert load("inventory/sample/group_vars/all.yml")["artifacts_bin_dir"] != "/opt/kubeforge/staged"


def test_the_upgrades_own_settings_are_defined_once_and_checked_before_any_play_that_changes_a_host():
    """upgrade.yml: upgrade_node_batch_size and upgrade_drain_timeout live in one vars file, read by the play that checks
    them with the versions (right after the preflight, before the first play that changes a host) and by the nodes'
    play, whose batches they set."""
    plays = load("playbooks/upgrade.yml")
    settings = load("playbooks/vars/upgrade.yml")
    assert settings == {"upgrade_node_batch_size": 1, "upgrade_drain_timeout": 300}
    [check] = [play for play in plays if any("ansible.builtin.assert" in task for task in play.get("tasks", []))]
    [nodes] = [play for play in plays if "serial" in play and play.get("hosts") == "k8s_cluster"]
    assert plays.index(check) == 1 and plays[0]["ansible.builtin.import_playbook"] == "preflight.yml"
    assert check["vars_files"] == nodes["vars_files"] == ["vars/upgrade.yml"]
    assert nodes["serial"] == "{{ upgrade_node_batch_size }}"
    assert not any(name in (play.get("vars") or {}) for play in plays for name in settings)
    [assertion] = [task for task in check["tasks"] if "ansible.builtin.assert" in task]
    expression = assertion["vars"]["upgrade_problems"]
    assert "node_batch_size=upgrade_node_batch_size" in expression and "drain_timeout=upgrade_drain_timeout" in expression
    assert "nodes=groups['k8s_cluster'] | length" in expression
    [drain] = [task for task in nodes["tasks"] if task.get("ansible.builtin.import_tasks") == "tasks/drain_node.yml"]
    assert drain["vars"]["drain_node_timeout"] == "{{ upgrade_drain_timeout }}"

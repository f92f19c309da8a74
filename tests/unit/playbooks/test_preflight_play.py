# SPDX-License-Identifier: GPL-3.0-or-later
"""The preflight play as operators run it: site.yml --tags preflight.

This machine stands in for every node (local connection): node_facts reads its kernel, and the
check on the controller sees those facts in every host's variables.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.kubeforge.cluster.plugins.module_utils._node_facts import NodeFactsBackend

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
# Settings whose host rules any machine passes: the other preflight checks run unchanged.
ANY_KERNEL = {"kube_proxy_mode": "iptables", "kubelet_fail_cgroup_v1": False}
SAMPLE_NODES = "master1, master2, master3, worker1, worker2"


@pytest.fixture
def preflight(tmp_path):
    def run(inventory: str, extra_vars: dict, *args: str, playbook: str = "site.yml") -> subprocess.CompletedProcess:
        # The facts cache of this run only, not the checkout's .cache/facts.
        env = {**os.environ, "ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts")}
        command = [PLAYBOOK, playbook, "-i", inventory, "--tags", "preflight", "-e", json.dumps(extra_vars), *args]
        return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    return run


def test_sample_inventory_passes(preflight):
    run = preflight("inventory/sample", {**LOCAL, **ANY_KERNEL}, "-v")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Preflight passed for 5 hosts" in run.stdout
    # Every node answered with its facts, and nothing changed.
    for name in SAMPLE_NODES.split(", "):
        assert f"ok: [{name}] =>" in run.stdout, name
    assert "changed: [" not in run.stdout


def test_broken_inventory_fails_with_every_problem_in_one_message(preflight):
    run = preflight("tests/fixtures/inventory/broken", {**LOCAL, **ANY_KERNEL})
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


def test_node_facts_reach_the_check(preflight):
    # The sample's own settings (ipvs, kubelet_fail_cgroup_v1: true) judged against this machine's kernel.
    # With a pod CIDR that holds 2 node subnets for 5 nodes: on this machine (cgroup v1, no IP_VS)
    # the acceptance's three refusals come in one message.
    facts = NodeFactsBackend("/").facts()
    run = preflight("inventory/sample", {**LOCAL, "kube_pod_cidr": "10.244.0.0/23"})
    out = run.stdout + run.stderr
    expected = ["kube_pod_cidr 10.244.0.0/23 gives 2 node subnets of /24, the cluster has 5 nodes"]
    if facts["cgroup_version"] == 1:
        expected.append(f"cgroup v1 on {SAMPLE_NODES}: kubelet 1.35 and later refuses to start on cgroup v1")
    if facts["ip_vs"] == "missing":
        expected.append(f"kube_proxy_mode ipvs but the kernel of {SAMPLE_NODES} has no IP_VS")
    assert run.returncode != 0
    assert f"Preflight found {len(expected)} problem" in out, out
    for text in expected:
        assert text in out, out
    assert "kube_proxy_mode ipvs is deprecated since Kubernetes 1.35 (KEP-5495)" in out, out


def inventory_with_a_broken_worker2(tmp_path) -> str:
    """The sample's hosts on this machine, but worker2's Python does not exist: node_facts fails there."""
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "group_vars" / "all.yml").symlink_to(os.path.join(REPO, "inventory", "sample", "group_vars", "all.yml"))
    hosts = {name: {"kubeforge_node_ip": f"192.168.56.{n}", **LOCAL} for name, n in
             (("master1", 11), ("master2", 12), ("master3", 13), ("worker1", 21), ("worker2", 22))}
    hosts["worker2"]["ansible_python_interpreter"] = "/nonexistent/python3"
    (inventory / "hosts.yml").write_text(json.dumps({"all": {"hosts": hosts, "children": {
        "etcd": {"hosts": {"master1": None, "master2": None, "master3": None}},
        "kube_control_plane": {"hosts": {"master1": None, "master2": None, "master3": None}},
        "kube_node": {"hosts": {"worker1": None, "worker2": None}},
        "k8s_cluster": {"children": {"kube_control_plane": None, "kube_node": None}}}}}))
    return str(inventory)


def test_a_node_without_facts_is_a_problem(preflight, tmp_path):
    # The check still runs and reports worker2.
    run = preflight(inventory_with_a_broken_worker2(tmp_path), ANY_KERNEL)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "Preflight found 1 problem; nothing was changed on any host" in out, out
    assert "no node facts for worker2 (the preflight play gathers them with kubeforge.cluster.node_facts" in out, out
    assert "PLAY [Prepare" not in out


def controller_credentials(tmp_path) -> str:
    """A credentials directory with every trust anchor: from a controller that lacks one, the trust check refuses a
    run that leaves out a control-plane or etcd host (tests/unit/playbooks/test_trust_play.py)."""
    credentials = tmp_path / "credentials"
    for path, label in (("pki/ca.crt", "CERTIFICATE"), ("pki/front-proxy-ca.crt", "CERTIFICATE"), ("pki/etcd/ca.crt", "CERTIFICATE"),
                        ("pki/sa.pub", "PUBLIC KEY")):
        (credentials / path).parent.mkdir(parents=True, exist_ok=True)
        (credentials / path).write_text(f"-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n")
    (credentials / "encryption-keys.json").write_text('{"keys": []}\n')
    return str(credentials)


def test_hosts_outside_limit_are_not_asked(preflight, tmp_path):
    # Only worker1 answers; the other nodes' kernels are not checked and not missed.
    run = preflight("inventory/sample", {**LOCAL, **ANY_KERNEL, "kubeforge_credentials_dir": controller_credentials(tmp_path)},
                    "--limit", "worker1", "-v")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Preflight passed for 5 hosts" in run.stdout
    assert "ok: [worker1] =>" in run.stdout and "ok: [master1] =>" not in run.stdout
    assert "no node facts" not in run.stdout + run.stderr


@pytest.mark.parametrize("playbook", ["playbooks/upgrade.yml", "playbooks/rotate_encryption_key.yml", "playbooks/etcd_restore.yml",
                                      "playbooks/etcd_migrate.yml"])
def test_a_playbook_that_needs_the_whole_cluster_refuses_a_limit_in_its_preflight(preflight, tmp_path, playbook):
    """Each names why (a kubelet newer than the apiservers, a key some apiservers lack, a restore of some members):
    the preflight refuses --limit with the other problems, before any later play."""
    with open(os.path.join(REPO, playbook), encoding="utf-8") as handle:
        [why] = [" ".join(play["vars"]["kubeforge_preflight_whole_cluster_why"].split()) for play in yaml.safe_load(handle)
                 if play.get("ansible.builtin.import_playbook") == "preflight.yml"]
    settings = {**LOCAL, **ANY_KERNEL, "kubeforge_credentials_dir": controller_credentials(tmp_path)}
    limited = preflight("inventory/sample", settings, "--limit", "worker1", playbook=playbook)
    out = limited.stdout + limited.stderr
    assert limited.returncode != 0, out
    assert f"run without --limit (worker1): {why}" in out, out
    assert "Preflight found 1 problem" in out, out
    whole = preflight("inventory/sample", settings, playbook=playbook)
    assert whole.returncode == 0, whole.stdout + whole.stderr


def test_extra_args_that_weaken_cis_items_are_refused_and_exceptions_printed(preflight):
    # The four examples, one of them through a null; the kubelet's read-only port accepted with a reason.
    weakening = {"kube_apiserver_extra_args": {"authorization-mode": "AlwaysAllow", "anonymous-auth": True, "profiling": None},
                 "kube_controller_manager_extra_args": {"leader-elect": False},
                 "kubelet_extra_args": {"read-only-port": 10255},
                 "kube_cis_exceptions": [{"component": "kubelet", "setting": "read-only-port", "reason": "legacy scraper until OPS-42"}]}
    run = preflight("inventory/sample", {**LOCAL, **ANY_KERNEL, **weakening})
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "Preflight found 4 problems; nothing was changed on any host" in out, out
    for expected in ("CIS 1.2.6-1.2.8: kube-apiserver --authorization-mode is AlwaysAllow (set by kube_apiserver_extra_args)",
                     "CIS 1.2.1: kube-apiserver --anonymous-auth is true (set by kube_apiserver_extra_args)",
                     "CIS 1.2.15: kube-apiserver --profiling is true (dropped by a null in kube_apiserver_extra_args",
                     "kubeforge: kube-controller-manager --leader-elect is false (set by kube_controller_manager_extra_args)"):
        assert expected in out, expected
    assert "PLAY [Prepare" not in out
    # With every weakening excepted the run goes on, and each reason is in its output.
    reasons = [{"component": "kube-apiserver", "setting": setting, "reason": f"lab case {setting}"}
               for setting in ("authorization-mode", "anonymous-auth", "profiling")]
    reasons.append({"component": "kube-controller-manager", "setting": "leader-elect", "reason": "lab case leader-elect"})
    weakening["kube_cis_exceptions"] += reasons
    run = preflight("inventory/sample", {**LOCAL, **ANY_KERNEL, **weakening}, "-v")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "Preflight passed for 5 hosts" in out
    for reason in ["legacy scraper until OPS-42"] + [entry["reason"] for entry in reasons]:
        assert f"Reason given in kube_cis_exceptions: {reason}" in " ".join(out.split()), reason


def test_a_day2_run_reads_the_kernel_of_the_nodes_it_names_and_the_trust_anchors(preflight, tmp_path):
    # add_nodes.yml names the new nodes: worker2 (whose Python is missing) is neither asked nor missed, the
    # control-plane hosts are read for their trust anchors, and worker1's kernel is checked.
    run = preflight(inventory_with_a_broken_worker2(tmp_path), {**ANY_KERNEL, "kubeforge_preflight_node_hosts": ["worker1"]}, "-v")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "Preflight passed for 5 hosts" in out
    assert "ok: [worker1] =>" in out and "ok: [master3] =>" in out and "skipping: [worker2]" in out
    assert "no node facts" not in out


def test_a_day2_run_may_read_the_trust_anchors_of_some_control_plane_hosts(preflight, tmp_path):
    # add_nodes.yml reads the first control-plane and etcd host: the others are not asked, and a controller that holds
    # its credentials is judged against the host read.
    settings = {**ANY_KERNEL, "kubeforge_preflight_node_hosts": ["worker1"], "kubeforge_preflight_trust_hosts_read": ["master1"],
                "kubeforge_credentials_dir": controller_credentials(tmp_path)}
    run = preflight(inventory_with_a_broken_worker2(tmp_path), settings, "-v")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "ok: [master1] =>" in out and "skipping: [master2]" in out and "skipping: [master3]" in out
    assert "hosts_read:\n    - master1\n" in out or "'hosts_read': ['master1']" in out or '"hosts_read": ["master1"]' in out, out


def linked_programs(directory, version: str) -> str:
    """A bin directory whose Kubernetes programs link into the artifacts layout at ``version`` (links not followed)."""
    directory.mkdir()
    for program in ("kube-apiserver", "kubelet", "kube-proxy"):
        (directory / program).symlink_to(f"/opt/kubeforge/{program}/v{version}/{program}")
    return str(directory)


def test_a_playbook_that_installs_the_versions_refuses_hosts_that_run_others_read_this_run(preflight, tmp_path):
    """add_nodes.yml installs kube_version: the hosts it reads (the new node, the first control-plane host; both this
    machine) linking 1.35.2 are refused, naming upgrade.yml. A playbook that installs nothing goes on. Versions cached
    from an earlier run are not judged where a run did not read them: they may predate an upgrade."""
    settings = {**LOCAL, **ANY_KERNEL, "artifacts_bin_dir": linked_programs(tmp_path / "bin-135", "1.35.2"),
                "kubeforge_credentials_dir": controller_credentials(tmp_path), "add_nodes_hosts": "worker2"}
    refused = preflight("inventory/sample", settings, playbook="playbooks/add_nodes.yml")
    out = " ".join((refused.stdout + refused.stderr).split())
    assert refused.returncode != 0, out
    assert "kube_version is 1.36.4, but master1, worker2 run 1.35.2: this playbook would install 1.36.4 there in place" in out, out
    assert "Change versions with playbooks/upgrade.yml" in out and "Preflight found 1 problem" in out, out
    backup = preflight("inventory/sample", settings, playbook="playbooks/etcd_backup.yml")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    # Every host's facts are now cached with 1.35.2 (etcd_backup.yml read them all). Read again with nothing linked,
    # add_nodes.yml reads only worker2 and master1: the others' cached versions are not judged.
    again = preflight("inventory/sample", {**settings, "artifacts_bin_dir": str(tmp_path)}, "-v", playbook="playbooks/add_nodes.yml")
    assert again.returncode == 0, again.stdout[-2500:] + again.stderr[-2500:]
    assert "skipping: [master2]" in again.stdout


def test_the_settings_of_every_role_are_checked_before_any_host_changes(preflight):
    # Wrong for the argument specs of roles that start late in site.yml: without the preflight's check, the run would
    # stop when the first of them starts, after the earlier phases changed the hosts, and name that one only.
    wrong = {"coredns_replicas": "two", "flannel_vxlan_port": "eighty", "container_runtime_registries": "mirror.example",
             "prepare_firewall": "perhaps"}
    run = preflight("inventory/sample", {**LOCAL, **ANY_KERNEL, **wrong})
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "Preflight found 4 problems; nothing was changed on any host" in out, out
    for expected in ("1. the container_runtime role's settings: argument 'container_runtime_registries' is of type str and we were "
                     "unable to convert to dict", "2. the coredns role's settings: argument 'coredns_replicas' is of type str",
                     "3. the flannel role's settings: argument 'flannel_vxlan_port' is of type str",
                     "4. the prepare role's settings: value of prepare_firewall must be one of: manage, disable, leave, got: perhaps"):
        assert expected in out, (expected, out)
    assert "PLAY [Prepare" not in out


def test_a_setting_set_apart_for_some_hosts_is_refused(preflight, tmp_path):
    # The sample's hosts and settings, with a kube_version for the workers' group, a pod CIDR for one host and a TLS
    # setting of the control_plane role for another: the checks would judge the cluster by master1's values and let
    # the workers' kubelets run ahead of the apiservers.
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "host_vars").mkdir()
    (inventory / "group_vars" / "all.yml").symlink_to(os.path.join(REPO, "inventory", "sample", "group_vars", "all.yml"))
    (inventory / "group_vars" / "kube_node.yml").write_text("kube_version: 1.37.2\n")
    (inventory / "host_vars" / "master3.yml").write_text("kube_pod_cidr: 10.32.0.0/16\n")
    (inventory / "host_vars" / "master2.yml").write_text("control_plane_tls_min_version: VersionTLS10\n")
    (inventory / "hosts.yml").symlink_to(os.path.join(REPO, "inventory", "sample", "hosts.yml"))
    run = preflight(str(inventory), {**LOCAL, **ANY_KERNEL})
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    kube_version = yaml.safe_load(open(os.path.join(REPO, "inventory", "sample", "group_vars", "all.yml"), encoding="utf-8"))["kube_version"]
    assert "Preflight found 3 problems" in out, out
    assert (f"kube_version is '{kube_version}' on master1 but '1.37.2' on worker1, worker2: kubeforge sets up every host alike, so "
            "this setting takes one value on every host") in out, out
    assert "kube_pod_cidr is '10.244.0.0/16' on master1 but '10.32.0.0/16' on master3" in out, out
    # A setting of a role the CIS check judges by master1's values: master2's apiserver would accept TLS 1.0.
    assert "control_plane_tls_min_version is unset on master1 but 'VersionTLS10' on master2" in out, out
    assert "PLAY [Prepare" not in out

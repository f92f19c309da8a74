# SPDX-License-Identifier: GPL-3.0-or-later
"""One case per preflight rule, each checked against a valid cluster that passes every rule."""
from __future__ import annotations

import copy
import hashlib
import os

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils import _artifacts, _phases, _preflight

CLUSTER = {
    "kube_version": "1.36.4",
    "etcd_version": "3.5.30",
    "kube_pod_cidr": "10.244.0.0/16",
    "kube_service_cidr": "10.96.0.0/12",
    "kube_cluster_dns_ip": "10.96.0.10",
    "kube_cluster_domain": "cluster.local",
    "kube_apiserver_port": 6443,
    "kube_apiserver_lb_address": "192.168.56.10",
    "kube_apiserver_lb_domain": "api.example.internal",
    "kube_apiserver_extra_sans": ["203.0.113.7", "k8s.example.com"],
    "etcd_even_members_enabled": False,
    "etcd_client_port": 2379,
    "artifacts_bin_dir": "/usr/local/bin",
    "kubeforge_artifacts_dir": "",
    "kubeforge_arch": "amd64",
    "kubeforge_artifacts_checksum_source": "published",
    "kubeforge_required_artifacts": ["etcd"],
    "kube_apiserver_extra_args": {"audit-log-maxage": "30"},
    "kube_controller_manager_extra_args": {},
    "kube_scheduler_extra_args": {},
    "kubelet_extra_args": {},
    "kube_proxy_extra_args": {},
    "kubelet_config_extra": {"imageGCHighThresholdPercent": 90, "evictionHard": {"nodefs.available": "5%"}},
    "kube_cis_exceptions": [],
    "kube_proxy_mode": "nftables",
    "kube_node_cidr_mask_size": 24,
    "kubelet_fail_cgroup_v1": True,
    "flannel_backend": "vxlan",
    "containerd_version": "2.4.2",
    "runc_version": "1.5.3",
    "cni_plugins_version": "1.10.0",
    "crictl_version": "1.37.0",
    "kubeforge_download_mirror": "",
    "kubeforge_host_kernel_managed": True,
    "kubeforge_credentials_dir": "/srv/kubeforge/mycluster/credentials",
    "kubeforge_artifacts_lock_file": "/srv/kubeforge/mycluster/artifacts.lock.yml",
    "kubeforge_artifacts_lock_update": False,
    "kube_apiserver_endpoint": "https://127.0.0.1:6443",
    "kubelet_tls_mode": "bootstrap",
}
HOSTS = {
    "master1": {"ip": "192.168.56.11"},
    "master2": {"ip": "192.168.56.12"},
    "master3": {"ip": "192.168.56.13"},
    "worker1": {"ip": "192.168.56.21"},
}
GROUPS = {
    "all": list(HOSTS),
    "etcd": ["master1", "master2", "master3"],
    "kube_control_plane": ["master1", "master2", "master3"],
    "kube_node": ["worker1"],
    "k8s_cluster": ["master1", "master2", "master3", "worker1"],
}


def run(cluster=None, hosts=None, groups=None):
    return _preflight.validate({**CLUSTER, **(cluster or {})}, hosts or copy.deepcopy(HOSTS), groups or copy.deepcopy(GROUPS))


def test_valid_cluster_has_no_problems():
    report = run()
    assert report.problems == []
    assert report.warnings == []


def hosts_with(key: str, settings: dict) -> dict:
    """HOSTS with {host: {setting: value}} under ``key``, as the preflight action hands over a host's settings: those it
    has apart (DIFFERING_SETTINGS_KEY), or the role settings the inventory sets (ROLE_SETTINGS_KEY)."""
    hosts = copy.deepcopy(HOSTS)
    for name, values in settings.items():
        hosts[name][key] = values
    return hosts


def with_settings_apart(apart: dict) -> dict:
    return hosts_with(_preflight.DIFFERING_SETTINGS_KEY, apart)


@pytest.mark.parametrize("apart, expected", [
    ({"worker1": {"kube_version": "1.37.2"}},
     ["kube_version is '1.36.4' on master1 but '1.37.2' on worker1: kubeforge sets up every host alike, so this setting takes "
      "one value on every host (set it in group_vars/all or with -e, not in host_vars or the vars of another group)"]),
    # The hosts that share a value are named together, each value once; each setting is one problem, in name order.
    ({"master3": {"kube_pod_cidr": "10.32.0.0/16", "kube_version": "1.37.2"}, "worker1": {"kube_version": "1.37.2"},
      "master2": {"kube_version": "1.36.5"}},
     ["kube_pod_cidr is '10.244.0.0/16' on master1 but '10.32.0.0/16' on master3: kubeforge sets up",
      "kube_version is '1.36.4' on master1 but '1.36.5' on master2; '1.37.2' on master3, worker1: kubeforge sets up"]),
    # A value that is not a string shows as JSON, and a long one is cut.
    ({"worker1": {"kubelet_config_extra": {"maxPods": 50}, "kubelet_fail_cgroup_v1": None}},
     ['kubelet_config_extra is {"evictionHard": {"nodefs.available": "5%"}, "imageGCHighThresholdPercent": 90} on master1 but '
      '{"maxPods": 50} on worker1', "kubelet_fail_cgroup_v1 is true on master1 but unset on worker1"]),
    ({"worker1": {"kubelet_extra_args": {f"node-label-{n}": "x" * 20 for n in range(5)}}},
     ['kubelet_extra_args is {} on master1 but {"node-label-0": "xxxxxxxxxxxxxxxxxxxx", "node-label-1": "xxxxxxxxxxxxxxxxxxx... '
      "on worker1"]),
])
def test_a_cluster_wide_setting_with_another_value_on_some_hosts_is_a_problem(apart, expected):
    report = run({_preflight.SETTINGS_HOST_KEY: "master1"}, with_settings_apart(apart))
    assert len(report.problems) == len(expected), report.problems
    for problem, start in zip(report.problems, expected):
        assert problem.startswith(start), problem


@pytest.mark.parametrize("reference, apart, expected", [
    # A role's setting the inventory leaves to the role's default on master1 (the action hands over master1's values).
    ({"control_plane_tls_min_version": None}, {"master2": {"control_plane_tls_min_version": "VersionTLS10"}},
     ["control_plane_tls_min_version is unset on master1 but 'VersionTLS10' on master2: kubeforge sets up every host alike"]),
    ({"kubelet_bootstrap_max_pods": 110}, {"worker1": {"kubelet_bootstrap_max_pods": 250}},
     ["kubelet_bootstrap_max_pods is 110 on master1 but 250 on worker1"]),
])
def test_a_role_setting_with_another_value_on_some_hosts_is_a_problem(reference, apart, expected):
    report = run({_preflight.SETTINGS_HOST_KEY: "master1", _preflight.SETTINGS_HOST_VALUES_KEY: reference}, with_settings_apart(apart))
    assert len(report.problems) == len(expected), report.problems
    for problem, start in zip(report.problems, expected):
        assert problem.startswith(start), problem


def test_the_settings_are_one_value_when_no_host_has_them_apart():
    assert run({_preflight.SETTINGS_HOST_KEY: "master1"}, with_settings_apart({"worker1": {}})).problems == []


# Two roles' options, as in their meta/argument_specs.yml.
ROLE_SPECS = {
    "coredns": {"coredns_replicas": {"type": "int", "description": "Replicas."},
                "coredns_upstream_nameservers": {"type": "list", "elements": "str", "description": "Upstreams."}},
    "prepare": {"prepare_firewall": {"type": "str", "choices": ["manage", "disable", "leave"], "description": "Firewall."}},
}


@pytest.mark.parametrize("settings, expected", [
    # On every host: the hosts are not named.
    ({name: {"coredns_replicas": "two"} for name in HOSTS},
     ["the coredns role's settings: argument 'coredns_replicas' is of type str and we were unable to convert to int: "
      "\"'two'\" cannot be converted to an int (roles/coredns/README.md lists them)"]),
    # On some hosts, each role's messages apart, in role order.
    ({"worker1": {"prepare_firewall": "perhaps", "coredns_upstream_nameservers": {"a": 1}}, "master2": {"prepare_firewall": "perhaps"}},
     ["the coredns role's settings on worker1: argument 'coredns_upstream_nameservers' is of type dict",
      "the prepare role's settings on master2, worker1: value of prepare_firewall must be one of: manage, disable, leave, got: perhaps"]),
])
def test_a_role_setting_its_argument_spec_refuses_is_a_problem(settings, expected):
    report = run({_preflight.ROLE_SPECS_KEY: ROLE_SPECS}, hosts_with(_preflight.ROLE_SETTINGS_KEY, settings))
    assert len(report.problems) == len(expected), report.problems
    for problem, start in zip(report.problems, expected):
        assert problem.startswith(start), problem


def test_role_settings_the_roles_accept_are_no_problem():
    # What the role's own argument check converts passes here too (an int as a string); a value the action could not
    # render, and a setting of no role, are left to the role.
    settings = {"master1": {"coredns_replicas": "3", "prepare_firewall": "leave"},
                "worker1": {"coredns_replicas": _preflight.UnrenderedValue("(cannot be rendered: ...)"), "other_setting": 1}}
    assert run({_preflight.ROLE_SPECS_KEY: ROLE_SPECS}, hosts_with(_preflight.ROLE_SETTINGS_KEY, settings)).problems == []


@pytest.mark.parametrize("change, expected", [
    ({"kube_pod_cidr": "10.96.0.0/16"}, "kube_pod_cidr 10.96.0.0/16 overlaps kube_service_cidr 10.96.0.0/12"),
    ({"kube_pod_cidr": "192.168.0.0/16"}, "kube_pod_cidr 192.168.0.0/16 contains the address 192.168.56.11 of host 'master1'"),
    ({"kube_service_cidr": "192.168.56.0/24", "kube_cluster_dns_ip": "192.168.56.250"},
     "kube_service_cidr 192.168.56.0/24 contains the address 192.168.56.21 of host 'worker1'"),
    ({"kube_pod_cidr": "10.244.0.1/16"}, "kube_pod_cidr '10.244.0.1/16' is not a valid CIDR"),
    ({"kube_service_cidr": "banana"}, "kube_service_cidr 'banana' is not a valid CIDR"),
    ({"kube_cluster_dns_ip": "10.200.0.10"}, "kube_cluster_dns_ip 10.200.0.10 is not a usable address of kube_service_cidr 10.96.0.0/12"),
    ({"kube_cluster_dns_ip": "10.96.0.1"}, "kube_cluster_dns_ip 10.96.0.1 is the first address of kube_service_cidr"),
    ({"kube_cluster_dns_ip": "ten"}, "kube_cluster_dns_ip 'ten' is not an IP address"),
    ({"kube_service_cidr": "10.96.0.0/31", "kube_cluster_dns_ip": "10.96.0.1"}, "kube_service_cidr 10.96.0.0/31 is too small"),
    ({"kube_apiserver_lb_address": ""}, "3 control-plane hosts but no kube_apiserver_lb_address"),
    ({"kube_apiserver_lb_address": "lb.example"}, "kube_apiserver_lb_address 'lb.example' is not an IP address"),
    ({"kube_apiserver_lb_domain": "Bad_Name"}, "kube_apiserver_lb_domain 'Bad_Name' is not a valid DNS name"),
    ({"kube_apiserver_port": 70000}, "kube_apiserver_port 70000 is not a TCP port number"),
    ({"kube_apiserver_port": "6443"}, "kube_apiserver_port '6443' is not a TCP port number"),
    ({"kube_cluster_domain": "-bad-"}, "kube_cluster_domain '-bad-' is not a valid DNS name"),
    ({"kube_apiserver_extra_sans": ["not a name!"]}, "kube_apiserver_extra_sans entry 'not a name!' is neither an IP address nor a DNS name"),
    ({"kube_version": "1.34.2"}, "kube_version '1.34.2' is not supported"),
    ({"kube_version": "v1.36.4"}, "kube_version 'v1.36.4' is not supported"),
    ({"etcd_version": "3.4.30"}, "etcd_version '3.4.30' is not supported"),
    ({"kube_apiserver_extra_args": {"insecure-port": "0"}}, "kube_apiserver_extra_args: kube-apiserver 1.36 has no flag --insecure-port"),
    ({"kube_controller_manager_extra_args": {"--concurrent-service-syncs": "2"}, "kube_version": "1.37.0"},
     "kube_controller_manager_extra_args: kube-controller-manager 1.37 has no flag --concurrent-service-syncs"),
    ({"kubelet_extra_args": {"kubelet-https": "true"}}, "kubelet_extra_args: kubelet 1.36 has no flag --kubelet-https"),
    ({"kube_proxy_extra_args": ["--v=2"]}, "kube_proxy_extra_args must be a mapping of flag name to value"),
    ({"kubelet_config_extra": ["imageGCHighThresholdPercent: 90"]},
     "kubelet_config_extra must be a mapping of KubeletConfiguration field to value"),
    ({"kubelet_config_extra": {"imageGCHighThreshold": 90}},
     "kubelet_config_extra: KubeletConfiguration 1.36 has no field imageGCHighThreshold (removed or misspelled)"),
    ({"kubelet_config_extra": {"authentication": {"anonymous": {"enabeld": False}}}},
     "kubelet_config_extra: KubeletConfiguration 1.36 has no field authentication.anonymous.enabeld (removed or misspelled)"),
    ({"kubelet_config_extra": {"kind": "KubeletConfiguration"}},
     "kubelet_config_extra: kind is the role's (KubeletConfiguration kubelet.config.k8s.io/v1beta1)"),
    ({"kube_version": None, "kube_pod_cidr": None}, "settings not defined: kube_version, kube_pod_cidr; every inventory needs them all"),
    ({"kube_proxy_mode": "userspace"}, "kube_proxy_mode 'userspace' must be ipvs, iptables or nftables"),
    ({"flannel_backend": "wireguard"}, "flannel_backend 'wireguard' must be vxlan or host-gw"),
    ({"kubelet_fail_cgroup_v1": "yes"}, "kubelet_fail_cgroup_v1 'yes' must be true or false"),
    ({"kubelet_fail_cgroup_v1": 1}, "kubelet_fail_cgroup_v1 1 must be true or false"),
    ({"kube_node_cidr_mask_size": "24"}, "kube_node_cidr_mask_size '24' must be an integer"),
    ({"kube_node_cidr_mask_size": True}, "kube_node_cidr_mask_size True must be an integer"),
    ({"kube_node_cidr_mask_size": 16}, "kube_node_cidr_mask_size 16 must be larger than the prefix length of kube_pod_cidr 10.244.0.0/16 and at most 30"),
    ({"kube_node_cidr_mask_size": 31}, "kube_node_cidr_mask_size 31 must be larger than the prefix length of kube_pod_cidr 10.244.0.0/16 and at most 30"),
    ({"kube_pod_cidr": "10.244.0.0/23"},
     "kube_pod_cidr 10.244.0.0/23 gives 2 node subnets of /24, the cluster has 4 nodes; widen kube_pod_cidr or raise kube_node_cidr_mask_size"),
    ({"kube_pod_cidr": "10.244.0.0/24", "kube_node_cidr_mask_size": 24},
     "kube_node_cidr_mask_size 24 must be larger than the prefix length of kube_pod_cidr 10.244.0.0/24 and at most 30"),
    ({"kube_pod_cidr": "fd00:10:244::/48", "kube_service_cidr": "fd00:10:96::/112", "kube_cluster_dns_ip": "fd00:10:96::a",
      "kube_node_cidr_mask_size": 127}, "kube_node_cidr_mask_size 127 must be larger than the prefix length of kube_pod_cidr fd00:10:244::/48 and at most 126"),
    ({"kube_pod_cidr": "fd00:10:244::/48", "kube_service_cidr": "fd00:10:96::/112", "kube_cluster_dns_ip": "fd00:10:96::a",
      "kube_node_cidr_mask_size": 80}, "kube_node_cidr_mask_size 80 is more than 16 bits longer than kube_pod_cidr fd00:10:244::/48"),
    ({"containerd_version": "v2.4.2"}, "containerd_version 'v2.4.2' is not a release version: write X.Y.Z"),
    ({"crictl_version": 1.37}, "crictl_version 1.37 is not a release version"),
    ({"kubeforge_arch": "s390x"}, "kubeforge_arch 's390x' must be amd64 or arm64"),
    ({"kubeforge_artifacts_checksum_source": "trust-me"}, "kubeforge_artifacts_checksum_source 'trust-me' must be one of published, sidecar"),
    ({"kubelet_tls_mode": "rotate"}, "kubelet_tls_mode 'rotate' must be bootstrap or signed"),
    ({"kubeforge_credentials_dir": "credentials"}, "kubeforge_credentials_dir 'credentials' must be an absolute path on the controller"),
    ({"etcd_client_port": "2379"}, "etcd_client_port '2379' is not a TCP port number"),
    ({"etcd_client_port": 70000}, "etcd_client_port 70000 is not a TCP port number"),
    ({"etcd_client_port": 6443}, "etcd_client_port and kube_apiserver_port are both 6443"),
    ({"artifacts_bin_dir": "bin"}, "artifacts_bin_dir 'bin' must be an absolute path on the hosts"),
    ({"etcd_client_port": None, "artifacts_bin_dir": None}, "settings not defined: etcd_client_port, artifacts_bin_dir;"),
    ({"kube_apiserver_endpoint": "http://127.0.0.1:6443"}, "kube_apiserver_endpoint 'http://127.0.0.1:6443' must be an https:// URL"),
    ({"kube_apiserver_endpoint": "https://127.0.0.1:port"}, "kube_apiserver_endpoint 'https://127.0.0.1:port' must be an https:// URL"),
    ({"kube_apiserver_endpoint": "127.0.0.1:6443"}, "kube_apiserver_endpoint '127.0.0.1:6443' must be an https:// URL"),
    ({"kube_apiserver_endpoint": "https://10.0.0.99:6443"},
     "kube_apiserver_endpoint 'https://10.0.0.99:6443': 10.0.0.99 is not a name or address of the apiserver certificate"),
    ({"kube_apiserver_endpoint": "https://api.other.example:6443"},
     "kube_apiserver_endpoint 'https://api.other.example:6443': api.other.example is not a name or address of the apiserver certificate"),
    ({"kube_version": None, "kube_apiserver_endpoint": None, "kubelet_tls_mode": None, "kubeforge_credentials_dir": None},
     "settings not defined: kube_version, kubeforge_credentials_dir, kube_apiserver_endpoint, kubelet_tls_mode;"),
])
def test_each_cluster_setting_rule(change, expected):
    problems = run(cluster=change).problems
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize("endpoint", [
    "https://127.0.0.1:6443", "https://localhost:6443", "https://192.168.56.10:6443", "https://api.example.internal",
    "https://master2:6443", "https://192.168.56.13:6443", "https://203.0.113.7:443", "https://k8s.example.com:6443/",
])
def test_endpoint_covered_by_the_apiserver_certificate(endpoint):
    assert run(cluster={"kube_apiserver_endpoint": endpoint}).problems == []


def test_endpoint_matches_a_wildcard_extra_san():
    change = {"kube_apiserver_extra_sans": ["*.k8s.example.com"], "kube_apiserver_endpoint": "https://api.k8s.example.com:6443"}
    assert run(cluster=change).problems == []
    change["kube_apiserver_endpoint"] = "https://a.b.k8s.example.com:6443"
    assert len(run(cluster=change).problems) == 1


def test_kubelet_signed_mode_is_valid():
    assert run(cluster={"kubelet_tls_mode": "signed"}).problems == []


def test_flag_valid_in_one_version_only_depends_on_target():
    # --concurrent-service-syncs was removed in 1.37; 1.36 still has it.
    assert run(cluster={"kube_controller_manager_extra_args": {"concurrent-service-syncs": "2"}}).problems == []


def test_deprecated_flag_is_a_warning_not_a_problem():
    report = run(cluster={"kube_apiserver_extra_args": {"admission-control": "NodeRestriction"}})
    assert report.problems == []
    assert report.warnings == ["kube_apiserver_extra_args: --admission-control is deprecated in kube-apiserver 1.36"]


@pytest.mark.parametrize("groups_change, expected", [
    ({"etcd": []}, "group 'etcd' is empty"),
    ({"kube_control_plane": []}, "group 'kube_control_plane' is empty"),
    ({"etcd": ["master1", "master2"]}, "group 'etcd' has 2 hosts"),
    ({"k8s_cluster": []}, "group 'k8s_cluster' is empty"),
    ({"kube_node": []}, "group 'kube_node' is empty"),
])
def test_group_rules(groups_change, expected):
    groups = {**copy.deepcopy(GROUPS), **groups_change}
    problems = run(groups=groups).problems
    assert any(expected in problem for problem in problems), problems


def test_even_etcd_allowed_when_asked():
    groups = {**copy.deepcopy(GROUPS), "etcd": ["master1", "master2"]}
    assert run(cluster={"etcd_even_members_enabled": True}, groups=groups).problems == []


def test_host_in_no_group_that_needs_it():
    hosts = {**copy.deepcopy(HOSTS), "stray": {"ip": "192.168.56.99"}}
    groups = {**copy.deepcopy(GROUPS), "all": list(hosts)}
    assert run(hosts=hosts, groups=groups).problems == [
        "host 'stray' is in none of the groups etcd, kube_control_plane, kube_node: nothing would be installed on it"]


def test_kubernetes_host_outside_k8s_cluster():
    groups = {**copy.deepcopy(GROUPS), "k8s_cluster": ["master1", "master2", "master3"]}
    assert run(groups=groups).problems == ["host 'worker1' runs Kubernetes but is not in group 'k8s_cluster'"]


@pytest.mark.parametrize("host_change, expected", [
    ({"worker1": {"ip": "192.168.56.11"}}, "duplicate host address 192.168.56.11: master1, worker1"),
    ({"worker1": {"ip": "worker1.example"}}, "host 'worker1' has no usable address"),
    ({"worker1": {"ip": None}}, "host 'worker1' has no usable address"),
])
def test_host_rules(host_change, expected):
    hosts = {**copy.deepcopy(HOSTS), **host_change}
    problems = run(hosts=hosts).problems
    assert any(expected in problem for problem in problems), problems


def test_duplicate_and_invalid_names():
    hosts = {**copy.deepcopy(HOSTS), "Worker1": {"ip": "192.168.56.31"}, "bad_name": {"ip": "192.168.56.32"}}
    groups = {**copy.deepcopy(GROUPS), "all": list(hosts), "kube_node": ["worker1", "Worker1", "bad_name"]}
    groups["k8s_cluster"] = groups["kube_control_plane"] + groups["kube_node"]
    problems = run(hosts=hosts, groups=groups).problems
    assert "duplicate host names: Worker1, worker1" in problems
    assert "host name 'Worker1' has upper-case letters: Kubernetes node names are lower case" in problems
    assert "host name 'bad_name' is not a valid Kubernetes node name (lower-case RFC 1123 subdomain)" in problems


def test_single_control_plane_needs_no_load_balancer():
    groups = {**copy.deepcopy(GROUPS), "kube_control_plane": ["master1"], "etcd": ["master1"],
              "kube_node": ["master2", "master3", "worker1"]}
    assert run(cluster={"kube_apiserver_lb_address": ""}, groups=groups).problems == []


def test_every_problem_is_reported_at_once():
    groups = {**copy.deepcopy(GROUPS), "etcd": ["master1", "master2"]}
    report = run(cluster={"kube_pod_cidr": "10.96.0.0/16", "kube_cluster_dns_ip": "10.200.0.10",
                          "kube_apiserver_lb_address": "", "kube_apiserver_extra_args": {"insecure-port": "0"}}, groups=groups)
    assert len(report.problems) == 5, report.problems
    message = report.message()
    assert message.startswith("Preflight found 5 problems; nothing was changed on any host:")
    assert all(f"  {n}. " in message for n in range(1, 6))


def _write_artifact(root, name, version, data=b"etcd release", sidecar=True):
    path = os.path.join(root, _artifacts.relpath(name, version, "amd64"))
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as handle:
        handle.write(data)
    if sidecar:
        with open(path + ".sha256", "w") as handle:
            handle.write(f"{hashlib.sha256(data).hexdigest()}  {os.path.basename(path)}\n")
    return path


def test_missing_offline_artifact(tmp_path):
    problems = run(cluster={"kubeforge_artifacts_dir": str(tmp_path)}).problems
    assert problems == [f"offline artifact etcd 3.5.30 is missing: {tmp_path}/etcd-io/etcd/releases/download/v3.5.30/etcd-v3.5.30-linux-amd64.tar.gz"]


def test_offline_artifact_against_published_checksum(tmp_path):
    # A locally packed etcd 3.5.30 is not the official tarball: the published sum rejects it.
    _write_artifact(str(tmp_path), "etcd", "3.5.30")
    problems = run(cluster={"kubeforge_artifacts_dir": str(tmp_path)}).problems
    assert len(problems) == 1
    assert "fails its checksum" in problems[0]
    assert "the published checksum says a495115162845640be08c6cda069ff961260dbced53207c5a83b1b006ff2ea8e" in problems[0]


def test_offline_artifact_against_sidecar(tmp_path):
    path = _write_artifact(str(tmp_path), "etcd", "3.5.30")
    assert run(cluster={"kubeforge_artifacts_dir": str(tmp_path), "kubeforge_artifacts_checksum_source": "sidecar"}).problems == []
    with open(path, "ab") as handle:
        handle.write(b"tampered")
    problems = run(cluster={"kubeforge_artifacts_dir": str(tmp_path), "kubeforge_artifacts_checksum_source": "sidecar"}).problems
    assert len(problems) == 1 and "fails its checksum" in problems[0] and path + ".sha256 says" in problems[0]


def test_offline_artifact_without_any_checksum(tmp_path):
    _write_artifact(str(tmp_path), "kube-apiserver", "1.36.4", sidecar=False)
    cluster = {"kubeforge_artifacts_dir": str(tmp_path), "kubeforge_required_artifacts": ["kube-apiserver"]}
    problems = run(cluster=cluster).problems
    assert len(problems) == 1 and "has no checksum to verify it against" in problems[0]


def test_offline_artifact_against_the_lock(tmp_path):
    # A rebuilt file with a matching .sha256 beside it: the lock, recorded on first use, still refuses it.
    _write_artifact(str(tmp_path), "kube-apiserver", "1.36.4", data=b"rebuilt")
    lock = tmp_path / "artifacts.lock.yml"
    _artifacts.update_lock_file(str(lock), [("kube-apiserver", "1.36.4", "amd64", "a" * 64, {})], False)
    cluster = {"kubeforge_artifacts_dir": str(tmp_path), "kubeforge_required_artifacts": ["kube-apiserver"],
               "kubeforge_artifacts_lock_file": str(lock)}
    problems = run(cluster=cluster).problems
    assert len(problems) == 1 and f"locked sha256 {'a' * 64} ({lock}), found {hashlib.sha256(b'rebuilt').hexdigest()}" in problems[0]
    # The documented update accepts it, with a warning.
    report = run(cluster={**cluster, "kubeforge_artifacts_lock_update": "true"})
    assert report.problems == [] and "kubeforge_artifacts_lock_update is true" in report.warnings[0]


def test_a_lock_contradicting_the_published_checksum_or_unreadable_is_refused(tmp_path):
    lock = tmp_path / "artifacts.lock.yml"
    _artifacts.update_lock_file(str(lock), [("etcd", "3.5.30", "amd64", "a" * 64, {})], False)
    problems = run(cluster={"kubeforge_artifacts_lock_file": str(lock)}).problems
    assert len(problems) == 1 and problems[0].startswith(f"etcd 3.5.30 linux/amd64: locked sha256 {'a' * 64}")
    lock.write_text("artifacts: [")
    assert "is not valid YAML" in run(cluster={"kubeforge_artifacts_lock_file": str(lock)}).problems[0]
    assert run(cluster={"kubeforge_artifacts_lock_file": "artifacts.lock.yml"}).problems == [
        "kubeforge_artifacts_lock_file 'artifacts.lock.yml' must be an absolute path on the controller"]


def test_node_subnets_enough_for_every_node():
    # A /22 gives 4 node subnets of /24: exactly the 4 nodes; a /25 per node gives 8.
    assert run(cluster={"kube_pod_cidr": "10.244.0.0/22"}).problems == []
    assert run(cluster={"kube_pod_cidr": "10.244.0.0/23", "kube_node_cidr_mask_size": 25}).problems == []
    problems = run(cluster={"kube_pod_cidr": "10.244.0.0/24", "kube_node_cidr_mask_size": 25}).problems
    assert problems == ["kube_pod_cidr 10.244.0.0/24 gives 2 node subnets of /25, the cluster has 4 nodes; "
                        "widen kube_pod_cidr or raise kube_node_cidr_mask_size"]


def test_one_node_subnet_is_singular():
    groups = {**copy.deepcopy(GROUPS), "k8s_cluster": ["master1", "worker1"]}
    groups["kube_control_plane"] = groups["etcd"] = ["master1"]
    hosts = {name: HOSTS[name] for name in ("master1", "worker1")}
    groups["all"] = list(hosts)
    problems = run(cluster={"kube_pod_cidr": "10.244.0.0/24", "kube_node_cidr_mask_size": 24, "kube_apiserver_lb_address": ""},
                   hosts=hosts, groups=groups).problems
    assert problems == ["kube_node_cidr_mask_size 24 must be larger than the prefix length of kube_pod_cidr 10.244.0.0/24 and at most 30"]
    problems = run(cluster={"kube_pod_cidr": "10.244.0.0/24", "kube_node_cidr_mask_size": 25, "kube_apiserver_lb_address": ""},
                   hosts={**hosts, "worker2": {"ip": "192.168.56.22"}},
                   groups={**groups, "all": [*hosts, "worker2"], "kube_node": ["worker1", "worker2"],
                           "k8s_cluster": ["master1", "worker1", "worker2"]}).problems
    assert problems == ["kube_pod_cidr 10.244.0.0/24 gives 2 node subnets of /25, the cluster has 3 nodes; "
                        "widen kube_pod_cidr or raise kube_node_cidr_mask_size"]


def test_ipv6_node_subnets():
    ipv6 = {"kube_pod_cidr": "fd00:10:244::/56", "kube_service_cidr": "fd00:10:96::/112", "kube_cluster_dns_ip": "fd00:10:96::a",
            "kube_node_cidr_mask_size": 64}
    assert run(cluster=ipv6).problems == []


@pytest.mark.parametrize("version, expected", [
    ("1.35.8", "kube_proxy_mode ipvs is deprecated since Kubernetes 1.35 (KEP-5495) and kube-proxy 1.35 says it may be removed"),
    ("1.36.4", "kube_proxy_mode ipvs is deprecated since Kubernetes 1.35 (KEP-5495) and kube-proxy 1.36 says it may be removed"),
    ("1.37.2", "kube_proxy_mode ipvs is deprecated since Kubernetes 1.35 (KEP-5495): kube-proxy 1.37 allows it through the deprecated "
               "feature gate KubeProxyIPVS, on by default, which upstream turns off in 1.40 before removing ipvs mode in 1.43"),
])
def test_ipvs_mode_is_a_warning_not_a_problem(version, expected):
    report = run(cluster={"kube_version": version, "kube_proxy_mode": "ipvs"})
    assert report.problems == []
    assert len(report.warnings) == 1 and report.warnings[0].startswith(expected), report.warnings


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_other_proxy_modes_warn_of_nothing(mode):
    report = run(cluster={"kube_version": "1.37.2", "kube_proxy_mode": mode})
    assert (report.problems, report.warnings) == ([], [])


def kubelet_shutdown_problems(**fields) -> list:
    """The rule's problems for the kubelet's final KubeletConfiguration as the preflight action renders it (the role's
    graceful shutdown defaults, ``fields`` over them; a None drops a field). The rule alone: the CIS check reads the
    same configuration, and this one holds only the fields judged here."""
    configuration = {"shutdownGracePeriod": "60s", "shutdownGracePeriodCriticalPods": "20s", **fields}
    cluster = {**CLUSTER, _preflight.ROLE_VARS_KEY: {"kubelet_bootstrap_configuration": {k: v for k, v in configuration.items() if v is not None}}}
    report = _preflight.Report()
    _preflight.check_kubelet_shutdown(cluster, copy.deepcopy(HOSTS), copy.deepcopy(GROUPS), report)
    return report.problems


@pytest.mark.parametrize("fields, expected", [
    ({}, []),
    ({"shutdownGracePeriod": "0s", "shutdownGracePeriodCriticalPods": "0s"}, []),
    ({"shutdownGracePeriod": None, "shutdownGracePeriodCriticalPods": None}, []),
    ({"shutdownGracePeriod": "1m30s", "shutdownGracePeriodCriticalPods": "1m30s"}, []),
    ({"shutdownGracePeriod": "60"},
     ["the kubelet's shutdownGracePeriod is '60': it takes a Go duration of 0s or more such as 60s or 1m30s "
      "(kubelet_bootstrap_shutdown_grace_period, or kubelet_config_extra)"]),
    ({"shutdownGracePeriodCriticalPods": "-1s"},
     ["the kubelet's shutdownGracePeriodCriticalPods is '-1s': it takes a Go duration of 0s or more such as 60s or 1m30s "
      "(kubelet_bootstrap_shutdown_grace_period_critical_pods, or kubelet_config_extra)"]),
    ({"shutdownGracePeriod": "30s", "shutdownGracePeriodCriticalPods": "1m"},
     ["the kubelet's shutdownGracePeriodCriticalPods (1m) is longer than its shutdownGracePeriod (30s), of which it is the last "
      "part: the kubelet refuses it (kubelet_bootstrap_shutdown_grace_period_critical_pods)"]),
    ({"shutdownGracePeriodByPodPriority": [{"priority": 0, "shutdownGracePeriodSeconds": 30}]},
     ["kubelet_config_extra sets shutdownGracePeriodByPodPriority, which the kubelet refuses beside shutdownGracePeriod and "
      "shutdownGracePeriodCriticalPods: set kubelet_bootstrap_shutdown_grace_period and "
      "kubelet_bootstrap_shutdown_grace_period_critical_pods to 0s"]),
    ({"shutdownGracePeriod": "0s", "shutdownGracePeriodCriticalPods": "0s",
      "shutdownGracePeriodByPodPriority": [{"priority": 0, "shutdownGracePeriodSeconds": 30}]}, []),
])
def test_graceful_node_shutdown_settings_the_kubelet_refuses_are_problems(fields, expected):
    assert kubelet_shutdown_problems(**fields) == expected


V2_IPVS = {"cgroup_version": 2, "ip_vs": "loadable", "kernel_release": "6.8.0-60-generic"}


def with_facts(facts_by_host=None, default=None):
    """HOSTS with node facts: every host gets ``default`` (V2_IPVS) unless ``facts_by_host`` names it."""
    default = V2_IPVS if default is None else default
    hosts = copy.deepcopy(HOSTS)
    for name, host in hosts.items():
        host["kubeforge_node"] = copy.deepcopy((facts_by_host or {}).get(name, default))
    return hosts


def test_node_facts_of_a_good_cluster():
    assert run(hosts=with_facts()).problems == []
    assert run(cluster={"kube_proxy_mode": "ipvs"}, hosts=with_facts()).problems == []


@pytest.mark.parametrize("cluster_change, facts, expected", [
    ({}, {"worker1": {**V2_IPVS, "cgroup_version": 1}, "master2": {**V2_IPVS, "cgroup_version": 1}},
     "cgroup v1 on master2, worker1: kubelet 1.35 and later refuses to start on cgroup v1 (failCgroupV1); "
     "move the hosts to cgroup v2 or set kubelet_fail_cgroup_v1: false explicitly to accept the deprecated mode"),
    ({"kube_proxy_mode": "ipvs"}, {"worker1": {**V2_IPVS, "ip_vs": "missing"}},
     "kube_proxy_mode ipvs but the kernel of worker1 has no IP_VS (not loaded, not built in, not loadable): choose iptables or nftables"),
    ({"kube_proxy_mode": "nftables"}, {"master1": {**V2_IPVS, "kernel_release": "5.10.0-28-amd64"}},
     "kube_proxy_mode nftables needs kernel 5.13 or later, which kube-proxy checks at start: master1 (5.10.0-28-amd64); "
     "upgrade the kernel or choose iptables"),
    ({}, {"worker1": None},
     "no node facts for worker1 (the preflight play gathers them with kubeforge.cluster.node_facts; was the host unreachable or did the task fail?)"),
    ({}, {"worker1": {**V2_IPVS, "cgroup_version": True}},
     "no node facts for worker1 (the preflight play gathers them with kubeforge.cluster.node_facts; was the host unreachable or did the task fail?)"),
    ({}, {"worker1": {"cgroup_version": 3}},
     "no node facts for worker1 (the preflight play gathers them with kubeforge.cluster.node_facts; was the host unreachable or did the task fail?)"),
])
def test_node_fact_rules(cluster_change, facts, expected):
    problems = run(cluster=cluster_change, hosts=with_facts(facts)).problems
    assert problems == [expected]


@pytest.mark.parametrize("ip_vs", ["loaded", "builtin", "loadable"])
def test_ipvs_mode_with_ip_vs_available(ip_vs):
    report = run(cluster={"kube_proxy_mode": "ipvs"}, hosts=with_facts(default={**V2_IPVS, "ip_vs": ip_vs}))
    assert report.problems == [] and len(report.warnings) == 1


def test_missing_ip_vs_matters_only_in_ipvs_mode():
    for mode in ("iptables", "nftables"):
        assert run(cluster={"kube_proxy_mode": mode}, hosts=with_facts(default={**V2_IPVS, "ip_vs": "missing"})).problems == []


def test_cgroup_v1_accepted_explicitly_is_a_warning():
    report = run(cluster={"kubelet_fail_cgroup_v1": False}, hosts=with_facts({"worker1": {**V2_IPVS, "cgroup_version": 1}}))
    assert report.problems == []
    assert report.warnings == ["cgroup v1 on worker1: the kubelet runs there because kubelet_fail_cgroup_v1 is false, "
                               "but cgroup v1 support is deprecated and will be removed; move the hosts to cgroup v2"]


def test_hosts_not_asked_for_facts_are_not_checked():
    # No 'kubeforge_node' key: the run did not gather the host's facts (a unit test of the inventory
    # alone, or a host outside --limit without cached facts).
    hosts = with_facts({"worker1": {**V2_IPVS, "cgroup_version": 1}})
    del hosts["worker1"]["kubeforge_node"]
    assert run(hosts=hosts).problems == []


def test_facts_of_hosts_outside_k8s_cluster_are_ignored():
    hosts = {**with_facts(), "etcd4": {"ip": "192.168.56.14", "kubeforge_node": None}}
    groups = {**copy.deepcopy(GROUPS), "all": list(hosts), "etcd": ["master1", "master2", "master3", "etcd4"]}
    assert run(cluster={"etcd_even_members_enabled": True}, hosts=hosts, groups=groups).problems == []


def test_every_node_problem_is_reported_at_once_with_the_inventory_problems():
    facts = {"master1": {**V2_IPVS, "cgroup_version": 1}, "worker1": {**V2_IPVS, "ip_vs": "missing"}, "master3": None}
    report = run(cluster={"kube_proxy_mode": "ipvs", "kube_pod_cidr": "10.244.0.0/23", "flannel_backend": "udp"}, hosts=with_facts(facts))
    assert report.problems == [
        "flannel_backend 'udp' must be vxlan or host-gw",
        "kube_pod_cidr 10.244.0.0/23 gives 2 node subnets of /24, the cluster has 4 nodes; widen kube_pod_cidr or raise kube_node_cidr_mask_size",
        "no node facts for master3 (the preflight play gathers them with kubeforge.cluster.node_facts; was the host unreachable or did the task fail?)",
        "cgroup v1 on master1: kubelet 1.35 and later refuses to start on cgroup v1 (failCgroupV1); "
        "move the hosts to cgroup v2 or set kubelet_fail_cgroup_v1: false explicitly to accept the deprecated mode",
        "kube_proxy_mode ipvs but the kernel of worker1 has no IP_VS (not loaded, not built in, not loadable): choose iptables or nftables",
    ]
    assert len(report.warnings) == 1 and "ipvs is deprecated" in report.warnings[0]
    message = report.message()
    assert message.startswith("Preflight found 5 problems; nothing was changed on any host:")
    assert all(f"  {n}. " in message for n in range(1, 6))
    assert "KEP-5495" not in message  # warnings are shown apart, they do not fail the run


@pytest.mark.parametrize("name, var, version, path", [
    ("containerd", "containerd_version", "2.4.2", "containerd/containerd/releases/download/v2.4.2/containerd-2.4.2-linux-amd64.tar.gz"),
    ("runc", "runc_version", "1.5.3", "opencontainers/runc/releases/download/v1.5.3/runc.amd64"),
    ("cni_plugins", "cni_plugins_version", "1.10.0", "containernetworking/plugins/releases/download/v1.10.0/cni-plugins-linux-amd64-v1.10.0.tgz"),
    ("crictl", "crictl_version", "1.37.0", "kubernetes-sigs/cri-tools/releases/download/v1.37.0/crictl-v1.37.0-linux-amd64.tar.gz"),
    ("kubelet", "kube_version", "1.36.4", "release/v1.36.4/bin/linux/amd64/kubelet"),
    ("kube-proxy", "kube_version", "1.36.4", "release/v1.36.4/bin/linux/amd64/kube-proxy"),
])
def test_each_artifact_is_checked_at_its_own_version(tmp_path, name, var, version, path):
    cluster = {"kubeforge_artifacts_dir": str(tmp_path), "kubeforge_required_artifacts": [name], var: version}
    assert run(cluster=cluster).problems == [f"offline artifact {name} {version} is missing: {tmp_path}/{path}"]
    _write_artifact(str(tmp_path), name, version, data=name.encode())
    assert run(cluster={**cluster, "kubeforge_artifacts_checksum_source": "sidecar"}).problems == []


def test_a_phase_without_the_phases_it_needs_is_refused_on_a_cluster_this_controller_never_converged():
    report = run({_preflight.PHASES_KEY: "all", _preflight.TAGS_KEY: (["control_plane", "coredns"], []), _preflight.CONTROLLER_HAS_CA_KEY: False})
    assert report.problems == [
        "no run has converged this cluster from this controller (its credentials directory /srv/kubeforge/mycluster/credentials holds none of "
        "the cluster's CAs), and the phases this run selects need earlier ones it leaves out: control_plane needs pki, etcd; coredns needs "
        "pki, etcd, kubelet_bootstrap, flannel. Run site.yml whole, or site.yml --tags pki,etcd,control_plane,kubelet_bootstrap,flannel,coredns. "
        "If the cluster runs already, /srv/kubeforge/mycluster/credentials is not its credentials directory (docs/pki.md)"]


@pytest.mark.parametrize("phases, tags, has_ca", [
    ("all", (["control_plane"], []), True),  # converged from this controller: the phases ran before
    ("all", (["prepare", "pki", "etcd", "control_plane"], []), False),
    ("all", (["all"], ["ipvs", "flannel", "coredns"]), False),
    ("all", (["container_runtime"], []), False),
    (["pki"], (["all"], []), False),  # a phase playbook
    (None, (["coredns"], []), False),  # a day-2 playbook, which names no phase
])
def test_a_run_with_what_its_phases_need_passes(phases, tags, has_ca):
    assert run({_preflight.PHASES_KEY: phases, _preflight.TAGS_KEY: tags, _preflight.CONTROLLER_HAS_CA_KEY: has_ca}).problems == []


def test_a_phase_playbook_alone_is_judged_by_its_own_phase():
    report = run({_preflight.PHASES_KEY: ["flannel"], _preflight.TAGS_KEY: (["all"], []), _preflight.CONTROLLER_HAS_CA_KEY: False})
    assert len(report.problems) == 1 and "flannel needs pki, etcd, control_plane, kubelet_bootstrap." in report.problems[0]


def with_phase_units(absent: dict) -> dict:
    """HOSTS with their node facts' phase_units: every phase's unit file on every host, but ``absent`` ({host: [phase]})."""
    return with_facts({name: {**V2_IPVS, "phase_units": {phase: phase not in absent.get(name, []) for phase in _phases.WRITES}} for name in HOSTS})


def test_a_phase_is_refused_without_an_earlier_phase_it_leaves_out_that_has_not_run_on_every_host_of_its_group():
    hosts = with_phase_units({"master1": ["etcd", "control_plane", "kubelet_bootstrap"], "master2": ["control_plane", "kubelet_bootstrap"],
                              "master3": ["control_plane", "kubelet_bootstrap"], "worker1": ["kubelet_bootstrap"]})
    report = run({_preflight.PHASES_KEY: "all", _preflight.TAGS_KEY: (["control_plane", "flannel"], [])}, hosts=hosts)
    assert report.problems == [
        "the phases this run selects need earlier ones it leaves out, and those have not run on every host of theirs: control_plane needs "
        "etcd; flannel needs etcd, kubelet_bootstrap. etcd has not run on master1 (no /etc/systemd/system/etcd.service there); kubelet_bootstrap "
        "has not run on master1, master2, master3, worker1 (no /etc/systemd/system/kubelet.service there). Run site.yml whole, or site.yml "
        "--tags etcd,control_plane,kubelet_bootstrap,flannel (add_nodes.yml or add_control_plane.yml for a host new to the cluster)"]


@pytest.mark.parametrize("tags, absent", [
    ((["control_plane"], []), {}),  # every host had every phase
    ((["control_plane"], []), {"worker1": ["etcd", "control_plane"]}),  # not etcd or control-plane hosts
    ((["etcd", "control_plane"], []), {"master1": ["etcd", "control_plane"]}),  # the run has etcd too
    ((["kubelet_bootstrap"], []), {"worker1": ["kubelet_bootstrap"]}),  # the phase that lacks it is the one the run has
    ((["coredns"], []), {}),  # flannel, which coredns needs, writes no unit: not judged by the hosts
])
def test_a_phase_whose_earlier_phases_ran_on_their_hosts_or_run_with_it_passes(tags, absent):
    assert run({_preflight.PHASES_KEY: "all", _preflight.TAGS_KEY: tags}, hosts=with_phase_units(absent)).problems == []


def test_hosts_whose_node_facts_the_run_did_not_read_are_not_judged():
    hosts = with_phase_units({"master1": ["etcd"], "master2": ["etcd"]})
    del hosts["master1"]["kubeforge_node"]["phase_units"]  # facts of an earlier kubeforge
    del hosts["master2"]["kubeforge_node"]  # not read (a --limit run)
    assert run({_preflight.PHASES_KEY: "all", _preflight.TAGS_KEY: (["control_plane"], [])}, hosts=hosts).problems == []


def test_an_unknown_phase_named_by_a_playbook_is_a_problem():
    report = run({_preflight.PHASES_KEY: ["nginx"], _preflight.TAGS_KEY: (["all"], [])})
    assert report.problems == ["kubeforge_preflight_phases: unknown phases nginx: the phases are " + ", ".join(_phases.ORDER)]


@pytest.mark.parametrize("limit, why, refused", [
    ("worker1", "every apiserver must hold the same keys", True),
    ("worker1", None, False),     # a playbook that may run on part of the cluster (site.yml)
    (None, "every apiserver must hold the same keys", False),
])
def test_a_playbook_that_needs_the_whole_cluster_refuses_a_limit(limit, why, refused):
    report = run({_preflight.LIMIT_KEY: limit, _preflight.WHOLE_CLUSTER_KEY: why})
    assert report.problems == ([f"run without --limit ({limit}): {why}"] if refused else [])


def running(versions: dict) -> dict:
    """HOSTS with each named host's linked program versions, as the preflight action passes those the run read."""
    hosts = copy.deepcopy(HOSTS)
    for name, linked in versions.items():
        hosts[name][_preflight.LINKED_VERSIONS_KEY] = linked
    return hosts


CONTROL_PLANE_135 = {"kube-apiserver": "1.35.2", "kube-controller-manager": "1.35.2", "kube-scheduler": "1.35.2", "kubectl": "1.35.2",
                     "kubelet": "1.35.2", "kube-proxy": "1.35.2", "etcd": "3.5.30", "etcdctl": "3.5.30", "containerd": "2.3.0"}
UPGRADE_HINT = ("this playbook would install {target} there in place. Change versions with playbooks/upgrade.yml (one minor at a time, the "
                "control plane first, each node drained; a run of it that stopped is finished the same way), or set {setting} to the "
                "version the hosts run")


@pytest.mark.parametrize("marker", [
    {_preflight.INSTALLS_VERSIONS_KEY: True},
    {_preflight.PHASES_KEY: "all", _preflight.TAGS_KEY: (["all"], [])},
    {_preflight.PHASES_KEY: "all", _preflight.TAGS_KEY: (["ipvs"], [])},
    {_preflight.PHASES_KEY: ["kubelet_bootstrap"], _preflight.TAGS_KEY: (["all"], []), _preflight.CONTROLLER_HAS_CA_KEY: True},
])
def test_a_playbook_that_installs_the_versions_refuses_hosts_that_run_others(marker):
    hosts = running({"master1": CONTROL_PLANE_135, "master2": CONTROL_PLANE_135, "master3": CONTROL_PLANE_135,
                     "worker1": {"kubelet": "1.35.2", "kube-proxy": "1.35.2"}})
    report = run(marker, hosts=hosts)
    assert report.problems == ["kube_version is 1.36.4, but master1, master2, master3, worker1 run 1.35.2: "
                               + UPGRADE_HINT.format(target="1.36.4", setting="kube_version")]


def test_an_upgrade_that_stopped_names_each_version_and_its_hosts_and_etcd_on_its_own():
    hosts = running({"master1": {**CONTROL_PLANE_135, "kube-apiserver": "1.36.4", "etcd": "3.5.28", "etcdctl": "3.5.28"},
                     "master2": {"kubelet": "1.36.4", "etcd": "3.5.30"}, "worker1": {"kubelet": "1.34.9"}})
    report = run({_preflight.INSTALLS_VERSIONS_KEY: True}, hosts=hosts)
    assert report.problems == [
        "kube_version is 1.36.4, but worker1 runs 1.34.9; master1 runs 1.35.2: " + UPGRADE_HINT.format(target="1.36.4", setting="kube_version"),
        "etcd_version is 3.5.30, but master1 runs 3.5.28: " + UPGRADE_HINT.format(target="3.5.30", setting="etcd_version")]


@pytest.mark.parametrize("cluster, versions", [
    ({}, {"master1": CONTROL_PLANE_135}),  # a playbook that installs nothing (etcd_backup.yml), or upgrade.yml
    ({_preflight.INSTALLS_VERSIONS_KEY: True}, {}),  # new hosts, or hosts the run did not read
    ({_preflight.INSTALLS_VERSIONS_KEY: True}, {"master1": {"containerd": "2.3.0", "runc": "1.4.0"}}),  # no policy of their own
    ({_preflight.INSTALLS_VERSIONS_KEY: True}, {"master1": {"kube-apiserver": "1.36.4", "etcd": "3.5.30"}}),
])
def test_the_versions_that_run_are_not_judged_where_nothing_would_change_them(cluster, versions):
    assert run(cluster, hosts=running(versions)).problems == []


@pytest.mark.parametrize("tags, judged", [
    ((["etcd"], []), ["etcd_version"]),
    ((["coredns", "flannel", "prepare", "pki", "ha_nginx", "container_runtime"], []), []),
    ((["preflight"], []), []),  # the preflight alone installs nothing
    ((["all"], ["control_plane", "kubelet_bootstrap", "ipvs"]), ["etcd_version"]),
])
def test_site_yml_is_judged_by_the_phases_its_tags_select(tags, judged):
    hosts = running({"master1": {**CONTROL_PLANE_135, "etcd": "3.5.28"}})
    problems = run({_preflight.PHASES_KEY: "all", _preflight.TAGS_KEY: tags, _preflight.CONTROLLER_HAS_CA_KEY: True}, hosts=hosts).problems
    assert [problem.split(" is ")[0] for problem in problems] == judged, problems

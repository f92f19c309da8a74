# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Preflight rules: every check of the inventory and settings, run before any host is touched.

Each rule is a function ``rule(cluster, hosts, groups, report)`` that adds what it finds to the
report; ``validate`` runs them all so the operator sees every problem in one message.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.kubeforge.cluster.plugins.module_utils import _artifacts, _cis, _control_plane, _durations, _node_facts, _phases, _versions

# Groups every cluster needs, as kubespray names them.
ROLE_GROUPS = ("etcd", "kube_control_plane", "kube_node")
# Extra-argument variables and the component whose flag list they are checked against.
EXTRA_ARGS = {
    "kube_apiserver_extra_args": "kube-apiserver",
    "kube_controller_manager_extra_args": "kube-controller-manager",
    "kube_scheduler_extra_args": "kube-scheduler",
    "kubelet_extra_args": "kubelet",
    "kube_proxy_extra_args": "kube-proxy",
}
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")


# The version setting of each release artifact that is not a Kubernetes binary (those follow kube_version).
ARTIFACT_VERSIONS = {
    "etcd": "etcd_version",
    "containerd": "containerd_version",
    "runc": "runc_version",
    "cni_plugins": "cni_plugins_version",
    "crictl": "crictl_version",
}
# Cluster-wide settings every inventory must define (inventory/sample/group_vars/all.yml has them all).
REQUIRED_SETTINGS = (
    "kube_version", "etcd_version", "kubeforge_arch", "kube_pod_cidr", "kube_service_cidr", "kube_cluster_dns_ip",
    "kube_cluster_domain", "kube_apiserver_port", "kube_apiserver_lb_address", "kube_apiserver_lb_domain",
    "kube_apiserver_extra_sans", "kube_proxy_mode", "etcd_even_members_enabled", "kubeforge_artifacts_dir",
    "kubeforge_download_mirror", "kubeforge_artifacts_checksum_source", "kubeforge_host_kernel_managed",
    "kubeforge_credentials_dir", "kube_apiserver_endpoint", "kubelet_tls_mode", "kube_node_cidr_mask_size",
    "kubelet_fail_cgroup_v1", "flannel_backend", "containerd_version", "runc_version", "cni_plugins_version",
    "crictl_version", "etcd_client_port", "artifacts_bin_dir", _cis.EXCEPTIONS_VAR,
    "kubeforge_artifacts_lock_file", "kubeforge_artifacts_lock_update", "kubelet_config_extra",
) + tuple(EXTRA_ARGS)
# Where the preflight action puts, for each host where a setting that takes one value (check_one_value) has another
# value than on the host the preflight reads the cluster's settings on (host_vars, or a group other than all):
# {setting: value there}; the name of that host; and its values of those settings.
DIFFERING_SETTINGS_KEY = "kubeforge_differing_settings"
SETTINGS_HOST_KEY = "kubeforge_settings_host"
SETTINGS_HOST_VALUES_KEY = "kubeforge_settings_host_values"
# Where the preflight action puts every role's options ({role: the options of its meta/argument_specs.yml}), and each
# host's values of those the inventory or the extra vars set ({setting: value}, none unset); see check_role_settings.
ROLE_SPECS_KEY = "kubeforge_role_argument_specs"
ROLE_SETTINGS_KEY = "kubeforge_role_settings"
# How much of a differing value a problem shows.
SHOWN_VALUE_LENGTH = 80
# Where the preflight action puts the role variables it rendered for check_cis (_cis.ROLE_VARIABLES).
ROLE_VARS_KEY = "kubeforge_role_vars"
# Where it puts the function that hashes the offline artifacts (its cache of their sha256); file_sha256 without.
OFFLINE_DIGEST_KEY = "kubeforge_offline_digest"
# Where it puts the phases the playbook names (kubeforge_preflight_phases: "all" or a list; none in the day-2
# playbooks), the run's (ansible_run_tags, ansible_skip_tags), and whether the controller's credentials directory holds
# any of the cluster's CAs.
PHASES_KEY = "kubeforge_preflight_phases"
TAGS_KEY = "kubeforge_run_tags"
CONTROLLER_HAS_CA_KEY = "kubeforge_controller_has_ca"
# Where it puts the run's --limit (ansible_limit, None without), and why the playbook needs every host
# (kubeforge_preflight_whole_cluster_why: the playbooks that must not run on part of the cluster say so).
LIMIT_KEY = "kubeforge_run_limit"
WHOLE_CLUSTER_KEY = "kubeforge_preflight_whole_cluster_why"
# Set by the day-2 playbooks that install the inventory's versions where they run phases (add_nodes.yml,
# add_control_plane.yml, remove_control_plane.yml, renew_certs.yml); site.yml and the phase playbooks name their phases.
INSTALLS_VERSIONS_KEY = "kubeforge_preflight_installs_versions"
# Where the preflight action puts each host's linked program versions (node_facts' linked_versions), for the hosts
# the run read: facts cached from an earlier run may predate an upgrade.
LINKED_VERSIONS_KEY = "linked_versions"
# The programs each version setting installs (the artifacts of the Kubernetes release and of etcd), and the phases
# of site.yml that install them.
VERSIONED_PROGRAMS = {
    "kube_version": (("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet", "kube-proxy"),
                     ("control_plane", "kubelet_bootstrap", "ipvs")),
    "etcd_version": (("etcd", "etcdctl", "etcdutl"), ("etcd",)),
}
KUBELET_TLS_MODES = ("bootstrap", "signed")
KUBE_PROXY_MODES = ("ipvs", "iptables", "nftables")
FLANNEL_BACKENDS = ("vxlan", "host-gw")
# kube-proxy refuses nftables mode on older kernels (k8s.io/kubernetes pkg/util/kernel/constants.go,
# NFTablesKubeProxyKernelVersion, checked in pkg/proxy/nftables).
NFTABLES_MIN_KERNEL = (5, 13)
# The feature gate that allows kube-proxy's ipvs mode (k8s.io/kubernetes pkg/features/kube_features.go):
# it exists from 1.37 on, Deprecated and on by default; pkg/proxy/apis/config/validation drops ipvs
# from the valid modes when it is off. The collection never turns it off, so it passes no gate.
KUBE_PROXY_IPVS_GATE = "KubeProxyIPVS"
KUBE_PROXY_IPVS_GATE_SINCE = "1.37"


class UnrenderedValue(str):
    """A setting's value that could not be rendered in a host's variables, shown as why: a role may still render it
    (with its defaults in scope), so check_role_settings leaves it to the role."""


@dataclass
class Report:
    problems: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    def message(self) -> str:
        count = len(self.problems)
        lines = [f"Preflight found {count} problem{'s' if count != 1 else ''}; nothing was changed on any host:"]
        lines += [f"  {number}. {text}" for number, text in enumerate(self.problems, 1)]
        return "\n".join(lines)


def _network(text) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(str(text), strict=True)
    except ValueError:
        return None


def _address(text) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(str(text))
    except ValueError:
        return None


def _is_dns_name(text) -> bool:
    return isinstance(text, str) and len(text) <= 253 and bool(_DNS_SUBDOMAIN.match(text))


def check_settings_defined(cluster, hosts, groups, report: Report) -> None:
    missing = [key for key in REQUIRED_SETTINGS if cluster.get(key) is None]
    if missing:
        report.problems.append(f"settings not defined: {', '.join(missing)}; every inventory needs them all "
                               "(copy inventory/sample/group_vars/all.yml, which documents each one)")
    if cluster.get("kube_proxy_mode") not in (None, *KUBE_PROXY_MODES):
        report.problems.append(f"kube_proxy_mode {cluster.get('kube_proxy_mode')!r} must be ipvs, iptables or nftables")
    if cluster.get("kubeforge_arch") not in (None, "amd64", "arm64"):
        report.problems.append(f"kubeforge_arch {cluster.get('kubeforge_arch')!r} must be amd64 or arm64")
    if cluster.get("flannel_backend") not in (None, *FLANNEL_BACKENDS):
        report.problems.append(f"flannel_backend {cluster.get('flannel_backend')!r} must be vxlan or host-gw")
    if cluster.get("kubelet_fail_cgroup_v1") is not None and not isinstance(cluster.get("kubelet_fail_cgroup_v1"), bool):
        report.problems.append(f"kubelet_fail_cgroup_v1 {cluster.get('kubelet_fail_cgroup_v1')!r} must be true or false")


def _shown(value) -> str:
    if value is None:
        return "unset"
    text = repr(str(value)) if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= SHOWN_VALUE_LENGTH else text[:SHOWN_VALUE_LENGTH - 3] + "..."


def check_one_value(cluster, hosts, groups, report: Report) -> None:
    """Every cluster-wide setting, and every setting of the roles the CIS check judges, takes one value on every host:
    the other rules judge the cluster by the values of the host the preflight runs on, so a value set apart for some
    hosts would go unchecked (a kubelet version ahead of the apiservers', another pod network, another credentials
    directory, a weaker TLS setting on one apiserver). One problem per setting, naming the hosts."""
    apart = {}
    for name in sorted(hosts):
        for key, value in (hosts[name].get(DIFFERING_SETTINGS_KEY) or {}).items():
            apart.setdefault(key, {}).setdefault(_shown(value), []).append(name)
    for key in sorted(apart):
        others = "; ".join(f"{value} on {', '.join(names)}" for value, names in apart[key].items())
        here = (cluster.get(SETTINGS_HOST_VALUES_KEY) or {}).get(key, cluster.get(key))
        report.problems.append(f"{key} is {_shown(here)} on {cluster.get(SETTINGS_HOST_KEY)} but {others}: "
                               "kubeforge sets up every host alike, so this setting takes one value on every host (set it in "
                               "group_vars/all or with -e, not in host_vars or the vars of another group)")


def check_role_settings(cluster, hosts, groups, report: Report) -> None:
    """Every role's settings that the inventory (or -e) sets are checked against the role's meta/argument_specs.yml with
    the validator the role's own argument check uses, on every host: without this, a wrong type or choice for a late
    phase's role (coredns_replicas: two) stops site.yml when that role starts, after the earlier phases changed the
    hosts, and only the first such role is named. One problem per role and message, naming the hosts unless it is
    every one; each distinct set of values is validated once."""
    found = {}  # (role, message) -> hosts
    for role, options in sorted((cluster.get(ROLE_SPECS_KEY) or {}).items()):
        judged = {}  # the role's values, as JSON -> the hosts that have them
        for name in sorted(hosts):
            values = {key: value for key, value in (hosts[name].get(ROLE_SETTINGS_KEY) or {}).items()
                      if key in options and not isinstance(value, UnrenderedValue)}
            if values:
                judged.setdefault(json.dumps(values, sort_keys=True, default=str), (values, []))[1].append(name)
        validator = ArgumentSpecValidator(options)
        for values, names in judged.values():
            for message in validator.validate(values).error_messages:
                found.setdefault((role, message), []).extend(names)
    for (role, message), names in found.items():
        where = "" if len(names) == len(hosts) else f" on {', '.join(sorted(names))}"
        report.problems.append(f"the {role} role's settings{where}: {message} (roles/{role}/README.md lists them)")


def check_groups(cluster, hosts, groups, report: Report) -> None:
    for group in ROLE_GROUPS:
        if not groups.get(group):
            report.problems.append(f"group '{group}' is empty: the cluster needs at least one host in it")
    if not groups.get("k8s_cluster"):
        report.problems.append("group 'k8s_cluster' is empty: make kube_control_plane and kube_node its children")
    placed = set().union(*(groups.get(g, []) for g in ROLE_GROUPS))
    for name in sorted(set(hosts) - placed):
        report.problems.append(f"host '{name}' is in none of the groups {', '.join(ROLE_GROUPS)}: nothing would be installed on it")
    outside = sorted(set(groups.get("kube_control_plane", []) + groups.get("kube_node", [])) - set(groups.get("k8s_cluster", [])))
    for name in outside:
        report.problems.append(f"host '{name}' runs Kubernetes but is not in group 'k8s_cluster'")


def check_etcd_size(cluster, hosts, groups, report: Report) -> None:
    size = len(groups.get("etcd", []))
    if size and size % 2 == 0 and not cluster.get("etcd_even_members_enabled"):
        report.problems.append(f"group 'etcd' has {size} hosts: {size} etcd members tolerate no more failures than {size - 1}; "
                               "use an odd number or set etcd_even_members_enabled: true")


def check_hosts(cluster, hosts, groups, report: Report) -> None:
    seen_names: dict = {}
    seen_addresses: dict = {}
    for name, host in sorted(hosts.items()):
        if not _is_dns_name(name.lower()):
            report.problems.append(f"host name '{name}' is not a valid Kubernetes node name (lower-case RFC 1123 subdomain)")
        elif name != name.lower():
            report.problems.append(f"host name '{name}' has upper-case letters: Kubernetes node names are lower case")
        seen_names.setdefault(name.lower(), []).append(name)
        address = host.get("ip")
        if not _address(address):
            report.problems.append(f"host '{name}' has no usable address: kubeforge_node_ip (or ansible_host) is {address!r}, not an IP address")
            continue
        seen_addresses.setdefault(str(_address(address)), []).append(name)
    for names in seen_names.values():
        if len(names) > 1:
            report.problems.append(f"duplicate host names: {', '.join(names)}")
    for address, names in seen_addresses.items():
        if len(names) > 1:
            report.problems.append(f"duplicate host address {address}: {', '.join(names)}")


def check_networks(cluster, hosts, groups, report: Report) -> None:
    pods = _network(cluster.get("kube_pod_cidr"))
    services = _network(cluster.get("kube_service_cidr"))
    for var, net in (("kube_pod_cidr", pods), ("kube_service_cidr", services)):
        if net is None:
            report.problems.append(f"{var} {cluster.get(var)!r} is not a valid CIDR (network address/prefix, host bits zero)")
    if pods and services and pods.version == services.version and pods.overlaps(services):
        report.problems.append(f"kube_pod_cidr {pods} overlaps kube_service_cidr {services}")
    for name, host in sorted(hosts.items()):
        address = _address(host.get("ip"))
        for var, net in (("kube_pod_cidr", pods), ("kube_service_cidr", services)):
            if address and net and address.version == net.version and address in net:
                report.problems.append(f"{var} {net} contains the address {address} of host '{name}'")
    if services is None:
        return
    first_service_ip = services.network_address + 1
    dns = _address(cluster.get("kube_cluster_dns_ip"))
    if dns is None:
        report.problems.append(f"kube_cluster_dns_ip {cluster.get('kube_cluster_dns_ip')!r} is not an IP address")
    elif dns.version != services.version or dns not in services or dns in (services.network_address, services.broadcast_address):
        report.problems.append(f"kube_cluster_dns_ip {dns} is not a usable address of kube_service_cidr {services}")
    elif dns == first_service_ip:
        report.problems.append(f"kube_cluster_dns_ip {dns} is the first address of kube_service_cidr, which the 'kubernetes' service takes")
    if services.num_addresses < 4:
        report.problems.append(f"kube_service_cidr {services} is too small: its first IP ({first_service_ip}) serves the API and needs room for services")


def check_node_cidrs(cluster, hosts, groups, report: Report) -> None:
    """kube-controller-manager's --node-cidr-mask-size: every node gets a subnet of kube_pod_cidr of this size."""
    size = cluster.get("kube_node_cidr_mask_size")
    if size is None:
        return  # reported by check_settings_defined
    if not isinstance(size, int) or isinstance(size, bool):
        report.problems.append(f"kube_node_cidr_mask_size {size!r} must be an integer: the prefix length of each node's pod subnet, such as 24")
        return
    pods = _network(cluster.get("kube_pod_cidr"))
    if pods is None:
        return  # reported by check_networks
    longest = 30 if pods.version == 4 else 126
    if not pods.prefixlen < size <= longest:
        report.problems.append(f"kube_node_cidr_mask_size {size} must be larger than the prefix length of kube_pod_cidr {pods} "
                               f"and at most {longest}")
        return
    if pods.version == 6 and size - pods.prefixlen > 16:
        # pkg/controller/nodeipam/ipam/cidrset: clusterSubnetMaxDiff, ErrCIDRSetSubNetTooBig.
        report.problems.append(f"kube_node_cidr_mask_size {size} is more than 16 bits longer than kube_pod_cidr {pods}: "
                               f"kube-controller-manager refuses that for IPv6; lower it to {pods.prefixlen + 16} at most "
                               "or give kube_pod_cidr a longer prefix")
        return
    subnets = 2 ** (size - pods.prefixlen)
    nodes = len(set(groups.get("k8s_cluster", [])))
    if subnets < nodes:
        report.problems.append(f"kube_pod_cidr {pods} gives {subnets} node subnet{'s' if subnets != 1 else ''} of /{size}, "
                               f"the cluster has {nodes} nodes; widen kube_pod_cidr or raise kube_node_cidr_mask_size")


def _is_port(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def check_endpoint(cluster, hosts, groups, report: Report) -> None:
    port = cluster.get("kube_apiserver_port")
    if not _is_port(port):
        report.problems.append(f"kube_apiserver_port {port!r} is not a TCP port number")
    etcd_port = cluster.get("etcd_client_port")
    if etcd_port is not None and not _is_port(etcd_port):
        report.problems.append(f"etcd_client_port {etcd_port!r} is not a TCP port number")
    elif etcd_port is not None and etcd_port == port:
        report.problems.append(f"etcd_client_port and kube_apiserver_port are both {port}: etcd and the apiserver share the control-plane hosts")
    bin_dir = cluster.get("artifacts_bin_dir")
    if bin_dir is not None and (not isinstance(bin_dir, str) or not bin_dir.startswith("/")):
        report.problems.append(f"artifacts_bin_dir {bin_dir!r} must be an absolute path on the hosts")
    lb_address = cluster.get("kube_apiserver_lb_address") or ""
    lb_domain = cluster.get("kube_apiserver_lb_domain") or ""
    if len(groups.get("kube_control_plane", [])) > 1 and not lb_address:
        report.problems.append(f"{len(groups['kube_control_plane'])} control-plane hosts but no kube_apiserver_lb_address: "
                               "clients outside the nodes need one address in front of all apiservers")
    if lb_address and not _address(lb_address):
        report.problems.append(f"kube_apiserver_lb_address {lb_address!r} is not an IP address (put a name in kube_apiserver_lb_domain)")
    if lb_domain and not _is_dns_name(lb_domain):
        report.problems.append(f"kube_apiserver_lb_domain {lb_domain!r} is not a valid DNS name")
    if not _is_dns_name(cluster.get("kube_cluster_domain")):
        report.problems.append(f"kube_cluster_domain {cluster.get('kube_cluster_domain')!r} is not a valid DNS name")
    sans = cluster.get("kube_apiserver_extra_sans") or []
    if not isinstance(sans, list):
        report.problems.append("kube_apiserver_extra_sans must be a list of IP addresses and DNS names")
        sans = []
    for san in sans:
        if not _address(san) and not _is_dns_name(str(san).removeprefix("*.")):
            report.problems.append(f"kube_apiserver_extra_sans entry {san!r} is neither an IP address nor a DNS name")


def check_pki(cluster, hosts, groups, report: Report) -> None:
    mode = cluster.get("kubelet_tls_mode")
    if mode is not None and mode not in KUBELET_TLS_MODES:
        report.problems.append(f"kubelet_tls_mode {mode!r} must be bootstrap or signed")
    directory = cluster.get("kubeforge_credentials_dir")
    if directory is not None and (not isinstance(directory, str) or not directory.startswith("/")):
        report.problems.append(f"kubeforge_credentials_dir {directory!r} must be an absolute path on the controller")
    endpoint = cluster.get("kube_apiserver_endpoint")
    if endpoint is None:
        return
    try:
        url = urlsplit(str(endpoint))
        port = url.port
    except ValueError:
        url, port = None, None
    if url is None or url.scheme != "https" or not url.hostname or url.path not in ("", "/") or url.query or port == 0:
        report.problems.append(f"kube_apiserver_endpoint {endpoint!r} must be an https:// URL with a host and an optional port, such as https://127.0.0.1:6443")
        return
    # Every component verifies the apiserver certificate against this host: it must be one of its SANs.
    extra = cluster.get("kube_apiserver_extra_sans")
    sans = ["127.0.0.1", "localhost", cluster.get("kube_apiserver_lb_address"), cluster.get("kube_apiserver_lb_domain")]
    sans += extra if isinstance(extra, list) else []
    for name in groups.get("kube_control_plane", []):
        sans += [name, hosts.get(name, {}).get("ip")]
    if not any(_san_matches(str(san), url.hostname) for san in sans if san):
        report.problems.append(f"kube_apiserver_endpoint {endpoint!r}: {url.hostname} is not a name or address of the apiserver certificate "
                               "(127.0.0.1, localhost, the load balancer, a control-plane host or kube_apiserver_extra_sans)")


def check_phase_order(cluster, hosts, groups, report: Report) -> None:
    """A phase runs only with the phases it needs (_phases.NEEDS), unless they ran before: site.yml --tags control_plane
    on a cluster whose etcd never ran would start an apiserver with no etcd, and fail after a minute of waiting, the hosts
    changed. They did not run before on a cluster that no run converged from this controller (its credentials directory
    holds no CA), nor on a host of their group that lacks the unit file they write there (_phases.WRITES, read by the
    node_facts module: a first run that stopped part way, a host new to the inventory)."""
    named = cluster.get(PHASES_KEY)
    if not named:
        return
    try:
        phases = _phases.selected(named, *(cluster.get(TAGS_KEY) or (None, None)))
    except ValueError as exc:
        report.problems.append(f"kubeforge_preflight_phases: {exc}")
        return
    lacking = _phases.left_out(phases)
    if not lacking:
        return
    earlier = [phase for phase in _phases.ORDER if any(phase in missing for missing in lacking.values())]
    if not cluster.get(CONTROLLER_HAS_CA_KEY, True):
        directory = cluster.get("kubeforge_credentials_dir")
        needs = "; ".join(f"{phase} needs {', '.join(missing)}" for phase, missing in lacking.items())
        report.problems.append(f"no run has converged this cluster from this controller (its credentials directory {directory} holds none of "
                               f"the cluster's CAs), and the phases this run selects need earlier ones it leaves out: {needs}. Run site.yml "
                               f"whole, or {_site_tags(phases + earlier)}. If the cluster runs already, {directory} is not its credentials "
                               "directory (docs/pki.md)")
        return
    not_run = {}
    for phase in (phase for phase in earlier if phase in _phases.WRITES):
        group, unit = _phases.WRITES[phase]
        without = [name for name in groups.get(group, []) if _node_facts_of(hosts, name).get("phase_units", {}).get(phase) is False]
        if without:
            not_run[phase] = f"{phase} has not run on {', '.join(without)} (no {unit} there)"
    if not_run:
        gaps = {phase: [name for name in missing if name in not_run] for phase, missing in lacking.items()}
        needs = "; ".join(f"{phase} needs {', '.join(names)}" for phase, names in gaps.items() if names)
        report.problems.append(f"the phases this run selects need earlier ones it leaves out, and those have not run on every host of theirs: "
                               f"{needs}. {'; '.join(not_run.values())}. Run site.yml whole, or {_site_tags(phases + list(not_run))} "
                               "(add_nodes.yml or add_control_plane.yml for a host new to the cluster)")


def check_limit(cluster, hosts, groups, report: Report) -> None:
    """A playbook that must run on the whole cluster (rotate_encryption_key.yml: a key on some apiservers only leaves
    what they encrypt unreadable through the others; upgrade.yml, etcd_restore.yml, etcd_migrate.yml) names why, and a
    --limit run of it is refused."""
    limit, why = cluster.get(LIMIT_KEY), cluster.get(WHOLE_CLUSTER_KEY)
    if limit and why:
        report.problems.append(f"run without --limit ({limit}): {why}")


def check_installed_versions(cluster, hosts, groups, report: Report) -> None:
    """A playbook that installs the inventory's versions refuses hosts that run others: installed in place, a new
    kube_version would skip upgrade.yml's policies (one minor at a time, the control plane first, each node drained, an
    etcd snapshot first and etcd's own upgrade path), or go back a version, which no upstream supports. site.yml and
    the phase playbooks are judged by the phases the run selects (site.yml --tags coredns installs no kube_version);
    upgrade.yml sets neither key, and checks the versions itself. Hosts whose programs the run did not read are not
    judged."""
    if cluster.get(INSTALLS_VERSIONS_KEY):
        phases = None
    elif cluster.get(PHASES_KEY):
        try:
            phases = set(_phases.selected(cluster[PHASES_KEY], *(cluster.get(TAGS_KEY) or (None, None))))
        except ValueError:  # check_phase_order names it
            return
    else:
        return
    for setting, (programs, installers) in VERSIONED_PROGRAMS.items():
        if phases is not None and not phases & set(installers):
            continue
        target = str(cluster.get(setting) or "")
        running: dict[str, list[str]] = {}
        for name in sorted(hosts):
            linked = (hosts[name] or {}).get(LINKED_VERSIONS_KEY) or {}
            for version in sorted({linked[program] for program in programs if program in linked} - {target}):
                running.setdefault(version, []).append(name)
        if target and running:
            found = "; ".join(f"{', '.join(names)} run{'s' if len(names) == 1 else ''} {version}" for version, names in sorted(running.items()))
            report.problems.append(f"{setting} is {target}, but {found}: this playbook would install {target} there in place. Change "
                                   f"versions with playbooks/upgrade.yml (one minor at a time, the control plane first, each node "
                                   f"drained; a run of it that stopped is finished the same way), or set {setting} to the version the "
                                   "hosts run")


def _node_facts_of(hosts, name) -> dict:
    """The node_facts module's facts of host ``name``; {} where the run did not read them."""
    return (hosts.get(name) or {}).get("kubeforge_node") or {}


def _site_tags(phases) -> str:
    """The site.yml run of ``phases``, in site.yml's order."""
    return f"site.yml --tags {','.join(phase for phase in _phases.ORDER if phase in phases)}"


def _san_matches(san: str, host: str) -> bool:
    """Whether a TLS client connecting to ``host`` accepts a certificate with this SAN."""
    san_ip, host_ip = _address(san), _address(host)
    if san_ip is not None or host_ip is not None:
        return san_ip is not None and san_ip == host_ip
    san, host = san.lower().rstrip("."), host.lower().rstrip(".")
    if san.startswith("*."):
        return "." in host and host.split(".", 1)[1] == san[2:]
    return san == host


def check_versions(cluster, hosts, groups, report: Report) -> None:
    for var, supported in (("kube_version", _versions.SUPPORTED_KUBE_MINORS), ("etcd_version", _versions.SUPPORTED_ETCD_MINORS)):
        minor = _versions.minor_of(cluster.get(var))
        if minor not in supported:
            report.problems.append(f"{var} {cluster.get(var)!r} is not supported: use an X.Y.Z release of {', '.join(supported)}")
    for var in ARTIFACT_VERSIONS.values():
        if var != "etcd_version" and cluster.get(var) is not None and _versions.minor_of(cluster.get(var)) is None:
            report.problems.append(f"{var} {cluster.get(var)!r} is not a release version: write X.Y.Z in quotes, without a leading v, such as \"2.4.2\"")


def check_extra_args(cluster, hosts, groups, report: Report) -> None:
    minor = _versions.minor_of(cluster.get("kube_version"))
    if minor not in _versions.SUPPORTED_KUBE_MINORS:
        return  # reported by check_versions; no flag list to check against
    for var, component in EXTRA_ARGS.items():
        args = cluster.get(var) or {}
        if not isinstance(args, dict):
            report.problems.append(f"{var} must be a mapping of flag name to value")
            continue
        flags = _versions.component_flags(minor, component)
        for raw in args:
            flag = "--" + str(raw).lstrip("-")
            if flag not in flags:
                report.problems.append(f"{var}: {component} {minor} has no flag {flag} (removed or misspelled)")
            elif flags[flag]:
                report.warnings.append(f"{var}: {flag} is deprecated in {component} {minor}")


def check_kubelet_config_extra(cluster, hosts, groups, report: Report) -> None:
    """kubelet_config_extra: fields of the kubelet's KubeletConfiguration in the target version (the kind and its
    apiVersion are the role's)."""
    extra = cluster.get("kubelet_config_extra") or {}
    if not isinstance(extra, dict):
        report.problems.append("kubelet_config_extra must be a mapping of KubeletConfiguration field to value")
        return
    api_version = _control_plane.CONFIG_API_VERSIONS["KubeletConfiguration"]
    for fixed in ("apiVersion", "kind"):
        if fixed in extra:
            report.problems.append(f"kubelet_config_extra: {fixed} is the role's (KubeletConfiguration {api_version})")
    minor = _versions.minor_of(cluster.get("kube_version"))
    if minor not in _versions.SUPPORTED_KUBE_MINORS:
        return  # reported by check_versions; no field list to check against
    fields = {key: value for key, value in extra.items() if key not in ("apiVersion", "kind")}
    doc = {"apiVersion": api_version, "kind": "KubeletConfiguration", **fields}
    for path in _control_plane.unknown_config_fields(doc, minor):
        report.problems.append(f"kubelet_config_extra: KubeletConfiguration {minor} has no field {path} (removed or misspelled)")


def check_kubelet_shutdown(cluster, hosts, groups, report: Report) -> None:
    """Graceful node shutdown in the kubelet's final KubeletConfiguration (the role's settings with kubelet_config_extra
    over them, rendered by the preflight action): a kubelet refuses to start on durations it cannot read, on critical
    pods' time longer than the whole, and on shutdownGracePeriodByPodPriority beside the two, and site.yml would find
    that out on the first node it restarts."""
    config = (cluster.get(ROLE_VARS_KEY) or {}).get("kubelet_bootstrap_configuration")
    if not isinstance(config, dict):
        return  # without the rendered role variables (unit tests of the inventory alone)
    names = {"shutdownGracePeriod": "kubelet_bootstrap_shutdown_grace_period",
             "shutdownGracePeriodCriticalPods": "kubelet_bootstrap_shutdown_grace_period_critical_pods"}
    seconds = {}
    for field_name, setting in names.items():
        value = config.get(field_name, "0s")
        seconds[field_name] = _durations.go_duration_seconds(value)
        if seconds[field_name] is None or seconds[field_name] < 0:
            report.problems.append(f"the kubelet's {field_name} is {_shown(value)}: it takes a Go duration of 0s or more such as "
                                   f"60s or 1m30s ({setting}, or kubelet_config_extra)")
    whole, critical = seconds["shutdownGracePeriod"], seconds["shutdownGracePeriodCriticalPods"]
    if whole is not None and critical is not None and critical > whole:
        report.problems.append(f"the kubelet's shutdownGracePeriodCriticalPods ({config.get('shutdownGracePeriodCriticalPods')}) is longer "
                               f"than its shutdownGracePeriod ({config.get('shutdownGracePeriod')}), of which it is the last part: the "
                               "kubelet refuses it (kubelet_bootstrap_shutdown_grace_period_critical_pods)")
    if config.get("shutdownGracePeriodByPodPriority") and (whole or critical):
        report.problems.append("kubelet_config_extra sets shutdownGracePeriodByPodPriority, which the kubelet refuses beside "
                               "shutdownGracePeriod and shutdownGracePeriodCriticalPods: set kubelet_bootstrap_shutdown_grace_period "
                               "and kubelet_bootstrap_shutdown_grace_period_critical_pods to 0s")


def _kernel_minor(release) -> tuple | None:
    """(major, minor) of a kernel release or Kubernetes version ('6.8.0-60-generic' -> (6, 8)), or None."""
    match = re.match(r"^(\d+)\.(\d+)", str(release or ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


def check_kube_proxy(cluster, hosts, groups, report: Report) -> None:
    """kube-proxy's ipvs mode still works in every supported version, deprecated (KEP-5495): a warning.

    From 1.37 on kube-proxy accepts mode ipvs only while the feature gate KubeProxyIPVS is on; it
    is on by default and the collection leaves it so (nothing to pass).
    """
    minor = _versions.minor_of(cluster.get("kube_version"))
    if cluster.get("kube_proxy_mode") != "ipvs" or minor not in _versions.SUPPORTED_KUBE_MINORS:
        return
    if _kernel_minor(minor) >= _kernel_minor(KUBE_PROXY_IPVS_GATE_SINCE):
        report.warnings.append(f"kube_proxy_mode ipvs is deprecated since Kubernetes 1.35 (KEP-5495): kube-proxy {minor} allows it through "
                               f"the deprecated feature gate {KUBE_PROXY_IPVS_GATE}, on by default, which upstream turns off in 1.40 "
                               "before removing ipvs mode in 1.43; plan the move to nftables")
    else:
        report.warnings.append(f"kube_proxy_mode ipvs is deprecated since Kubernetes 1.35 (KEP-5495) and kube-proxy {minor} says it may be "
                               "removed in a future release; plan the move to nftables")


def _valid_node_facts(facts) -> bool:
    version = facts.get("cgroup_version") if isinstance(facts, dict) else None
    return (isinstance(facts, dict) and isinstance(version, int) and not isinstance(version, bool) and version in (1, 2)
            and facts.get("ip_vs") in _node_facts.IP_VS_STATES and isinstance(facts.get("kernel_release"), str))


def check_node_facts(cluster, hosts, groups, report: Report) -> None:
    """Rules on what each node's kernel says (kubeforge.cluster.node_facts, in hosts[name]['kubeforge_node']).

    A host without the key was not asked (unit tests of the inventory alone, or a host left out
    by --limit whose facts are not cached): its kernel rules are skipped. A host with the key and
    no usable facts was asked and did not answer: that is a problem.
    """
    nodes = sorted(name for name in set(groups.get("k8s_cluster", [])) if "kubeforge_node" in hosts.get(name, {}))
    unanswered = [name for name in nodes if not _valid_node_facts(hosts[name]["kubeforge_node"])]
    if unanswered:
        report.problems.append(f"no node facts for {', '.join(unanswered)} (the preflight play gathers them with kubeforge.cluster.node_facts; "
                               "was the host unreachable or did the task fail?)")
    facts = {name: hosts[name]["kubeforge_node"] for name in nodes if name not in unanswered}

    cgroup_v1 = [name for name, fact in facts.items() if fact["cgroup_version"] == 1]
    if cgroup_v1 and cluster.get("kubelet_fail_cgroup_v1") is True:
        report.problems.append(f"cgroup v1 on {', '.join(cgroup_v1)}: kubelet 1.35 and later refuses to start on cgroup v1 (failCgroupV1); "
                               "move the hosts to cgroup v2 or set kubelet_fail_cgroup_v1: false explicitly to accept the deprecated mode")
    elif cgroup_v1 and cluster.get("kubelet_fail_cgroup_v1") is False:
        report.warnings.append(f"cgroup v1 on {', '.join(cgroup_v1)}: the kubelet runs there because kubelet_fail_cgroup_v1 is false, "
                               "but cgroup v1 support is deprecated and will be removed; move the hosts to cgroup v2")

    mode = cluster.get("kube_proxy_mode")
    if mode == "ipvs":
        missing = [name for name, fact in facts.items() if fact["ip_vs"] == "missing"]
        if missing:
            report.problems.append(f"kube_proxy_mode ipvs but the kernel of {', '.join(missing)} has no IP_VS (not loaded, not built in, "
                                   "not loadable): choose iptables or nftables")
    elif mode == "nftables":
        old = [f"{name} ({fact['kernel_release']})" for name, fact in facts.items()
               if _kernel_minor(fact["kernel_release"]) is not None and _kernel_minor(fact["kernel_release"]) < NFTABLES_MIN_KERNEL]
        if old:
            report.problems.append(f"kube_proxy_mode nftables needs kernel {'.'.join(map(str, NFTABLES_MIN_KERNEL))} or later, which kube-proxy "
                                   f"checks at start: {', '.join(old)}; upgrade the kernel or choose iptables")


def check_artifacts(cluster, hosts, groups, report: Report) -> None:
    source = cluster.get("kubeforge_artifacts_checksum_source")
    if source not in _artifacts.CHECKSUM_SOURCES:
        report.problems.append(f"kubeforge_artifacts_checksum_source {source!r} must be one of {', '.join(_artifacts.CHECKSUM_SOURCES)}")
        return
    # Each artifact at its own version setting; the Kubernetes binaries at kube_version.
    wanted = [(name, cluster.get(ARTIFACT_VERSIONS.get(name, "kube_version"))) for name in cluster.get("kubeforge_required_artifacts") or []]
    lock, lock_path = {}, cluster.get("kubeforge_artifacts_lock_file")
    update = str(cluster.get("kubeforge_artifacts_lock_update")).lower() in ("true", "yes", "1", "on")
    if lock_path is not None and (not isinstance(lock_path, str) or not lock_path.startswith("/")):
        report.problems.append(f"kubeforge_artifacts_lock_file {lock_path!r} must be an absolute path on the controller")
    elif lock_path:
        try:
            lock = _artifacts.load_lock(lock_path)
        except _artifacts.ArtifactsError as exc:
            report.problems.extend(exc.errors)
    if update:
        report.warnings.append("kubeforge_artifacts_lock_update is true: this run replaces the locked checksums of the versions "
                               "it installs by their sources' (docs/offline-install.md); leave it false otherwise")
    else:
        report.problems.extend(_artifacts.lock_problems(lock, wanted, cluster.get("kubeforge_arch"), source, lock_path or ""))
    directory = cluster.get("kubeforge_artifacts_dir") or ""
    if directory:
        report.problems.extend(_artifacts.offline_problems(directory, wanted, cluster.get("kubeforge_arch"), source, lock,
                                                           lock_path or "", update, cluster.get(OFFLINE_DIGEST_KEY) or _artifacts.file_sha256))


def check_cis(cluster, hosts, groups, report: Report) -> None:
    """Every component's final settings against the CIS items the roles enforce (plugins/module_utils/_cis.py).

    The role variables come rendered from the preflight action (cluster[ROLE_VARS_KEY]); without
    them (unit tests of the inventory alone) only kube_cis_exceptions itself is checked.
    """
    exceptions, problems = _cis.parse_exceptions(cluster.get(_cis.EXCEPTIONS_VAR))
    report.problems.extend(problems)
    role_vars = cluster.get(ROLE_VARS_KEY)
    extra_args = {component: (var, cluster.get(var) or {}) for var, component in EXTRA_ARGS.items()}
    if role_vars is None or not all(isinstance(args, dict) for _var, args in extra_args.values()):
        return  # a non-mapping is reported by check_extra_args
    context = {"control_planes": len(set(groups.get("kube_control_plane", []))), "kubelet_tls_mode": cluster.get("kubelet_tls_mode"),
               "protect_kernel_defaults": role_vars.get("kubelet_bootstrap_protect_kernel_defaults")}
    problems, notes = _cis.check(role_vars, extra_args, exceptions, context)
    report.problems.extend(problems)
    report.warnings.extend(notes)


RULES = (check_settings_defined, check_one_value, check_role_settings, check_groups, check_etcd_size, check_hosts, check_networks,
         check_node_cidrs, check_endpoint, check_pki, check_phase_order, check_limit, check_versions, check_installed_versions,
         check_extra_args, check_kubelet_config_extra, check_kubelet_shutdown, check_kube_proxy, check_node_facts, check_artifacts, check_cis)


def validate(cluster: dict, hosts: dict, groups: dict) -> Report:
    """Run every rule. ``hosts`` maps each inventory host to {'ip': its cluster address}, plus
    'kubeforge_node' (the node_facts module's facts, or None when they were asked for and are
    absent) for the hosts whose kernel the run checks; see check_node_facts."""
    report = Report()
    for rule in RULES:
        rule(cluster, hosts, groups, report)
    return report

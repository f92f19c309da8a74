# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: firewall_rules
short_description: The ports a cluster host must accept, as nftables rules of kubeforge's host firewall
version_added: 0.1.0
description:
  - The prepare role's firewall (C(prepare_firewall=manage)) drops every incoming packet that no rule
    accepts. This filter gives one host's rules - the ports of the phases that run on it (by its inventory
    groups) and the operator's extra ports - as nftables match expressions, each with a comment.
  - The table of every port, the hosts that open it and why is in roles/prepare/README.md.
  - Fails on a port, port range or address that is not one, naming every bad value.
options:
  _input:
    description: The host (inventory name).
    type: str
    required: true
  groups:
    description: The C(groups) magic variable.
    type: dict
    required: true
  hostvars:
    description: The C(hostvars) magic variable (for every node's address).
    type: dict
    required: true
  settings:
    description:
      - C(ssh_port), C(apiserver_port), C(etcd_client_port), C(etcd_peer_port), C(kubelet_port),
        C(node_port_range) (C(LOW-HIGH)), C(flannel_backend), C(flannel_vxlan_port), C(kube_proxy_mode),
        C(service_cidr), and C(extra_ports) (C(PORT/PROTO) or C(LOW-HIGH/PROTO), PROTO tcp or udp).
    type: dict
    required: true
  leaving:
    description: Nodes leaving the cluster (remove_nodes.yml); only nodes' addresses are accepted, theirs no longer.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Write the host firewall's rules
  ansible.builtin.template:
    src: firewall.nft.j2
    dest: /etc/kubeforge-firewall.nft
    mode: "0600"
  vars:
    rules: "{{ inventory_hostname | kubeforge.cluster.firewall_rules(groups, hostvars, prepare_firewall_settings) }}"
"""

RETURN = r"""
_value:
  description: The host's rules in a stable order, each C(match) (an nftables expression, C(accept) is added by the template) and C(comment).
  type: list
  elements: dict
  sample:
    - match: tcp dport 22
      comment: SSH (Ansible)
    - match: "ip saddr { 10.0.0.11, 10.0.0.21 } udp dport 8472"
      comment: flannel VXLAN from the nodes
"""

import ipaddress
import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.kubeforge.cluster.plugins.module_utils._inventory import node_address

# Every port a phase needs on a host: (settings key, protocols, inventory group of the hosts that open it,
# who may connect, why). Sources: "any", or "nodes" (the addresses of the k8s_cluster hosts only).
# A TCP port open to any source is one whose server authenticates every client by certificate or
# token; VXLAN authenticates nothing, so only the nodes may send to it.
CATALOGUE = (
    ("ssh_port", ("tcp",), None, "any", "SSH (Ansible)"),
    ("apiserver_port", ("tcp",), "kube_control_plane", "any", "kube-apiserver"),
    ("etcd_client_port", ("tcp",), "etcd", "any", "etcd clients"),
    ("etcd_peer_port", ("tcp",), "etcd", "any", "etcd peers"),
    ("kubelet_port", ("tcp",), "k8s_cluster", "any", "kubelet API"),
    ("node_port_range", ("tcp", "udp"), "k8s_cluster", "any", "NodePort services"),
    ("flannel_vxlan_port", ("udp",), "k8s_cluster", "nodes", "flannel VXLAN from the nodes"),
)
PROTOCOLS = ("tcp", "udp")
_RANGE = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")


def _ports(value, problems: list, what: str) -> str | None:
    """An nftables port or range (``6443``, ``30000-32767``) from an int or string, else a problem."""
    match = _RANGE.match(str(value).strip())
    if match:
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        if 1 <= low <= high <= 65535:
            return str(low) if low == high else f"{low}-{high}"
    problems.append(f"{what} {value!r} is not a port or a LOW-HIGH port range")
    return None


def _families(addresses) -> list[tuple[str, list[str]]]:
    """[(nftables family keyword, addresses)] for IPv4 then IPv6, the families present only."""
    v4 = [str(address) for address in addresses if address.version == 4]
    v6 = [str(address) for address in addresses if address.version == 6]
    return [(family, found) for family, found in (("ip", v4), ("ip6", v6)) if found]


def firewall_rules(host: str, groups: Mapping, hostvars: Mapping, settings: Mapping, leaving=()) -> list[dict]:
    """The rules of ``host``: each phase's ports (by the host's groups) and the extra ports.

    ``leaving``: nodes being removed from the cluster, whose addresses the rules no longer accept.
    """
    problems: list[str] = []
    member = {group for group in ("kube_control_plane", "etcd", "k8s_cluster") if host in (groups.get(group) or [])}
    nodes = []
    for name in groups.get("k8s_cluster") or []:
        if name in leaving:
            continue
        address = node_address(hostvars.get(name), name)
        try:
            nodes.append(ipaddress.ip_address(address))
        except ValueError:
            problems.append(f"host {name!r} has no IP address ({address!r})")
    rules = []
    for key, protocols, group, sources, why in CATALOGUE:
        if group is not None and group not in member:
            continue
        if key == "flannel_vxlan_port" and settings.get("flannel_backend") != "vxlan":
            continue  # host-gw only routes: no port
        ports = _ports(settings.get(key), problems, key)
        if ports is None:
            continue
        for protocol in protocols:
            if sources == "any":
                rules.append({"match": f"{protocol} dport {ports}", "comment": why})
            for family, addresses in _families(nodes) if sources == "nodes" else []:
                rules.append({"match": f"{family} saddr {{ {', '.join(addresses)} }} {protocol} dport {ports}", "comment": why})
    if "k8s_cluster" in member and settings.get("kube_proxy_mode") == "ipvs":
        # IPVS answers for Service addresses on the node itself (kube-ipvs0): they arrive as input.
        try:
            network = ipaddress.ip_network(str(settings.get("service_cidr")), strict=True)
        except ValueError:
            problems.append(f"service_cidr {settings.get('service_cidr')!r} is not a CIDR")
        else:
            rules.append({"match": f"{'ip' if network.version == 4 else 'ip6'} daddr {network}", "comment": "Service addresses (kube-proxy IPVS)"})
    for entry in settings.get("extra_ports") or []:
        port, _slash, protocol = str(entry).partition("/")
        ports = _ports(port, problems, f"prepare_firewall_extra_ports entry {entry!r}:")
        if protocol not in PROTOCOLS:
            problems.append(f"prepare_firewall_extra_ports entry {entry!r}: give PORT/PROTO with PROTO one of {', '.join(PROTOCOLS)}")
        elif ports is not None:
            rules.append({"match": f"{protocol} dport {ports}", "comment": "prepare_firewall_extra_ports"})
    if problems:
        raise AnsibleFilterError("firewall_rules: " + "; ".join(problems))
    return rules


class FilterModule:
    """kubeforge.cluster host firewall filter."""

    def filters(self):
        return {"firewall_rules": firewall_rules}

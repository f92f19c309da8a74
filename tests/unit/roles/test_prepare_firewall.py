# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The prepare role's host firewall (prepare_firewall: manage): the nftables ruleset the role's
template task writes, rendered by Ansible's own templating from the sample inventory and the role's
variables, per kind of host; the settings it follows; nft's own check of the text where nft can
run; and the port tables of the docs, which must list what the rules open."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml
from ansible.errors import AnsibleError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from test_node_manifests import ROLES, variables, written_file

from ansible_collections.kubeforge.cluster.plugins.filter.firewall_rules import CATALOGUE, firewall_rules

# Ansible's plugin and collection loaders for every test here (tests/unit/roles/conftest.py).
pytestmark = pytest.mark.usefixtures("ansible_plugin_loader")
REPO = os.path.dirname(ROLES)
NODES = "{ 192.168.56.11, 192.168.56.12, 192.168.56.13, 192.168.56.21 }"
ALWAYS = {'iif "lo"', "ct state established,related", "meta l4proto { icmp, ipv6-icmp }", "ip6 saddr fe80::/10 udp dport 546",
          "tcp dport 22"}
NODE = {"tcp dport 10250", "tcp dport 30000-32767", "udp dport 30000-32767", f"ip saddr {NODES} udp dport 8472",
        "ip daddr 10.96.0.0/12"}  # the sample runs kube-proxy in IPVS mode
CONTROL_PLANE_ETCD = {"tcp dport 6443", "tcp dport 2379", "tcp dport 2380"}


def ruleset(host: str = "cp1", **settings) -> str:
    """The file the role writes on ``host``. Ansible's Templar cannot load the collection's filters in
    this test session (the collection is imported before its loader): prepare_firewall_settings is
    templated as the role templates it, and the role's one filter call is made here."""
    scope = variables("prepare", host, {}, settings, ROLES)
    rendered = Templar(loader=DataLoader(), variables=scope).template(scope["prepare_firewall_settings"])
    rules = firewall_rules(host, scope["groups"], scope["hostvars"], rendered)
    return written_file("prepare", "firewall.nft.j2", host=host, prepare_firewall_rules=rules, **settings)


def test_the_role_computes_the_rules_with_the_filter():
    with open(os.path.join(ROLES, "prepare", "vars", "main.yml"), encoding="utf-8") as handle:
        assert yaml.safe_load(handle)["prepare_firewall_rules"] == (
            "{{ inventory_hostname | kubeforge.cluster.firewall_rules(groups, hostvars, prepare_firewall_settings,"
            " leaving=kubeforge_hosts_leaving | default([])) }}")


def test_a_leaving_node_is_no_longer_a_vxlan_source():
    """remove_nodes.yml renders the staying hosts' rules with the leaving node: its address goes."""
    scope = variables("prepare", "cp1", {}, {}, ROLES)
    rendered = Templar(loader=DataLoader(), variables=scope).template(scope["prepare_firewall_settings"])
    rules = {rule["match"] for rule in firewall_rules("cp1", scope["groups"], scope["hostvars"], rendered, leaving=["w1"])}
    assert "ip saddr { 192.168.56.11, 192.168.56.12, 192.168.56.13 } udp dport 8472" in rules
    assert f"ip saddr {NODES} udp dport 8472" not in rules


def accepted(text: str) -> set:
    """The match of every accept rule of the input chain."""
    return {match.strip() for match in re.findall(r"^\s*(.+?) accept(?: comment \"[^\"]*\")?$", text, re.M)}


@pytest.mark.parametrize("host, expected", [
    ("cp1", ALWAYS | NODE | CONTROL_PLANE_ETCD),  # control plane, etcd member and node
    ("w1", ALWAYS | NODE),                        # worker: no apiserver, no etcd
])
def test_each_host_opens_exactly_the_ports_of_its_phases(host, expected):
    text = ruleset(host)
    assert "type filter hook input priority filter; policy drop;" in text
    assert accepted(text) == expected
    # Loading replaces kubeforge's table alone: never a flush of kube-proxy's or flannel's rules.
    assert "flush ruleset" not in text and text.count("delete table inet kubeforge") == 1


def test_an_etcd_only_host_opens_ssh_and_etcd():
    groups = {"all": ["cp1", "e1", "w1"], "etcd": ["e1"], "kube_control_plane": ["cp1"], "k8s_cluster": ["cp1", "w1"]}
    hostvars = {"cp1": {"kubeforge_node_ip": "10.0.0.1"}, "e1": {"ansible_host": "10.0.0.9"}, "w1": {"kubeforge_node_ip": "fd00::21"}}
    settings = {"ssh_port": "2222", "etcd_client_port": 2379, "etcd_peer_port": 2380, "flannel_backend": "vxlan", "flannel_vxlan_port": 8472,
                "apiserver_port": 6443, "kubelet_port": 10250, "node_port_range": "30000-32767", "kube_proxy_mode": "ipvs",
                "service_cidr": "10.96.0.0/12"}
    assert [rule["match"] for rule in firewall_rules("e1", groups, hostvars, settings)] == ["tcp dport 2222", "tcp dport 2379", "tcp dport 2380"]
    # VXLAN from each family's node addresses.
    matches = [rule["match"] for rule in firewall_rules("w1", groups, hostvars, settings)]
    assert "ip saddr { 10.0.0.1 } udp dport 8472" in matches and "ip6 saddr { fd00::21 } udp dport 8472" in matches


@pytest.mark.parametrize("settings, opened, closed", [
    ({"etcd_client_port": 12379, "etcd_peer_port": "12380"}, {"tcp dport 12379", "tcp dport 12380"}, {"tcp dport 2379", "tcp dport 2380"}),
    ({"kube_apiserver_port": 8443}, {"tcp dport 8443"}, {"tcp dport 6443"}),
    ({"flannel_vxlan_port": 4789}, {f"ip saddr {NODES} udp dport 4789"}, {f"ip saddr {NODES} udp dport 8472"}),
    ({"flannel_backend": "host-gw"}, set(), {f"ip saddr {NODES} udp dport 8472"}),
    ({"kube_proxy_mode": "iptables"}, set(), {"ip daddr 10.96.0.0/12"}),
    ({"kube_apiserver_extra_args": {"service-node-port-range": "31000-31999"}}, {"tcp dport 31000-31999", "udp dport 31000-31999"},
     {"tcp dport 30000-32767"}),
    ({"ansible_port": 2222}, {"tcp dport 2222"}, {"tcp dport 22"}),
    ({"kubelet_config_extra": {"port": 11250}}, {"tcp dport 11250"}, {"tcp dport 10250"}),
    # The kubelet's flag wins over its configuration field.
    ({"kubelet_config_extra": {"port": 11250}, "kubelet_extra_args": {"port": 12250}}, {"tcp dport 12250"}, {"tcp dport 10250", "tcp dport 11250"}),
    ({"prepare_firewall_extra_ports": ["9100/tcp", "8000-8080/udp"]}, {"tcp dport 9100", "udp dport 8000-8080"}, set()),
])
def test_the_rules_follow_the_settings(settings, opened, closed):
    rules = accepted(ruleset("cp1", **settings))
    assert opened <= rules and not closed & rules, sorted(rules)


def test_bad_ports_are_all_named_in_one_message():
    with pytest.raises(AnsibleError) as failure:
        ruleset("cp1", prepare_firewall_extra_ports=["9100", "70000/tcp", "22/icmp"], etcd_client_port="x")
    message = str(failure.value)
    for fragment in ("etcd_client_port 'x' is not a port", "'9100': give PORT/PROTO", "'70000' is not a port", "'22/icmp': give PORT/PROTO"):
        assert fragment in message, message


def test_nft_accepts_the_ruleset(tmp_path):
    """nft -c: parsed and checked by the kernel without being loaded (needs nft and CAP_NET_ADMIN)."""
    nft = shutil.which("nft") or "/usr/sbin/nft"
    if not os.access(nft, os.X_OK):
        pytest.skip("no nft here")
    path = tmp_path / "kubeforge.nft"
    path.write_text(ruleset("cp1", prepare_firewall_extra_ports=["9100/tcp"]))
    done = subprocess.run([nft, "-c", "-f", str(path)], capture_output=True, text=True, check=False, timeout=30)
    if done.returncode != 0 and "Operation not permitted" in done.stderr:
        pytest.skip("nft may not talk to the kernel here")
    assert done.returncode == 0, done.stderr


def table_rows(path: str, heading: str) -> list[list[str]]:
    """The cells of the markdown table that follows ``heading`` in ``path``."""
    with open(os.path.join(REPO, path), encoding="utf-8") as handle:
        text = handle.read()
    section = text[text.index(heading):]
    rows = []
    for line in section.splitlines()[1:]:
        if rows and not line.startswith("|"):
            break
        if line.startswith("|") and not set(line) <= set("|- "):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[1:]  # without the header


@pytest.mark.parametrize("path, heading", [("roles/prepare/README.md", "## Host firewall"), ("docs/firewall.md", "## Ports")])
def test_the_docs_list_every_port_the_rules_open(path, heading):
    """Each row: port (its setting), protocols, hosts, sources, purpose. With the sample's settings,
    the ports and protocols of the table are those the rules of a host in every group open."""
    rows = table_rows(path, heading)
    documented = set()
    for port, protocols, *_rest in rows:
        number = re.match(r"`([0-9-]+)`", port)
        assert number, f"{path}: {port!r} does not start with the default port"
        documented |= {f"{protocol.strip()} dport {number.group(1)}" for protocol in protocols.split(",")}
    opened = {re.sub(r"^ip saddr \{[^}]*\} ", "", rule) for rule in accepted(ruleset("cp1"))
              if re.search(r"\b(tcp|udp) dport [0-9-]+$", rule) and "fe80::" not in rule}
    assert documented == opened
    assert len(rows) == len(CATALOGUE)

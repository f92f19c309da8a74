# SPDX-License-Identifier: GPL-3.0-or-later
"""kubeforge's host firewall (prepare_firewall: manage, the default) as site.yml left it: loaded on
every host with a drop policy and the ports of the host's phases (docs/firewall.md), and dropping
what no phase opens while the rest of the verifier (API, kubelets, etcd, NodePort, pod network
across nodes) works through it. Read-only."""
from __future__ import annotations

import pytest

from kubeforge_verify import docker, docker_exec

CONTROL_PLANE = {"site-cp1": "172.30.41.11", "site-cp2": "172.30.41.12", "site-cp3": "172.30.41.13"}
HOSTS = {**CONTROL_PLANE, "site-w1": "172.30.41.21"}
EVERY_NODE = ("tcp dport 22 accept", "tcp dport 10250 accept", "tcp dport 30000-32767 accept", "udp dport 30000-32767 accept",
              "udp dport 8472 accept")
CONTROL_PLANE_AND_ETCD = ("tcp dport 6443 accept", "tcp dport 2379 accept", "tcp dport 2380 accept")
# kube-proxy's health check listens on the node address (roles/ipvs); no phase opens it.
CLOSED_PORT = 10256


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_the_firewall_is_loaded_with_exactly_the_hosts_ports(name):
    assert docker_exec(name, "systemctl", "is-active", "kubeforge-firewall").strip() == "active"
    assert docker_exec(name, "systemctl", "is-enabled", "kubeforge-firewall").strip() == "enabled"
    table = docker_exec(name, "nft", "list", "table", "inet", "kubeforge")
    assert "hook input priority filter; policy drop;" in table, table
    for rule in EVERY_NODE + (CONTROL_PLANE_AND_ETCD if name in CONTROL_PLANE else ()):
        assert rule in table, (rule, table)
    if name not in CONTROL_PLANE:
        assert not [rule for rule in CONTROL_PLANE_AND_ETCD if rule in table], table
    [vxlan] = [line for line in table.splitlines() if "udp dport 8472" in line]
    assert "ip saddr {" in vxlan and all(address in vxlan for address in HOSTS.values()), vxlan  # from the nodes only


def test_a_port_no_phase_opens_is_dropped_for_other_hosts_only():
    """site-w1's kube-proxy answers on its own address from site-w1 (loopback), while a request from
    site-cp1 gets no answer at all (dropped: curl times out, exit 28, instead of being refused)."""
    url = f"http://{HOSTS['site-w1']}:{CLOSED_PORT}/healthz"
    local = docker("exec", "site-w1", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5", url, check=False)
    assert local.returncode == 0 and local.stdout in ("200", "503"), (local.returncode, local.stdout, local.stderr)
    remote = docker("exec", "site-cp1", "curl", "-s", "-m", "3", url, check=False)
    assert remote.returncode == 28, (remote.returncode, remote.stdout, remote.stderr)

# SPDX-License-Identifier: GPL-3.0-or-later
"""What host preparation leaves on every node (read-only checks)."""
from __future__ import annotations

import pytest

CLUSTER_HOSTS = {"site-cp1": "172.30.41.11", "site-cp2": "172.30.41.12", "site-cp3": "172.30.41.13", "site-w1": "172.30.41.21"}


def test_hostname_is_the_inventory_name(host):
    assert host.check_output("hostname") == host.backend.get_hostname()


@pytest.mark.parametrize("package", ["conntrack", "socat", "ipset", "ipvsadm", "iptables", "chrony", "nginx-light", "libnginx-mod-stream"])
def test_host_packages_installed(host, package):
    assert host.package(package).is_installed


def test_nginx_has_the_stream_module(host):
    assert host.file("/etc/nginx/modules-enabled/50-mod-stream.conf").exists


def test_sysctls_persisted(host):
    conf = host.file("/etc/sysctl.d/90-kubeforge.conf")
    assert conf.user == "root" and conf.mode == 0o644
    for line in ("net.bridge.bridge-nf-call-iptables = 1", "net.bridge.bridge-nf-call-ip6tables = 1", "net.ipv4.ip_forward = 1"):
        assert line in conf.content_string


def test_forwarding_active(host):
    # Set by the harness (docker --sysctl) since the lab does not own the kernel; a node needs it.
    assert host.file("/proc/sys/net/ipv4/ip_forward").content_string.strip() == "1"


def test_kernel_modules_at_boot_without_ipvs_in_iptables_mode(host):
    modules = host.file("/etc/modules-load.d/kubeforge.conf").content_string.split()
    assert "overlay" in modules and "br_netfilter" in modules
    assert "ip_vs" not in modules  # the lab runs kube-proxy in iptables mode: no IPVS modules asked for


def test_no_swap_entry_left_active(host):
    active = [line for line in host.file("/etc/fstab").content_string.splitlines()
              if line.split() and not line.startswith("#") and len(line.split()) > 2 and line.split()[2] == "swap"]
    assert active == []


def test_etc_hosts_lists_every_cluster_host(host):
    hosts = host.file("/etc/hosts").content_string
    block = hosts.split("# BEGIN kubeforge cluster hosts")[1].split("# END kubeforge cluster hosts")[0]
    entries = dict(reversed(line.split()) for line in block.strip().splitlines())
    assert entries == CLUSTER_HOSTS

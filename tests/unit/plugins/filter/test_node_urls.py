# SPDX-License-Identifier: GPL-3.0-or-later
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubeforge.cluster.plugins.filter.node_urls import FilterModule, node_urls

HOSTVARS = {
    "m1": {"kubeforge_node_ip": "10.0.0.11", "ansible_host": "192.168.1.11"},
    "m2": {"ansible_host": "192.168.1.12"},
    "m3": {},
    "m6": {"kubeforge_node_ip": "fd00::6"},
}


def test_address_precedence_and_order():
    assert node_urls(["m3", "m1", "m2"], HOSTVARS, 2379) == [
        "https://m3:2379", "https://10.0.0.11:2379", "https://192.168.1.12:2379"]


def test_named_form_for_initial_cluster():
    assert node_urls(["m1", "m6"], HOSTVARS, "2380", named=True) == ["m1=https://10.0.0.11:2380", "m6=https://[fd00::6]:2380"]


@pytest.mark.parametrize("hosts", ["m1", ["m1", "nope"]])
def test_bad_input_is_an_error(hosts):
    with pytest.raises(AnsibleFilterError):
        node_urls(hosts, HOSTVARS, 2379)


def test_node_address_is_the_same_rule_without_a_url():
    """/etc/hosts, --node-ip and kube-proxy's bind address read the address the URLs are built from."""
    node_address = FilterModule().filters()["node_address"]
    assert [node_address(host, HOSTVARS) for host in ("m1", "m2", "m3", "m6")] == ["10.0.0.11", "192.168.1.12", "m3", "fd00::6"]
    with pytest.raises(AnsibleFilterError, match="not an inventory host"):
        node_address("nope", HOSTVARS)

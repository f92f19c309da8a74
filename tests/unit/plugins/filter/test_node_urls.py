# SPDX-License-Identifier: GPL-3.0-or-later
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.kubeforge.cluster.plugins.filter.node_urls import node_urls

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

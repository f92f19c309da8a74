# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: node_urls
short_description: HTTPS URLs of inventory hosts on a port, for etcd endpoints and initial-cluster lists
version_added: 0.1.0
description:
  - Turns a list of inventory host names into C(https://ADDRESS:PORT) URLs, the address being the host's
    C(kubeforge_node_ip), else its C(ansible_host), else its name (IPv6 in brackets).
  - With O(named=true) each entry is C(NAME=URL), the form of etcd's C(--initial-cluster).
options:
  _input:
    description: Inventory host names, in order.
    type: list
    elements: str
    required: true
  hostvars:
    description: The C(hostvars) magic variable.
    type: dict
    required: true
  port:
    description: The port of every URL.
    type: int
    required: true
  named:
    description: Prefix each URL with C(NAME=).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Every etcd member's client URL
  ansible.builtin.debug:
    msg: "{{ groups['etcd'] | kubeforge.cluster.node_urls(hostvars, 2379) }}"
  # ['https://10.0.0.11:2379', 'https://10.0.0.12:2379', 'https://10.0.0.13:2379']

- name: etcd's initial cluster
  ansible.builtin.debug:
    msg: "{{ groups['etcd'] | kubeforge.cluster.node_urls(hostvars, 2380, named=true) | join(',') }}"
  # master1=https://10.0.0.11:2380,master2=https://10.0.0.12:2380,...
"""

RETURN = r"""
_value:
  description: One URL (or C(NAME=URL)) per host, in the input's order.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.kubeforge.cluster.plugins.module_utils._inventory import node_address, url_host


def _address(host, hostvars, caller: str) -> str:
    if host not in hostvars:
        raise AnsibleFilterError(f"{caller}: {host!r} is not an inventory host")
    return node_address(hostvars[host], host)


def node_urls(hosts, hostvars, port, named=False) -> list[str]:
    if isinstance(hosts, str) or not hasattr(hosts, "__iter__"):
        raise AnsibleFilterError(f"node_urls: expected a list of host names, got {hosts!r}")
    urls = []
    for host in hosts:
        url = f"https://{url_host(_address(host, hostvars, 'node_urls'))}:{int(port)}"
        urls.append(f"{host}={url}" if named else url)
    return urls


def node_address_filter(host, hostvars) -> str:
    """The address other cluster hosts reach an inventory host on (documented in node_address.yml)."""
    return _address(host, hostvars, "node_address")


class FilterModule:
    def filters(self):
        return {"node_urls": node_urls, "node_address": node_address_filter}

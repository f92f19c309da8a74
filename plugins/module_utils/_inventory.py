# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""How the inventory names a host's address: one rule shared by preflight, the PKI plan and the roles."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping


def node_address(variables: Mapping | None, name: str) -> str:
    """The address other cluster hosts reach ``name`` on: kubeforge_node_ip, else ansible_host, else the name."""
    variables = variables or {}
    return str(variables.get("kubeforge_node_ip") or variables.get("ansible_host") or name)


def url_host(address: str) -> str:
    """An address as it goes into a URL (IPv6 in brackets)."""
    try:
        parsed = ipaddress.ip_address(str(address))
    except ValueError:
        return str(address)
    return f"[{parsed}]" if parsed.version == 6 else str(parsed)

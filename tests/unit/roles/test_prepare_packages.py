# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The prepare role's missing packages, rendered by Ansible's own templating from the role's variables: from
the installed packages the preflight's node facts read on a dpkg host, else from the package query's output."""
from __future__ import annotations

import os

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from test_node_manifests import ROLES, variables

# Ansible's plugin and collection loaders for every test here (tests/unit/roles/conftest.py).
pytestmark = pytest.mark.usefixtures("ansible_plugin_loader")

with open(os.path.join(ROLES, "prepare", "vars", "Debian.yml"), encoding="utf-8") as handle:
    DEBIAN = yaml.safe_load(handle)


def missing(**extra) -> list:
    scope = variables("prepare", "cp1", DEBIAN, {"prepare_firewall": "leave", **extra}, ROLES)
    return Templar(loader=DataLoader(), variables=scope).template(trust_as_template("{{ prepare_packages_missing }}"))


def test_the_node_facts_of_a_dpkg_host_name_what_is_missing():
    installed = [name for name in DEBIAN["prepare_packages"] if name not in ("socat", "chrony")] + ["vim"]
    assert missing(ansible_facts={"kubeforge_node": {"installed_packages": installed}}) == ["socat", "chrony"]


def test_without_them_the_package_query_says_what_is_missing():
    # dpkg-query's lines: curl unknown (no line), socat known but not installed.
    output = [f"{name} {'not-installed' if name == 'socat' else 'installed'}" for name in DEBIAN["prepare_packages"] if name != "curl"]
    query = {"stdout_lines": output}
    assert missing(ansible_facts={"kubeforge_node": {"installed_packages": None}}, prepare_packages_installed=query) == ["socat", "curl"]
    # A host the preflight did not read (no node facts at all) asks the query too.
    assert missing(prepare_packages_installed=query) == ["socat", "curl"]

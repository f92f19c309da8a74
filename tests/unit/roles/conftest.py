# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures the role tests share; a test module asks for them with
``pytestmark = pytest.mark.usefixtures("ansible_plugin_loader")``."""
from __future__ import annotations

import sys

import pytest
from ansible.plugins.loader import init_plugin_loader
from ansible.utils.collection_loader import AnsibleCollectionConfig
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder


@pytest.fixture(scope="module")
def ansible_plugin_loader():
    """Ansible's plugin and collection loaders as ansible-playbook sets them up (lookups and filters
    by their FQCN need them); taken away again after the module's tests.

    tests/conftest.py made the checkout importable as plain Python before any collection finder
    existed, so the collection's own filters (kubeforge.cluster.node_address, ...) would be "not
    found": its modules are imported again by the finder here, and the plain ones put back after."""
    if AnsibleCollectionConfig.collection_finder is not None:
        yield
        return
    saved = {name: module for name, module in sys.modules.items() if name.split(".")[0] == "ansible_collections"}
    for name in saved:
        del sys.modules[name]
    init_plugin_loader()
    yield
    _AnsibleCollectionFinder._remove()  # pylint: disable=protected-access
    for name in [name for name in sys.modules if name.split(".")[0] == "ansible_collections"]:
        del sys.modules[name]
    sys.modules.update(saved)

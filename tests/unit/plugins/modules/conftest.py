# SPDX-License-Identifier: GPL-3.0-or-later
"""What the module tests share: the host locks in a directory of each test's own, and a host lock held by a process of
its own."""
from __future__ import annotations

import importlib.util
import os

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils import _lock


@pytest.fixture(autouse=True)
def lock_dir(tmp_path_factory, monkeypatch):
    """The modules' host locks in a directory of the test's own (beside the test's files, not among them)."""
    directory = str(tmp_path_factory.mktemp("lock"))
    monkeypatch.setattr(_lock, "LOCK_DIR", directory)
    return directory


@pytest.fixture
def lock_holder():
    """tests/unit/plugins/module_utils/lock_holder.py (its ``held`` context): a host lock held by another process,
    as a module left running by a killed run holds it."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "module_utils", "lock_holder.py")
    spec = importlib.util.spec_from_file_location("lock_holder", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module

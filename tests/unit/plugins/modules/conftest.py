# SPDX-License-Identifier: GPL-3.0-or-later
"""What the module tests share: a kubeforge host lock held by a process of its own."""
from __future__ import annotations

import importlib.util
import os

import pytest


@pytest.fixture
def lock_holder():
    """tests/unit/plugins/module_utils/lock_holder.py (its ``held`` context): a host lock held by another process,
    as a module left running by a killed run holds it."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "module_utils", "lock_holder.py")
    spec = importlib.util.spec_from_file_location("lock_holder", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module

# SPDX-License-Identifier: GPL-3.0-or-later
"""What the module tests share: the host locks in a directory of each test's own, a host lock held by a process of
its own, a port nothing listens on, and a collections directory holding this checkout."""
from __future__ import annotations

import importlib.util
import os
import socket

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils import _lock
from one_task_play import collections_dir  # pylint: disable=import-error  # beside this file

# module_checks.py asserts for the tests that call it: pytest rewrites its asserts too, so a failure shows its values.
pytest.register_assert_rewrite("module_checks")


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


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that nothing listens on (bound for a moment, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def collections_path(tmp_path_factory):
    """A directory holding this checkout as kubeforge.cluster, made once a test file (one_task_play.collections_dir). Its
    ansible.cfg is empty: the checkout's callbacks would add output."""
    return collections_dir(tmp_path_factory.mktemp("collections"))

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared by the etcd benches: makes the collection and tests/integration/etcd_harness importable; loads keys.

Import it before etcd_harness and ansible_collections.kubeforge.cluster.
"""
from __future__ import annotations

import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

_ROOT = tempfile.mkdtemp(prefix="kubeforge-bench-collections-")
os.makedirs(os.path.join(_ROOT, "ansible_collections", "kubeforge"))
os.symlink(REPO, os.path.join(_ROOT, "ansible_collections", "kubeforge", "cluster"))
sys.path.insert(0, _ROOT)

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.client import op_put  # noqa: E402  (needs the path above)


def load(client, prefix: bytes, keys: int, value_size: int) -> int:
    """keys keys of value_size bytes under prefix, in 128-op transactions; the last revision."""
    revision = 0
    value = b"x" * value_size
    for start in range(0, keys, 128):
        revision = client.txn([op_put(prefix + b"%08d" % i, value) for i in range(start, min(keys, start + 128))])[1]
    return revision

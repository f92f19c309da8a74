# SPDX-License-Identifier: GPL-3.0-or-later
"""Make this checkout importable as ansible_collections.kubeforge.cluster for plain pytest.

Ansible finds a collection only under an ``ansible_collections/<namespace>/<name>`` path. The
checkout is linked into such a path in a temporary directory, which is put first on sys.path and
removed when pytest exits (only the link and its directories: rmtree does not follow a link).
"""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ROOT = tempfile.mkdtemp(prefix="kubeforge-collections-")
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
os.makedirs(os.path.join(_ROOT, "ansible_collections", "kubeforge"))
os.symlink(_REPO, os.path.join(_ROOT, "ansible_collections", "kubeforge", "cluster"))
sys.path.insert(0, _ROOT)

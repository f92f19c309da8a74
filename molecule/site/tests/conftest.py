# SPDX-License-Identifier: GPL-3.0-or-later
"""The verifier's imports: the shared helpers (molecule/_shared/kubeforge_verify.py), and the
collection's own etcd client (module_utils/_etcd), so the collection must be importable: `make
collection` links it under .cache/collections."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "_shared"))
sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], ".cache", "collections"))

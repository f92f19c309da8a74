# SPDX-License-Identifier: GPL-3.0-or-later
"""The verifier talks to etcd from the controller with the collection's own client (module_utils/_etcd),
so the collection must be importable: `make collection` links it under .cache/collections."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], ".cache", "collections"))

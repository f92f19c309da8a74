# SPDX-License-Identifier: GPL-3.0-or-later
"""The verifier's shared helpers: molecule/_shared/kubeforge_verify.py."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "_shared"))

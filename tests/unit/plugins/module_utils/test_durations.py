# SPDX-License-Identifier: GPL-3.0-or-later
"""Go durations read as the Kubernetes components read them (time.ParseDuration)."""
from __future__ import annotations

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils import _durations


@pytest.mark.parametrize("text, seconds", [
    ("60s", 60), ("1m30s", 90), ("1.5h", 5400), ("2h45m0.5s", 9900.5), ("500ms", 0.5), ("0", 0), ("0s", 0), ("-5s", -5),
    ("60", None), ("1d", None), ("s", None), (".s", None), ("", None), (60, None), (None, None),
])
def test_go_durations_are_read_as_the_kubelet_reads_them(text, seconds):
    assert _durations.go_duration_seconds(text) == seconds

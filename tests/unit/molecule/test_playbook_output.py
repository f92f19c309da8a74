# SPDX-License-Identifier: GPL-3.0-or-later
"""The molecule verifiers' readings of ansible-playbook output (molecule/_shared/kubeforge_verify.py): the
recap's counts, and the tasks that changed, which an assertion on those counts shows when it fails."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "molecule", "_shared"))
from kubeforge_verify import changed_tasks, recap  # noqa: E402  # pylint: disable=import-error,wrong-import-position

# The shape of the YAML callback's output, coloured as on a terminal.
OUTPUT = """\
PLAY [Container runtime - containerd, runc, CNI plugins] ***********************

TASK [kubeforge.cluster.container_runtime : Write the containerd config] *******
ok: [site-cp1]
\x1b[0;33mchanged: [site-w1]\x1b[0m

TASK [kubeforge.cluster.container_runtime : Import the images it does not have yet] ***
changed: [site-cp1]
changed: [site-w1]

TASK [kubeforge.cluster.kubelet_bootstrap : Approve each kubelet's serving certificate request] ***
changed: [site-w1 -> localhost] => (item=site-w1)
changed: [site-w1 -> localhost] => (item=site-w2)
skipping: [site-cp1]

PLAY RECAP *********************************************************************
site-cp1                   : ok=2    changed=1    unreachable=0    failed=0    skipped=1    rescued=0    ignored=0
site-w1                    : ok=3    changed=3    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
"""


def test_changed_tasks_names_each_task_that_changed_a_host_once():
    assert changed_tasks(OUTPUT) == {
        "site-w1": ["kubeforge.cluster.container_runtime : Write the containerd config",
                    "kubeforge.cluster.container_runtime : Import the images it does not have yet",
                    "kubeforge.cluster.kubelet_bootstrap : Approve each kubelet's serving certificate request"],
        "site-cp1": ["kubeforge.cluster.container_runtime : Import the images it does not have yet"],
    }


def test_recap_counts_per_host():
    counts = recap(OUTPUT)
    assert {host: (c["ok"], c["changed"], c["skipped"]) for host, c in counts.items()} == {"site-cp1": (2, 1, 1), "site-w1": (3, 3, 0)}


def test_a_run_without_changes_names_none():
    assert changed_tasks("TASK [x] ***\nok: [site-cp1]\n") == {}

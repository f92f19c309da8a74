# SPDX-License-Identifier: GPL-3.0-or-later
"""tests/harness/failure_digest.py: what .ci/run prints last when `make test` fails."""
from __future__ import annotations

import importlib.util
import os

HARNESS = os.path.join(os.path.dirname(__file__), "..", "..", "harness")
SPEC = importlib.util.spec_from_file_location("failure_digest", os.path.join(HARNESS, "failure_digest.py"))
failure_digest = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(failure_digest)

# The shape of a molecule side_effect step whose pytest command failed (Ansible's YAML results, molecule's box).
MOLECULE_LOG = """\
\x1b[36mINFO    \x1b[0m site ➜ side_effect: Executing
  \x1b[2m│\x1b[0m TASK [Run the fault tests with pytest on the controller]
  \x1b[2m│\x1b[0m [ERROR]: Task failed: Module failed: non-zero return code
  \x1b[2m│\x1b[0m fatal: [localhost]: FAILED! =>
  \x1b[2m│\x1b[0m     stdout: |-
  \x1b[2m│\x1b[0m         ...........F.
  \x1b[2m│\x1b[0m         ___ test_renew_certs_restarts ___
  \x1b[2m│\x1b[0m         E   AssertionError: poller: 640 requests, 3 failed
  \x1b[2m│\x1b[0m         FAILED faults/test_faults.py::test_renew_certs_restarts - AssertionError: poller: 640 requests, 3 failed
  \x1b[2m│\x1b[0m         ==== 1 failed, 11 passed in 560.00s (0:09:20) ====
  \x1b[2m│\x1b[0m TASK [Destroy molecule instance(s)]
  \x1b[2m│\x1b[0m ok: [localhost]
make: *** [Makefile:93: molecule] Error 2
"""


def test_the_failure_lines_are_kept_in_order_without_the_decoration():
    assert failure_digest.digest(MOLECULE_LOG) == [
        "[ERROR]: Task failed: Module failed: non-zero return code",
        "fatal: [localhost]: FAILED! =>",
        "___ test_renew_certs_restarts ___",
        "E   AssertionError: poller: 640 requests, 3 failed",
        "FAILED faults/test_faults.py::test_renew_certs_restarts - AssertionError: poller: 640 requests, 3 failed",
        "==== 1 failed, 11 passed in 560.00s (0:09:20) ====",
        "make: *** [Makefile:93: molecule] Error 2",
    ]


def test_output_printed_as_one_json_string_is_split_into_lines():
    log = 'fatal: [localhost]: FAILED! => {"rc": 1, "stdout": "..F\\nE   assert 3 == 0\\nFAILED t.py::test_x - assert 3 == 0"}\n'
    assert failure_digest.digest(log)[1:] == ["E   assert 3 == 0", "FAILED t.py::test_x - assert 3 == 0"]


def test_a_passing_run_gives_nothing_and_repeats_are_shown_once():
    passing = "==== 176 passed in 247.26s (0:04:07) ====\nok: [site-cp1]\n"
    assert failure_digest.digest(passing) == []
    assert failure_digest.digest("E   x\nE   x\nE   y\n") == ["E   x", "E   y"]


def test_only_the_last_lines_are_kept():
    log = "".join(f"E   line {number}\n" for number in range(100))
    assert failure_digest.digest(log, max_lines=3) == ["E   line 97", "E   line 98", "E   line 99"]

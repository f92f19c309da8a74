# SPDX-License-Identifier: GPL-3.0-or-later
"""Every molecule scenario runs in `make test` or in `make test-all`, exactly once: a new scenario
cannot be left out of both."""
from __future__ import annotations

import glob
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def make_list(name: str) -> list[str]:
    with open(os.path.join(REPO, "Makefile"), encoding="utf-8") as handle:
        match = re.search(rf"^{name} := (.*)$", handle.read(), re.M)
    assert match, f"the Makefile defines no {name}"
    return match.group(1).split()


def test_every_scenario_is_in_one_suite():
    scenarios = sorted(os.path.basename(os.path.dirname(path)) for path in glob.glob(os.path.join(REPO, "molecule", "*", "molecule.yml")))
    fast, day2 = make_list("SCENARIOS"), make_list("SCENARIOS_DAY2")
    assert sorted(fast + day2) == scenarios
    assert not set(fast) & set(day2)


def test_test_all_runs_make_test_then_the_day2_scenarios():
    with open(os.path.join(REPO, "Makefile"), encoding="utf-8") as handle:
        text = handle.read()
    assert re.search(r"^test-all: test molecule-day2$", text, re.M)
    assert "for scenario in $(SCENARIOS_DAY2)" in text

# SPDX-License-Identifier: GPL-3.0-or-later
"""Every entry playbook runs the preflight first, and exactly once: site.yml, each day-2 playbook
and each phase playbook run on its own. Read from `ansible-playbook --list-hosts` (imports expanded
and play host patterns templated as a run does them; no host is contacted)."""
from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

import pytest
import yaml

from ansible_collections.kubeforge.cluster.plugins.module_utils import _phases

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
PREFLIGHT = "Preflight - validate the inventory"
ENTRY = sorted(["site.yml"] + [os.path.relpath(path, REPO) for path in glob.glob(os.path.join(REPO, "playbooks", "*.yml"))
                               + glob.glob(os.path.join(REPO, "playbooks", "phases", "*.yml")) if not path.endswith("preflight.yml")])

pytestmark = pytest.mark.skipif(not os.path.exists(PLAYBOOK), reason="needs ansible-playbook beside this Python")


@pytest.fixture(scope="module")
def plays() -> dict:
    """{playbook: [(play name, number of hosts)]} for every entry playbook, in run order."""
    env = {**os.environ, "ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CACHE_PLUGIN": "memory"}
    done = subprocess.run([PLAYBOOK, *ENTRY, "-i", "inventory/sample", "--list-hosts"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    found: dict = {}
    current = None
    for line in done.stdout.splitlines():
        if line.startswith("playbook: "):
            current = found.setdefault(line.split(": ", 1)[1].strip(), [])
        elif match := re.match(r"\s+play #\d+ \(.*?\): (.*?)\tTAGS", line):
            current.append([match.group(1), None])
        elif match := re.match(r"\s+hosts \((\d+)\):", line):
            current[-1][1] = int(match.group(1))
    return found


def test_every_entry_playbook_is_listed(plays):
    assert sorted(plays) == ENTRY


@pytest.mark.parametrize("playbook", ENTRY)
def test_the_preflight_runs_first_and_once(plays, playbook):
    listed = plays[playbook]
    running = [name for name, hosts in listed if name.startswith(PREFLIGHT) and hosts]
    assert listed[0][0].startswith(PREFLIGHT) and listed[0][1] > 0, listed
    assert len(running) == 1, listed


def test_site_imports_the_phases_without_their_preflight(plays):
    """Each phase, run on its own, has its preflight; site.yml runs one for all of them."""
    skipped = [name for name, hosts in plays["site.yml"] if name.startswith(PREFLIGHT) and hosts == 0]
    assert len(skipped) == len(glob.glob(os.path.join(REPO, "playbooks", "phases", "*.yml")))


def test_etcd_migrate_opens_the_etcd_ports_on_every_etcd_host_before_any_etcd_play(plays):
    """The hosts joining etcd were prepared (their firewall written) before they were in the etcd
    group: the migration opens the etcd ports on the whole group before it reads or starts etcd."""
    names = [name for name, _hosts in plays["playbooks/etcd_migrate.yml"]]
    firewall = names.index("Etcd migrate - open the etcd ports in the host firewall")
    first_etcd = min(index for index, name in enumerate(names) if name.startswith("Etcd migrate - ") and index != firewall)
    assert firewall < first_etcd, names
    assert dict(plays["playbooks/etcd_migrate.yml"])[names[firewall]] == dict(plays["playbooks/etcd_migrate.yml"])[names[first_etcd]], names


def test_the_phases_the_preflight_knows_are_site_ymls_in_its_order_and_each_phase_playbook_names_its_own():
    """_phases.ORDER (the phase-order rule's) must follow site.yml: a phase added or moved there is a phase the rule
    would not know."""
    with open(os.path.join(REPO, "site.yml"), encoding="utf-8") as handle:
        site = yaml.safe_load(handle)
    imported = [os.path.basename(play["ansible.builtin.import_playbook"])[:-len(".yml")] for play in site
                if str(play.get("ansible.builtin.import_playbook", "")).startswith("playbooks/phases/")]
    assert tuple(imported) == _phases.ORDER
    assert site[0]["vars"] == {"kubeforge_preflight_phases": "all"}
    for phase in _phases.ORDER:
        with open(os.path.join(REPO, "playbooks", "phases", f"{phase}.yml"), encoding="utf-8") as handle:
            assert yaml.safe_load(handle)[0]["vars"] == {"kubeforge_preflight_phases": [phase]}, phase

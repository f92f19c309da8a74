# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The etcd role's cluster token, its own task expressions templated by Ansible's Templar as a run
would, against a controller credentials directory in tmp_path: a bootstrap takes a new token and
keeps it with the credentials, an existing cluster leaves the file alone, a second cluster on the
same hosts (a migration) gets another token, only a bootstrapping member's first-start settings
carry it, and a restore records its own."""
from __future__ import annotations

import importlib
import json
import os
import sys

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template
from ansible.utils.collection_loader import AnsibleCollectionConfig
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd import cluster_token

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(REPO, "roles", "etcd")
NODE_IPS = {"e1": "10.0.0.11", "e2": "10.0.0.12", "e3": "10.0.0.13"}


@pytest.fixture(scope="module", autouse=True)
def ansible_plugin_loader():
    """Ansible's plugin and collection loaders as ansible-playbook sets them up (filters by FQCN).

    tests/conftest.py made the collection importable before Ansible's collection finder was
    installed, so the package lacks the routing metadata the finder would have attached: attach
    meta/runtime.yml as the finder does, or the collection's filters are "not found"."""
    package = importlib.import_module("ansible_collections.kubeforge.cluster")
    if getattr(package, "_collection_meta", None) is None:
        with open(os.path.join(REPO, "meta", "runtime.yml"), encoding="utf-8") as handle:
            package._collection_meta = yaml.safe_load(handle) or {}  # pylint: disable=protected-access
    # Filter modules another test imported as plain Python are loaded again by Ansible's loader.
    for name in [name for name in sys.modules if name.startswith("ansible_collections.kubeforge.cluster.plugins.filter")]:
        del sys.modules[name]
    if AnsibleCollectionConfig.collection_finder is not None:
        yield
        return
    init_plugin_loader()
    yield
    _AnsibleCollectionFinder._remove()  # pylint: disable=protected-access


def _load(*parts: str):
    return DataLoader().load_from_file(os.path.join(ROLE, *parts), cache="none", trusted_as_template=True) or {}


def task(tasks_file: str, name_start: str) -> dict:
    [found] = [t for t in _load("tasks", tasks_file) if t["name"].startswith(name_start)]
    return found


def scope(credentials: str, with_data=(), group: str = "etcd", hosts=tuple(NODE_IPS), **extra) -> dict:
    """What a task of the role sees: defaults < the cluster-wide settings < role vars < task vars (extra)."""
    found = dict(_load("defaults", "main.yml"))
    found.update({"kubeforge_credentials_dir": credentials, "etcd_cluster_group": group,
                  "groups": {"all": list(NODE_IPS), "etcd": list(NODE_IPS), group: list(hosts)}, "ansible_play_hosts": list(hosts),
                  "hostvars": {h: {"inventory_hostname": h, "kubeforge_node_ip": ip, "etcd_data": {"rc": 0 if h in with_data else 1}}
                               for h, ip in NODE_IPS.items()},
                  "inventory_hostname": hosts[0]})
    found.update(_load("vars", "main.yml"))
    found.update(extra)
    return found


def template(value, variables: dict):
    return Templar(loader=DataLoader(), variables=variables).template(value)


def decide(credentials: str, **kwargs) -> dict:
    """The facts "Decide between bootstrapping and joining" sets, and the token file as its copy task then leaves it."""
    decided = task("configure.yml", "Decide between bootstrapping and joining")
    variables = scope(credentials, **kwargs, **decided["vars"])
    facts = {name: template(value, variables) for name, value in decided["ansible.builtin.set_fact"].items()}
    keep = task("cluster.yml", "Keep the new cluster's token")
    variables.update(facts)
    if template(trust_as_template("{{ " + keep["when"] + " }}"), variables):
        content = template(keep["ansible.builtin.copy"]["content"], variables)
        with open(template(keep["ansible.builtin.copy"]["dest"], variables), "w", encoding="utf-8") as handle:
            handle.write(content)
    return facts


def token_file(credentials: str) -> dict:
    with open(os.path.join(credentials, cluster_token.FILE_NAME), encoding="utf-8") as handle:
        return json.load(handle)


def initial_env(tasks_file: str, name_start: str, variables: dict) -> str:
    """The etcd-initial.env the role's template task writes, rendered as the template action renders it."""
    written = task(tasks_file, name_start)
    assert "notify" not in written, "writing the first-start settings must never restart a running member"
    variables = dict(variables, **written.get("vars", {}))
    with open(os.path.join(ROLE, "templates", written["ansible.builtin.template"]["src"]), encoding="utf-8") as handle:
        text = trust_as_template(handle.read())
    templar = Templar(loader=DataLoader(), variables=variables)
    return templar.copy_with_new_env(available_variables=variables).template(
        text, escape_backslashes=False, overrides={"trim_blocks": True, "lstrip_blocks": False, "newline_sequence": "\n"})


def test_a_bootstrap_keeps_a_new_token_and_an_existing_cluster_leaves_it(tmp_path):
    credentials = str(tmp_path)
    first = decide(credentials)
    assert first["etcd_bootstrap"] and first["etcd_cluster_tokens"]["current"].startswith("kubeforge-")
    saved = token_file(credentials)
    assert saved == first["etcd_cluster_tokens"] and saved["clusters"][0]["initial_cluster"] == (
        "e1=https://10.0.0.11:2380,e2=https://10.0.0.12:2380,e3=https://10.0.0.13:2380")
    env = initial_env("cluster.yml", "Write the first-start settings of a new cluster", scope(credentials, **first))
    assert cluster_token.parse_initial_env(env) == {"token": saved["current"], "state": "new",
                                                    "initial_cluster": saved["clusters"][0]["initial_cluster"]}
    # Every later run on the cluster (members with data) leaves the file as it is.
    for with_data in (tuple(NODE_IPS), ("e1",)):
        later = decide(credentials, with_data=with_data)
        assert not later["etcd_bootstrap"] and later["etcd_cluster_tokens"] == {}
        assert token_file(credentials) == saved


def test_a_second_cluster_on_the_same_hosts_gets_another_token(tmp_path):
    """etcd_migrate.yml (mirror) bootstraps a new cluster on the other hosts, twice if migrated twice."""
    credentials = str(tmp_path)
    single = decide(credentials, hosts=("e1",))["etcd_cluster_tokens"]["current"]
    tokens = [single]
    for _migration in range(2):
        facts = decide(credentials, group="etcd_migrate_targets", hosts=("e2", "e3"))
        tokens.append(facts["etcd_cluster_tokens"]["current"])
    saved = token_file(credentials)
    assert len(set(tokens)) == 3 and [c["token"] for c in saved["clusters"]] == tokens and saved["current"] == tokens[-1]
    assert saved["clusters"][-1]["initial_cluster"] == "e2=https://10.0.0.12:2380,e3=https://10.0.0.13:2380"


def test_a_joining_member_gets_no_token(tmp_path):
    variables = scope(str(tmp_path), with_data=("e1", "e2"), etcd_joining_host="e3", etcd_joining_hosts=["e3"],
                      etcd_added={"members": [{"name": "e1", "peer_urls": ["https://10.0.0.11:2380"]},
                                              {"name": "e2", "peer_urls": ["https://10.0.0.12:2380"]}]})
    env = initial_env("join.yml", "Write the first-start settings of a host joining", variables)
    assert cluster_token.parse_initial_env(env) == {
        "token": "", "state": "existing",
        "initial_cluster": "e1=https://10.0.0.11:2380,e2=https://10.0.0.12:2380,e3=https://10.0.0.13:2380"}
    assert "TOKEN" not in env


def test_only_the_first_start_settings_carry_a_token():
    """The settings whose change restarts etcd never name a token, and the role has no constant one."""
    with open(os.path.join(ROLE, "templates", "etcd.env.j2"), encoding="utf-8") as handle:
        assert "TOKEN" not in handle.read()
    assert "etcd_cluster_token" not in _load("defaults", "main.yml")


def test_a_restore_records_the_token_it_used(tmp_path):
    credentials = str(tmp_path)
    booted = decide(credentials)["etcd_cluster_tokens"]["current"]
    snapshot = {"etcd_restore_source": {"stat": {"checksum": "0123456789abcdef" * 4}}}
    restore_args = task("restore.yml", "See which members still need the restore")["kubeforge.cluster.etcd_snapshot"]
    record = task("restore.yml", "Record the restored cluster's token")
    for _run in range(2):  # a re-run records nothing new
        variables = scope(credentials, **snapshot, **record["vars"])
        used = template(restore_args["initial_cluster_token"], variables)
        content = template(record["ansible.builtin.copy"]["content"], variables)
        with open(template(record["ansible.builtin.copy"]["dest"], variables), "w", encoding="utf-8") as handle:
            handle.write(content)
    saved = token_file(credentials)
    assert used == "kubeforge-etcd-restore-0123456789abcdef" and saved["current"] == used
    assert [(c["token"], c["how"]) for c in saved["clusters"]] == [(booted, "bootstrap"), (used, "restore")]
    assert template(restore_args["initial_cluster"], variables) == saved["clusters"][-1]["initial_cluster"]

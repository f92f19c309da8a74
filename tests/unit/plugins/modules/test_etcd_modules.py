# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""etcd_member, etcd_mirror, etcd_snapshot, etcd_defrag: documentation against argument spec, EXAMPLES, main() without etcd, and
the host lock a change takes (a holder in another process, module_utils/lock_holder.py).

Runs against real etcd are in tests/integration.
"""
from __future__ import annotations

import importlib
import importlib.util
import os

import pytest
import yaml

from ansible_collections.kubeforge.cluster.plugins.module_utils import _lock
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.client import EtcdClient
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.common import run_module
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.member import EtcdMemberBackend
from ansible_collections.kubeforge.cluster.plugins.modules import etcd_defrag, etcd_member, etcd_mirror, etcd_snapshot
from module_checks import compare, run_main  # pylint: disable=import-error  # beside this file

MODULES = {"etcd_member": etcd_member, "etcd_mirror": etcd_mirror, "etcd_snapshot": etcd_snapshot, "etcd_defrag": etcd_defrag}
FRAGMENTS = ("etcd_client", "host_lock")


def fragment(name: str) -> dict:
    module = importlib.import_module(f"ansible_collections.kubeforge.cluster.plugins.doc_fragments.{name}")
    return yaml.safe_load(module.ModuleDocFragment.DOCUMENTATION)


FRAGMENT = fragment("etcd_client")


def merged_doc(module) -> dict:
    """DOCUMENTATION with the collection's fragments merged in as Ansible merges them (module keys win per option)."""
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert [f"kubeforge.cluster.{name}" for name in FRAGMENTS] == doc["extends_documentation_fragment"]
    options: dict = {}
    for name in FRAGMENTS:
        options.update({key: dict(option) for key, option in fragment(name)["options"].items()})
    for name, option in doc["options"].items():
        options[name] = {**options.get(name, {}), **option}
    doc["options"] = options
    return doc


@pytest.mark.parametrize("name", MODULES)
def test_documentation_matches_the_argument_spec(name):
    compare(merged_doc(MODULES[name])["options"], MODULES[name].argument_spec(), "")


@pytest.mark.parametrize("name", MODULES)
def test_documented_attributes(name):
    attributes = merged_doc(MODULES[name])["attributes"]
    assert set(attributes) >= {"check_mode", "diff_mode", "idempotent"}
    assert attributes["check_mode"]["support"] == "full"
    assert all(attributes[a]["support"] in ("full", "partial", "none") for a in attributes)


@pytest.mark.parametrize("name", MODULES)
def test_examples_use_only_options_that_exist(name):
    module, spec = MODULES[name], MODULES[name].argument_spec()
    tasks = [task[f"kubeforge.cluster.{name}"] for task in yaml.safe_load(module.EXAMPLES) if f"kubeforge.cluster.{name}" in task]
    assert len(tasks) >= 3
    for args in tasks:
        assert set(args) <= set(spec), set(args) - set(spec)
        for option, value in args.items():
            if isinstance(value, dict) and "options" in spec[option]:
                assert set(value) <= set(spec[option]["options"]), set(value) - set(spec[option]["options"])
            if spec[option].get("choices"):
                assert value in spec[option]["choices"]


@pytest.mark.parametrize("name", MODULES)
def test_return_is_documented_with_samples(name):
    returned = yaml.safe_load(MODULES[name].RETURN)
    for key, entry in returned.items():
        assert {"description", "returned", "type"} <= set(entry), key
        assert "sample" in entry or "contains" in entry, key


def test_the_doc_fragment_is_the_connection_spec():
    from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.common import connection_argument_spec
    compare(FRAGMENT["options"], connection_argument_spec(), "fragment.")


def test_the_host_lock_fragment_is_the_lock_spec():
    compare(fragment("host_lock")["options"], _lock.lock_argument_spec(), "host_lock.")


@pytest.mark.parametrize("name, args, fragment", [
    ("etcd_member", {"state": "absent"}, "state is absent but any of the following are missing: name, peer_urls, id"),
    ("etcd_member", {"state": "present"}, "state is present but any of the following are missing: name, peer_urls"),
    ("etcd_member", {"state": "joined"}, "value of state must be one of"),
    ("etcd_member", {"state": "present", "name": "m1", "promote_learners": ["m1"]}, "mutually exclusive: state|promote_learners"),
    ("etcd_mirror", {"prefix": "/a/"}, "missing required arguments: destination"),
    ("etcd_mirror", {"destination": {"endpoints": ["https://b:2379"]}, "dest_prefix": "/x/", "strip_prefix": True}, "mutually exclusive"),
    ("etcd_snapshot", {"path": "/tmp/s.db", "endpoints": None}, "state is saved but all of the following are missing: endpoints"),
    ("etcd_snapshot", {"path": "/tmp/s.db", "state": "restored", "name": "m0"}, "state is restored but all of the following are missing"),
    ("etcd_defrag", {}, "missing required arguments: min_free_bytes"),
    ("etcd_defrag", {"min_free_bytes": 0, "endpoints": ["https://127.0.0.1:1", "https://127.0.0.1:2"]},
     "endpoints must name exactly one member, the one to defragment; got 2"),
])
def test_argument_errors(name, args, fragment):
    args = {"endpoints": ["https://127.0.0.1:1"], **args}
    if args["endpoints"] is None:
        del args["endpoints"]
    result = run_main(MODULES[name], args)
    assert result["failed"] and fragment in result["msg"], result["msg"]


@pytest.mark.parametrize("name, extra", [
    ("etcd_member", {}),
    ("etcd_mirror", {"destination": {"endpoints": ["https://127.0.0.1:1"]}}),
    ("etcd_snapshot", {"path": "/tmp/kubeforge-never-written.db", "method": "gateway"}),
    ("etcd_defrag", {"min_free_bytes": 0}),
])
def test_etcd_errors_become_failures(name, extra, closed_port):
    result = run_main(MODULES[name], {"endpoints": [f"https://127.0.0.1:{closed_port}"], "timeout": 0.3, **extra})
    assert result["failed"] and "cannot connect to any etcd endpoint" in result["msg"], result["msg"]


def test_bad_endpoint_is_a_failure_not_a_traceback():
    result = run_main(etcd_member, {"endpoints": ["10.0.0.1:2379"]})
    assert result["failed"] and "is not an http(s)://host:port URL" in result["msg"]


def etcd_fakes():
    """tests/unit/plugins/module_utils/_etcd/fakes.py: the transport fake of the _etcd tests."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "module_utils", "_etcd", "fakes.py")
    spec = importlib.util.spec_from_file_location("etcd_fakes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RETURN_TYPES = {"list": list, "dict": dict, "str": str, "int": int}


def test_etcd_member_read_returns_what_return_documents():
    """A read through the client over a fake transport: the keys RETURN documents as always returned, of their types,
    and nothing undocumented; the revision is the member list header's (the status answers another)."""
    header = {"cluster_id": "171", "member_id": "1", "revision": "42"}
    transport = etcd_fakes().FakeTransport({
        "/v3/cluster/member/list": {"header": header, "members": [
            {"ID": "1", "name": "m0", "peerURLs": ["https://a:2380"], "clientURLs": ["https://a:2379"]}]},
        "/v3/maintenance/status": {"header": {**header, "revision": "41"}, "leader": "1"},
    })
    result = EtcdMemberBackend(EtcdClient(transport), {}).run()
    documented = yaml.safe_load(etcd_member.RETURN)
    always = {key for key, entry in documented.items() if entry["returned"] == "always"}
    assert always <= set(result) and set(result) - {"changed", "diff"} <= set(documented), set(result) ^ set(documented)
    for key in always:
        assert isinstance(result[key], RETURN_TYPES[documented[key]["type"]]), key
    assert result["revision"] == 42 and result["leader"]["name"] == "m0" and result["cluster_id"] == "ab"


RESTORE = {"state": "restored", "path": "/tmp/kubeforge-never-read.db", "data_dir": "/tmp/kubeforge-never-restored", "name": "m0",
           "initial_cluster": "m0=https://127.0.0.1:2380", "initial_cluster_token": "t", "initial_advertise_peer_urls": ["https://127.0.0.1:2380"]}


@pytest.mark.parametrize("name, extra", [
    ("etcd_mirror", {"destination": {"endpoints": ["https://127.0.0.1:1"]}}),
    ("etcd_member", {"state": "present", "name": "m1", "peer_urls": ["https://127.0.0.1:2380"]}),
    ("etcd_member", {"state": "absent", "name": "m1"}),
    ("etcd_member", {"promote_learners": ["m1"]}),
    ("etcd_snapshot", RESTORE),
    ("etcd_defrag", {"min_free_bytes": 0}),
])
def test_a_change_refuses_while_a_left_over_run_holds_the_host_lock(name, extra, lock_dir, closed_port, lock_holder):
    with lock_holder.held(lock_dir) as (holder, _child):
        result = run_main(MODULES[name], {"endpoints": [f"https://127.0.0.1:{closed_port}"], "timeout": 0.3, "lock_timeout": 0.3, **extra})
    assert result["failed"] and f"another etcd operation holds this host's lock {lock_dir}/etcd.lock: PID {holder.pid} " in result["msg"], result
    assert result["lock_holder"]["pid"] == holder.pid and result["lock_holder"]["operation"].startswith("etcd_mirror from")


@pytest.mark.parametrize("name, extra, check_mode", [
    ("etcd_member", {}, False),  # a read
    ("etcd_member", {"state": "absent", "name": "m1"}, True),
    ("etcd_mirror", {"destination": {"endpoints": ["https://127.0.0.1:1"]}}, True),
    ("etcd_defrag", {"min_free_bytes": 0}, True),
])
def test_reads_and_check_mode_do_not_wait_for_the_host_lock(name, extra, check_mode, lock_dir, closed_port, lock_holder):
    with lock_holder.held(lock_dir):
        result = run_main(MODULES[name], {"endpoints": [f"https://127.0.0.1:{closed_port}"], "timeout": 0.3, "lock_timeout": 5, **extra},
                          check_mode=check_mode)
    assert result["failed"] and "cannot connect to any etcd endpoint" in result["msg"], result["msg"]


def test_a_change_holds_the_host_lock_while_it_runs(lock_dir, closed_port):
    """The lock is held around the module's work and named after it (seen from inside the run)."""
    seen = {}

    def run(client):
        seen.update(_lock.read_holder(_lock.lock_path("etcd", lock_dir)))
        return {"changed": False}
    module = type("Module", (), {"params": {"lock_timeout": 1.0}, "_diff": False,
                                 "exit_json": lambda self, **kw: seen.setdefault("exit", kw),
                                 "fail_json": lambda self, **kw: pytest.fail(kw["msg"])})()
    run_module(module, run, {"endpoints": [f"https://127.0.0.1:{closed_port}"]}, operation="etcd_member present m9")
    assert seen["pid"] == os.getpid() and seen["operation"] == "etcd_member present m9" and seen["exit"] == {"changed": False}
    assert _lock.read_holder(_lock.lock_path("etcd", lock_dir)) == {}

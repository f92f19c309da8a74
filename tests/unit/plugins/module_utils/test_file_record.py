# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The record of file_bundle's runs and the answer it allows without a module run (plugins/module_utils/_file_record.py):
the module's backend writes files and the record in a temporary directory, the probe is the real shell command run
here (GNU stat), and its answer must be the backend's own result for a run that changes nothing, or no answer."""
from __future__ import annotations

import os
import subprocess
from unittest import mock

import pytest

from ansible_collections.kubeforge.cluster.plugins.action import file_bundle as file_bundle_action
from ansible_collections.kubeforge.cluster.plugins.module_utils import _file_record
from ansible_collections.kubeforge.cluster.plugins.module_utils._files import FileBundleBackend, asked_state

MARKER = "# {mark} kubeforge test block"


def params(tmp_path, **changes) -> dict:
    base = {"files": [{"dest": str(tmp_path / "etc" / "app.conf"), "content": "port: 1\n", "mode": "0640"},
                      {"dest": str(tmp_path / "etc" / "hosts"), "block": "10.0.0.1 a\n", "marker": MARKER},
                      {"dest": str(tmp_path / "etc" / "keep.yaml"), "content": "first\n", "force": False}],
            "directories": [str(tmp_path / "data"), {"path": str(tmp_path / "private"), "mode": "0700"}],
            "absent": [str(tmp_path / "etc" / "old.conf")], "mode": "0644", "directory_mode": "0755",
            "running_units": [], "reload_units": [], "stopped_units": [], "owner": None, "group": None}
    base.update(changes)
    return base


def run_backend(args: dict, record: str) -> dict:
    return FileBundleBackend(args, record_path=record).run()


def probe(args: dict, record: str) -> str:
    asked = asked_state(args)
    command = _file_record.probe_command(record, [entry["dest"] for entry in asked["files"]],
                                         [path for path, _mode, _owner, _group in asked["directories"]], asked["absent"], [],
                                         _file_record.services_named(asked["files"]))
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False).stdout


def answer(args: dict, record: str):
    asked = asked_state(args)
    return _file_record.settled_result(asked["files"], asked["directories"], [], [], probe(args, record))


@pytest.fixture
def converged(tmp_path):
    """The files written once and the record of that run; (args, record path)."""
    record = str(tmp_path / "record" / "file_bundle.json")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    args = params(tmp_path)
    assert run_backend(args, record)["changed"]
    return args, record


def test_the_answer_is_the_backends_own_result_for_a_run_that_changes_nothing(converged):
    args, record = converged
    found = answer(args, record)
    again = run_backend(args, record)
    assert not again["changed"]
    assert found == again


def test_no_record_no_answer(converged, tmp_path):
    args, record = converged
    os.unlink(record)
    assert answer(args, record) is None


@pytest.mark.parametrize("change", ["content", "same size content", "mode", "removed", "block", "absent file", "directory mode"])
def test_anything_the_module_would_change_gets_no_answer(converged, tmp_path, change):
    args, record = converged
    conf = tmp_path / "etc" / "app.conf"
    if change == "content":
        args["files"][0]["content"] = "port: 22\n"
    elif change == "same size content":
        conf.write_text("port: 2\n")  # what the file holds changed on the host, with its size and (maybe) its mtime
    elif change == "mode":
        conf.chmod(0o644)
    elif change == "removed":
        conf.unlink()
    elif change == "block":
        args["files"][1]["block"] = "10.0.0.2 b\n"
    elif change == "absent file":
        (tmp_path / "etc" / "old.conf").write_text("x")
    else:
        (tmp_path / "private").chmod(0o755)
    assert answer(args, record) is None
    assert run_backend(args, record)["changed"]


def test_a_file_not_forced_is_named_stale_as_the_module_names_it(converged):
    args, record = converged
    args["files"][2]["content"] = "second\n"
    found = answer(args, record)
    assert found is not None and found["stale_files"] == [args["files"][2]["dest"]]
    assert found == run_backend(args, record)


def test_the_owner_asked_is_compared_by_name_or_id(converged):
    args, record = converged
    me = os.getuid()
    import pwd  # pylint: disable=import-outside-toplevel
    name = pwd.getpwuid(me).pw_name
    for owner, expected in ((name, True), (str(me), True), ("nobody" if name != "nobody" else "root", False)):
        args["files"][0]["owner"] = owner
        assert (answer(args, record) is not None) is expected, owner


SHOW = "Id={id}\nLoadState={load}\nActiveState={active}\nUnitFileState={file}\nNeedDaemonReload={reload}\n"


def show(*units) -> str:
    return "\n".join(SHOW.format(**dict(zip(("id", "load", "active", "file", "reload"), unit))) for unit in units)


def units_answer(running, stopped, output: str):
    sections = ['{"version": 1, "files": {}}\n', "", "", "", output, ""]
    return _file_record.settled_result([], [], running, stopped, "--kubeforge-file-record--\n".join(sections))


@pytest.mark.parametrize("states, settled", [
    ((("a.service", "loaded", "active", "enabled", "no"), ("b.service", "not-found", "inactive", "", "no")), True),
    ((("a.service", "loaded", "active", "static", "no"), ("b.service", "loaded", "failed", "disabled", "no")), True),
    ((("a.service", "loaded", "inactive", "enabled", "no"), ("b.service", "not-found", "inactive", "", "no")), False),
    ((("a.service", "loaded", "active", "disabled", "no"), ("b.service", "not-found", "inactive", "", "no")), False),
    ((("a.service", "loaded", "active", "enabled", "yes"), ("b.service", "not-found", "inactive", "", "no")), False),
    ((("a.service", "loaded", "active", "masked", "no"), ("b.service", "not-found", "inactive", "", "no")), False),
    ((("a.service", "loaded", "active", "enabled", "no"), ("b.service", "loaded", "active", "disabled", "no")), False),
    ((("a.service", "loaded", "active", "enabled", "no"), ("b.service", "loaded", "inactive", "enabled", "no")), False),
    ((("a.service", "loaded", "active", "enabled", "no"),), False),  # systemctl answered for one unit of two
])
def test_units_are_settled_only_as_the_module_leaves_them(states, settled):
    assert (units_answer(["a"], ["b"], show(*states)) is not None) is settled


FAKE_SYSTEMCTL = """#!/bin/sh
# Stand-in for systemctl show --property=ActiveState --property=InvocationID -- UNIT... (systemd is not PID 1 here):
# the IDs in $INVOCATIONS, a unit without one inactive.
shift 4
for unit in "$@"; do
  [ "$unit" = "$1" ] || echo
  id=$(sed -n "s/^$unit=//p" "$INVOCATIONS")
  if [ -n "$id" ]; then echo ActiveState=active; else echo ActiveState=inactive; fi
  echo "InvocationID=$id"
done
"""


@pytest.fixture
def invocations(tmp_path, monkeypatch):
    """Sets the running process of each service ({service: invocation ID}) that a stand-in systemctl on PATH reports."""
    bin_dir, table = tmp_path / "bin", tmp_path / "invocations"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(FAKE_SYSTEMCTL)
    (bin_dir / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("INVOCATIONS", str(table))
    return lambda running: table.write_text("".join(f"{service}={invocation}\n" for service, invocation in running.items()))


def systemctl(argv):
    run = subprocess.run(argv, capture_output=True, text=True, check=False)
    return run.returncode, run.stdout, run.stderr


def test_the_answer_names_a_restart_owed_as_the_module_does_until_the_service_starts_again(converged, invocations):
    args, record = converged
    args["files"][0]["services"] = ["app", "other"]
    invocations({"app": "a1", "other": ""})
    args["files"][0]["content"] = "port: 2\n"
    # The run that wrote the file while app ran ended before app restarted.
    assert FileBundleBackend(args, record_path=record, run_command=systemctl).run()["services_changed"] == ["app", "other"]
    found = answer(args, record)
    assert found is not None and found["services_changed"] == ["app"]
    assert found == FileBundleBackend(args, record_path=record, run_command=systemctl).run()
    invocations({"app": "a2", "other": "o1"})
    found = answer(args, record)
    assert found is not None and found["services_changed"] == []
    assert found == FileBundleBackend(args, record_path=record, run_command=systemctl).run()


# --------------------------------------------------------------------------- the action plugin

def action(args: dict):
    task = mock.MagicMock(async_val=0, check_mode=False, args=args, action="kubeforge.cluster.file_bundle", environment=[])
    connection = mock.MagicMock(transport="community.docker.docker")
    play_context = mock.MagicMock(check_mode=False, become=False)
    plugin = file_bundle_action.ActionModule(task, connection, play_context, loader=None, templar=None)
    plugin._low_level_execute_command = mock.MagicMock(  # pylint: disable=protected-access
        side_effect=lambda command: {"stdout": subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False).stdout})
    return plugin


@pytest.mark.parametrize("file_record, edited, module_runs", [(True, False, False), (False, False, True), (None, True, True)])
def test_the_action_runs_the_module_only_when_the_host_answers_nothing_or_a_difference(converged, monkeypatch, file_record, edited,
                                                                                       module_runs):
    args, record = converged
    monkeypatch.setattr(file_bundle_action._file_record, "RECORD_PATH", record)  # pylint: disable=protected-access
    if edited:
        with open(args["files"][0]["dest"], "a", encoding="utf-8") as handle:
            handle.write("# by hand\n")
    module = mock.MagicMock(return_value={"changed": True, "from": "module"})
    monkeypatch.setattr(file_bundle_action, "execute_module", module)
    plugin = action(dict(args, record=True))
    node = {} if file_record is None else {"kubeforge_node": {"file_record": file_record}}
    result = plugin.run(task_vars={"ansible_facts": node})
    assert module.called is module_runs
    assert plugin._low_level_execute_command.called is (file_record is not False)  # pylint: disable=protected-access
    if not module_runs:
        assert result["changed"] is False and result["files"][0] == {"dest": args["files"][0]["dest"], "changed": False, "changes": []}

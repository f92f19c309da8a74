# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Units kept running or stopped (module_utils/_units.py), and file_bundle's use of them.

Stand-in: FakeSystemd answers systemctl the way systemd does (show blocks of the properties asked in the order
asked, enable, start, restart, reload, stop, disable, daemon-reload; a new invocation ID at each start), because
the unit tests run where systemd is not PID 1. A stopped unit keeps its last invocation ID, as with systemd.
The molecule site scenario runs the roles' bundles against real systemd.
"""
from __future__ import annotations

import itertools
import json

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._files import FileBundleBackend, FilesError
from ansible_collections.kubeforge.cluster.plugins.module_utils._units import UnitsBackend, UnitsError, parse_show


class FakeSystemd:
    """Units as {name: {"load", "active", "file", "need_reload", "invocation"}}; records every systemctl call."""

    def __init__(self, **units):
        self.serial = itertools.count(1)
        self.units = {name: {"load": "loaded", "active": "inactive", "file": "disabled", "need_reload": False, **state}
                      for name, state in units.items()}
        for unit in self.units.values():
            unit["invocation"] = f"{next(self.serial):032x}" if unit["active"] == "active" else ""
        self.calls = []

    def __call__(self, argv):
        assert argv[0] == "systemctl"
        self.calls.append(argv[1:])
        verb, names = argv[1], [arg for arg in argv[2:] if not arg.startswith("--")]
        if verb == "daemon-reload":
            for unit in self.units.values():
                unit["need_reload"] = False
            return 0, "", ""
        if verb == "show":
            asked = [arg.split("=", 1)[1] for arg in argv[2:] if arg.startswith("--property=")]
            blocks = []
            for name in names:
                unit = self.units.get(name, {"load": "not-found", "active": "inactive", "file": "", "need_reload": False, "invocation": ""})
                values = {"Id": f"{name}.service", "LoadState": unit["load"], "ActiveState": unit["active"], "UnitFileState": unit["file"],
                          "NeedDaemonReload": "yes" if unit["need_reload"] else "no", "InvocationID": unit["invocation"]}
                blocks.append("".join(f"{key}={values[key]}\n" for key in asked))
            return 0, "\n".join(blocks), ""
        effects = {"enable": ("file", "enabled"), "disable": ("file", "disabled"), "start": ("active", "active"),
                   "restart": ("active", "active"), "stop": ("active", "inactive"), "reload": ("active", "active")}
        for name in names:
            if name not in self.units:
                return 5, "", f"Unit {name}.service not found."
            key, value = effects[verb]
            unit = self.units[name]
            if verb == "restart" or (verb == "start" and unit["active"] != "active"):
                unit["invocation"] = f"{next(self.serial):032x}"
            unit[key] = value
        return 0, "", ""

    def verbs(self):
        return [call[0] for call in self.calls if call[0] != "show"]


def test_parse_show_reads_one_block_per_unit_in_order():
    text = "Id=a.service\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\nNeedDaemonReload=no\n\n" \
           "Id=b.service\nLoadState=not-found\nActiveState=inactive\nUnitFileState=\nNeedDaemonReload=no\n"
    first, second = parse_show(text, 2)
    assert first.found and first.running and first.file == "enabled"
    assert not second.found and not second.running
    with pytest.raises(UnitsError, match="gave 2 unit"):
        parse_show(text, 3)


def test_stopped_units_are_enabled_and_started_in_one_call_each_then_nothing_changes():
    systemd = FakeSystemd(kubelet={}, containerd={"file": "enabled"})
    units = UnitsBackend(["kubelet", "containerd"], run_command=systemd)
    assert units.run() == {"kubelet": ["enabled", "started"], "containerd": ["started"]}
    assert systemd.verbs() == ["enable", "start"]
    assert systemd.calls[-1] == ["start", "--", "kubelet", "containerd"]
    systemd.calls.clear()
    assert units.run() == {}
    assert systemd.verbs() == []


def test_check_mode_reports_and_calls_nothing_but_show():
    systemd = FakeSystemd(kubelet={})
    assert UnitsBackend(["kubelet"], run_command=systemd, check_mode=True).run() == {"kubelet": ["enabled", "started"]}
    assert systemd.verbs() == [] and systemd.units["kubelet"]["active"] == "inactive"


def test_a_missing_unit_is_an_error_unless_check_mode_would_create_it():
    with pytest.raises(UnitsError, match="kube-proxy: no such unit"):
        UnitsBackend(["kube-proxy"], run_command=FakeSystemd()).run()
    assert UnitsBackend(["kube-proxy"], run_command=FakeSystemd(), check_mode=True).run(
        pending_units=["kube-proxy"]) == {"kube-proxy": ["enabled", "started"]}


def test_a_masked_unit_is_refused_with_the_way_out():
    with pytest.raises(UnitsError, match="masked .*unmask"):
        UnitsBackend(["nginx"], run_command=FakeSystemd(nginx={"file": "masked"})).run()


def test_daemon_reload_when_asked_or_when_systemd_reports_a_changed_unit_file():
    systemd = FakeSystemd(etcd={"file": "enabled", "active": "active", "need_reload": True})
    assert UnitsBackend(["etcd"], run_command=systemd).run() == {}
    assert systemd.verbs() == ["daemon-reload"] and not systemd.units["etcd"]["need_reload"]
    systemd.calls.clear()
    UnitsBackend(["etcd"], run_command=systemd).run(daemon_reload=True)
    assert systemd.verbs() == ["daemon-reload"]


def test_reload_units_are_reloaded_only_when_files_changed_and_they_ran():
    systemd = FakeSystemd(firewall={"file": "enabled", "active": "active"})
    units = UnitsBackend(["firewall"], reload_units=["firewall"], run_command=systemd)
    assert units.run(files_changed=False) == {}
    assert units.run(files_changed=True) == {"firewall": ["reloaded"]}
    systemd.units["firewall"]["active"] = "failed"
    assert units.run(files_changed=True) == {"firewall": ["started"]}


def test_stopped_units_are_stopped_and_disabled_where_installed_only():
    systemd = FakeSystemd(ufw={"file": "enabled", "active": "active"}, firewalld={"file": "disabled", "active": "inactive"})
    units = UnitsBackend([], stopped=["ufw", "firewalld", "kubeforge-firewall"], run_command=systemd)
    assert units.run() == {"ufw": ["stopped", "disabled"]}
    assert systemd.calls[-2:] == [["stop", "--", "ufw"], ["disable", "--", "ufw"]]
    assert units.run() == {}


@pytest.mark.parametrize("kwargs, fragment", [
    ({"running": ["a"], "stopped": ["a"]}, "both to run and to stop: a"),
    ({"running": ["a"], "reload_units": ["b"]}, "must also be running units: b"),
])
def test_contradictions_are_refused(kwargs, fragment):
    with pytest.raises(UnitsError, match=fragment):
        UnitsBackend(**kwargs, run_command=FakeSystemd())


def test_a_failing_systemctl_names_the_call():
    def failing(argv):
        return (1, "", "Job for kubelet.service failed") if argv[1] == "start" else FakeSystemd(kubelet={})(argv)
    with pytest.raises(UnitsError, match="systemctl start -- kubelet failed: Job for kubelet.service failed"):
        UnitsBackend(["kubelet"], run_command=failing).run()


def test_file_bundle_writes_then_reloads_systemd_and_starts_its_units(tmp_path, monkeypatch):
    monkeypatch.setattr("ansible_collections.kubeforge.cluster.plugins.module_utils._files.UNIT_DIRECTORIES", (str(tmp_path) + "/",))
    systemd = FakeSystemd(**{"kube-proxy": {}})
    params = {"files": [{"dest": str(tmp_path / "kube-proxy.service"), "content": "[Service]\n"}], "running_units": ["kube-proxy"]}
    first = FileBundleBackend(params, run_command=systemd, diff=True).run()
    assert first["changed"] and first["unit_changes"] == {"kube-proxy": ["enabled", "started"]}
    assert first["started_units"] == ["kube-proxy"]
    assert systemd.verbs() == ["daemon-reload", "enable", "start"]
    assert "unit kube-proxy: enabled, started\n" in first["diff"][0]["after"]
    systemd.calls.clear()
    second = FileBundleBackend(params, run_command=systemd).run()
    assert not second["changed"] and second["started_units"] == [] and systemd.verbs() == []


def test_file_bundle_check_mode_counts_a_unit_it_would_create(tmp_path, monkeypatch):
    monkeypatch.setattr("ansible_collections.kubeforge.cluster.plugins.module_utils._files.UNIT_DIRECTORIES", (str(tmp_path) + "/",))
    params = {"files": [{"dest": str(tmp_path / "kube-proxy.service"), "content": "[Service]\n"}], "running_units": ["kube-proxy"]}
    result = FileBundleBackend(params, run_command=FakeSystemd(), check_mode=True).run()
    assert result["unit_changes"] == {"kube-proxy": ["enabled", "started"]}
    assert not (tmp_path / "kube-proxy.service").exists()


def test_file_bundle_names_the_written_files_when_a_unit_fails(tmp_path):
    params = {"files": [{"dest": str(tmp_path / "a.conf"), "content": "x\n"}], "running_units": ["missing"]}
    with pytest.raises(FilesError, match=r"missing: no such unit \(files written: .*a\.conf\)"):
        FileBundleBackend(params, run_command=FakeSystemd()).run()


def owing(tmp_path, systemd: FakeSystemd, content: str, **changes) -> dict:
    """A run of a recorded bundle whose one file the running service ``app`` reads."""
    params = {"files": [{"dest": str(tmp_path / "app.crt"), "content": content, "services": ["app"]}], **changes}
    return FileBundleBackend(params, run_command=systemd, record_path=str(tmp_path / "record.json")).run()


def test_a_file_written_while_its_service_runs_owes_a_restart_until_the_service_starts_again(tmp_path):
    systemd = FakeSystemd(app={"active": "active"})
    assert owing(tmp_path, systemd, "first\n")["services_changed"] == ["app"]
    systemd("systemctl restart app".split())
    # The run that wrote the second content stopped before its restart: every later run names the service.
    assert owing(tmp_path, systemd, "second\n")["services_changed"] == ["app"]
    again = owing(tmp_path, systemd, "second\n")
    assert not again["changed"] and again["services_changed"] == ["app"]
    systemd("systemctl restart app".split())
    assert owing(tmp_path, systemd, "second\n")["services_changed"] == []
    # The record forgets the invocation once the restart happened.
    assert "owed" not in json.loads((tmp_path / "record.json").read_text())["files"][str(tmp_path / "app.crt")]


def test_a_service_stopped_when_its_file_changes_owes_nothing(tmp_path):
    systemd = FakeSystemd(app={"active": "active"})
    systemd("systemctl stop app".split())
    assert owing(tmp_path, systemd, "first\n")["services_changed"] == ["app"]
    assert owing(tmp_path, systemd, "first\n")["services_changed"] == []
    systemd("systemctl start app".split())
    assert owing(tmp_path, systemd, "first\n")["services_changed"] == []


def test_a_service_stopped_since_its_file_changed_owes_nothing_more(tmp_path):
    systemd = FakeSystemd(app={"active": "active"})
    owing(tmp_path, systemd, "first\n")
    assert owing(tmp_path, systemd, "first\n")["services_changed"] == ["app"]
    systemd("systemctl stop app".split())
    assert owing(tmp_path, systemd, "first\n")["services_changed"] == []


@pytest.mark.parametrize("changes", [{"running_units": ["app"], "reload_units": ["app"]}, {"running_units": ["app"]}],
                         ids=["reloaded", "started"])
def test_a_unit_the_run_reloads_or_starts_has_read_its_files(tmp_path, changes):
    systemd = FakeSystemd(app={"active": "active" if "reload_units" in changes else "inactive", "file": "enabled"})
    assert owing(tmp_path, systemd, "first\n", **changes)["services_changed"] == ["app"]
    assert owing(tmp_path, systemd, "first\n", **changes)["services_changed"] == []


def test_check_mode_names_an_owed_restart_and_leaves_the_record(tmp_path):
    systemd = FakeSystemd(app={"active": "active"})
    owing(tmp_path, systemd, "first\n")
    systemd("systemctl restart app".split())
    owing(tmp_path, systemd, "second\n")
    record = (tmp_path / "record.json").read_text()
    params = {"files": [{"dest": str(tmp_path / "app.crt"), "content": "second\n", "services": ["app"]}]}
    checked = FileBundleBackend(params, run_command=systemd, record_path=str(tmp_path / "record.json"), check_mode=True).run()
    assert not checked["changed"] and checked["services_changed"] == ["app"]
    assert (tmp_path / "record.json").read_text() == record

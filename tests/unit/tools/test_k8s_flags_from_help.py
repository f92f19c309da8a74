# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tools/k8s_flags_from_help.py (flag lists from the binaries' --help) and tools/sync_shared_data.py leaving those lists alone.

The parser is checked against --help output recorded from the real v1.36.4 binaries (fixtures/).
"""
from __future__ import annotations

import importlib.util
import os
import stat

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
FLAGS_DATA = os.path.join(REPO, "plugins", "module_utils", "_data", "flags")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "tools", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load("k8s_flags_from_help")
sync = _load("sync_shared_data")


def fixture(name: str) -> str:
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


# What each recorded excerpt holds, read off the excerpt by hand: {flag: deprecated}.
APISERVER = {
    "--advertise-address": False, "--emulated-version": False, "--feature-gates": False, "--etcd-servers": False,
    "--tls-cipher-suites": False, "--admission-control": True, "--enable-admission-plugins": False,
    "--log-json-split-stream": False, "--v": False, "--vmodule": False, "--enable-logs-handler": True,
    "--help": False, "--version": False,
}
KUBELET = {
    # Most kubelet flags say "(DEPRECATED: This parameter should be set via the config file ...)"; the
    # cAdvisor ones "(DEPRECATED: This is a cadvisor flag ...)"; --housekeeping-interval says neither.
    "--address": True, "--anonymous-auth": True, "--boot-id-file": True, "--config": False,
    "--feature-gates": True,  # the marker is on its last description line, after the gate list
    "--help": False, "--housekeeping-interval": False, "--log-json-split-stream": True, "--storage-driver-db": True,
    "--tls-cipher-suites": True, "--v": False, "--version": False,
}
SCHEDULER = {
    "--config": False, "--write-config-to": False, "--secure-port": False, "--tls-cipher-suites": False,
    "--contention-profiling": True, "--kubeconfig": True, "--profiling": True, "--leader-elect": False,
    "--log-json-split-stream": False, "--v": False, "--help": False, "--version": False,
}


@pytest.mark.parametrize("name, expected", [
    ("kube-apiserver-1.36.4.help.txt", APISERVER),
    ("kubelet-1.36.4.help.txt", KUBELET),
    ("kube-scheduler-1.36.4.help.txt", SCHEDULER),
    # pflag wrapped to a terminal's width: descriptions start on the next line, some lines begin with "--".
    ("kube-scheduler-1.36.4.help-100-columns.txt", SCHEDULER),
])
def test_recorded_help_gives_the_flags_and_their_deprecation(name, expected):
    assert tool.parse_help(fixture(name)) == expected


def test_wrapped_and_unwrapped_help_give_the_same_list():
    wrapped = tool.parse_help(fixture("kube-scheduler-1.36.4.help-100-columns.txt"))
    assert tool.format_list(wrapped) == tool.format_list(tool.parse_help(fixture("kube-scheduler-1.36.4.help.txt")))


@pytest.mark.parametrize("text, expected", [
    # Short alias: only the long name is kept.
    ("  -v, --v Level   number for the log level verbosity\n", {"--v": False}),
    ("  -h, --help   help for kubelet\n", {"--help": False}),
    # Section headers, the usage line and the command's description are not flags.
    ("Usage:\n  kube-proxy [flags]\n\nGeneric flags:\n\n      --a string   text\n", {"--a": False}),
    # The marker counts on a description line below the flag, not on the next flag's.
    ("      --a   text\n            more text DEPRECATED: gone soon\n      --b   text\n", {"--a": True, "--b": False}),
    # After a section header, indented text belongs to no flag.
    ("      --a   text\nOther flags:\n\n   DEPRECATED text\n      --b   text\n", {"--a": False, "--b": False}),
    # Feature gate stages in the --feature-gates value list do not deprecate the flag (constructed:
    # the recorded 1.36 lists have no DEPRECATED gate) ...
    ("      --feature-gates mapStringBool   A set of key=value pairs. Options are:\n"
     "                kube:OldGate=true|false (DEPRECATED - default=false)\n"
     "                kube:NewGate=true|false (ALPHA - default=false)\n", {"--feature-gates": False}),
    # ... but the flag's own marker after the list does.
    ("      --feature-gates mapStringBool   A set of key=value pairs. Options are:\n"
     "                OldGate=true|false (DEPRECATED - default=false) (DEPRECATED: This parameter should be set via the config file)\n",
     {"--feature-gates": True}),
    # Lower case "deprecated" is not the marker (the lists follow the reference: DEPRECATED only).
    ("      --a   this is deprecated in spirit\n", {"--a": False}),
    # klog-style names are kept as printed.
    ("      --log_dir string   If non-empty, write log files in this directory\n", {"--log_dir": False}),
])
def test_parse_help_cases(text, expected):
    assert tool.parse_help(text) == expected


def test_format_list_is_byte_ordered_with_a_tab_marker():
    flags = {"--log_dir": False, "--log-flush-frequency": True, "--v": False, "--Zeta": False, "--log": False}
    text = tool.format_list(flags)
    assert text == "--Zeta\n--log\n--log-flush-frequency\tdeprecated\n--log_dir\n--v\n"
    lines = text.splitlines()
    assert lines == sorted(lines, key=lambda line: line.encode())  # what LC_ALL=C sort gives


def test_compare_reports_every_kind_of_change():
    old = {"--kept": False, "--gone": False, "--now-deprecated": False, "--was-deprecated": True}
    new = {"--kept": False, "--new": True, "--now-deprecated": True, "--was-deprecated": False}
    assert tool.compare(old, new) == {"added": ["--new"], "removed": ["--gone"], "deprecated": ["--now-deprecated"],
                                      "undeprecated": ["--was-deprecated"]}
    assert tool.compare(None, {"--a": False})["added"] == ["--a"]


# --------------------------------------------------------------------------- the command, with fake binaries

FAKE = {"kube-apiserver": "kube-apiserver-1.36.4.help.txt", "kube-controller-manager": "kube-scheduler-1.36.4.help.txt",
        "kube-scheduler": "kube-scheduler-1.36.4.help.txt", "kubelet": "kubelet-1.36.4.help.txt",
        "kube-proxy": "kube-scheduler-1.36.4.help-100-columns.txt"}


def fake_artifacts(root, version: str = "1.36.4", reported: str | None = None, skip: tuple = ()) -> str:
    """A release layout whose five programs print a recorded --help and a version."""
    directory = root / "release" / f"v{version}" / "bin" / "linux" / "amd64"
    directory.mkdir(parents=True)
    for component, name in FAKE.items():
        if component in skip:
            continue
        path = directory / component
        path.write_text("#!/bin/sh\n"
                        f'case "$1" in --version) echo "Kubernetes v{reported or version}";; '
                        f'--help) cat "{os.path.join(FIXTURES, name)}";; *) exit 2;; esac\n', encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(root)


def test_the_command_writes_the_lists_and_reports_changes(tmp_path, capsys):
    data = tmp_path / "flags"
    (data / "1.36").mkdir(parents=True)
    (data / "1.36" / "kube-apiserver.txt").write_text("--advertise-address\n--insecure-port\n--v\n", encoding="utf-8")
    rc = tool.main(["--artifacts-dir", fake_artifacts(tmp_path / "artifacts"), "--data-dir", str(data), "1.36.4"])
    assert rc == 0
    for component, name in FAKE.items():
        written = (data / "1.36" / (component + ".txt")).read_text(encoding="utf-8")
        assert written == tool.format_list(tool.parse_help(fixture(name)))
        assert tool.read_list(str(data / "1.36" / (component + ".txt"))) == tool.parse_help(fixture(name))
    assert "--admission-control\tdeprecated\n" in (data / "1.36" / "kube-apiserver.txt").read_text(encoding="utf-8")
    assert "v1.36.4" in (data / "1.36" / tool.SOURCE_FILE).read_text(encoding="utf-8")
    out = capsys.readouterr().out
    assert "1.36.4 kube-apiserver: 13 flags, 2 deprecated; +11 -1" in out
    assert "    removed: --insecure-port\n" in out
    assert "1.36.4 kubelet: 12 flags, 7 deprecated; +12 -0" in out


def test_the_command_refuses_a_binary_of_another_version(tmp_path, capsys):
    data = tmp_path / "flags"
    rc = tool.main(["--artifacts-dir", fake_artifacts(tmp_path / "artifacts", reported="1.36.3"), "--data-dir", str(data), "1.36.4"])
    assert rc == 1
    assert "expected v1.36.4" in capsys.readouterr().err
    assert not data.exists()


def test_the_command_writes_nothing_when_a_binary_is_missing(tmp_path, capsys):
    data = tmp_path / "flags"
    rc = tool.main(["--artifacts-dir", fake_artifacts(tmp_path / "artifacts", skip=("kube-proxy",)), "--data-dir", str(data), "1.36.4"])
    assert rc == 1
    assert "kube-proxy is missing" in capsys.readouterr().err
    assert not data.exists()


# --------------------------------------------------------------------------- the lists the collection carries

def _minors() -> list:
    return sorted(os.listdir(FLAGS_DATA))


@pytest.mark.parametrize("minor", _minors())
def test_every_carried_list_is_in_the_documented_format(minor):
    for component in tool.COMPONENTS:
        with open(os.path.join(FLAGS_DATA, minor, component + ".txt"), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        names = [line.split("\t")[0] for line in lines]
        assert lines == sorted(lines, key=lambda line: line.encode()), f"{minor}/{component} not in byte order"
        assert len(set(names)) == len(names) and "--help" in names and "--v" in names
        assert all(name.startswith("--") and " " not in name for name in names)
        assert all(line.partition("\t")[2] in ("", "deprecated") for line in lines)


# Minors whose lists tools/k8s_flags_from_help.py made from the binaries; 1.35 comes from ../shared.
BINARY_MINORS = ["1.36", "1.37"]


def test_binary_made_minors_are_marked_and_the_others_are_not():
    marked = [minor for minor in _minors() if os.path.exists(os.path.join(FLAGS_DATA, minor, tool.SOURCE_FILE))]
    assert marked == BINARY_MINORS
    for minor in marked:
        with open(os.path.join(FLAGS_DATA, minor, tool.SOURCE_FILE), encoding="utf-8") as handle:
            assert f" v{minor}." in handle.read()
    assert tool.SOURCE_FILE == sync.BINARY_SOURCE


def _shared(root) -> str:
    flags = root / "k8s-flags"
    for minor, sub in (("1.35", ""), ("1.36", "derived"), ("1.37", "derived")):
        folder = flags / minor / sub
        folder.mkdir(parents=True)
        for component in sync.COMPONENTS:
            (folder / (component + ".txt")).write_text(f"--from-shared-{minor}\n", encoding="utf-8")
    (flags / "config-api" / "1.35").mkdir(parents=True)
    (flags / "config-api" / "1.35" / "Policy.txt").write_text("rules\n", encoding="utf-8")
    return str(root)


def test_sync_copies_only_the_minors_not_made_from_binaries(tmp_path, monkeypatch):
    data = tmp_path / "data"
    for minor in ("1.36", "1.37"):
        (data / "flags" / minor).mkdir(parents=True)
        for component in sync.COMPONENTS:
            (data / "flags" / minor / (component + ".txt")).write_text("--from-binary\n", encoding="utf-8")
    (data / "flags" / "1.36" / sync.BINARY_SOURCE).write_text("made from binaries\n", encoding="utf-8")
    monkeypatch.setattr(sync, "DATA", str(data))
    sync.sync_flags(_shared(tmp_path / "shared"))

    def content(minor):
        return {(data / "flags" / minor / (c + ".txt")).read_text(encoding="utf-8") for c in sync.COMPONENTS}

    assert content("1.35") == {"--from-shared-1.35\n"}
    assert content("1.36") == {"--from-binary\n"}  # SOURCE.txt: left alone
    assert content("1.37") == {"--from-shared-1.37\n"}  # no SOURCE.txt: copied (the derived list)
    assert (data / "config_api" / "1.35" / "Policy.txt").read_text(encoding="utf-8") == "rules\n"

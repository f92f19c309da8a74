# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure functions of the stand-ins' shared module, in process: flag parsing and the config field walk."""
from __future__ import annotations

import pytest

from kubeforge_standins import common  # tests/standins is put on sys.path by conftest.py

KNOWN = {"--anonymous-auth": False, "--etcd-servers": False, "--admission-control": True, "--v": False,
         "--help": False, "--version": False, "--log_dir": False, "--kubeconfig": False}


@pytest.mark.parametrize("argv, values, args", [
    (["--etcd-servers=a,b"], {"--etcd-servers": ["a,b"]}, []),
    (["--etcd-servers", "a", "--etcd-servers", "b"], {"--etcd-servers": ["a", "b"]}, []),
    (["--anonymous-auth"], {"--anonymous-auth": ["true"]}, []),
    (["--anonymous-auth", "false"], {"--anonymous-auth": ["true"]}, ["false"]),
    (["--anonymous-auth=false"], {"--anonymous-auth": ["false"]}, []),
    (["-v", "4"], {"--v": ["4"]}, []),
    (["-v=4", "-h"], {"--v": ["4"], "--help": ["true"]}, []),
    (["--log-dir=/x"], {"--log-dir": ["/x"]}, []),
    (["--log_dir", "/x"], {"--log-dir": ["/x"]}, []),
    (["--version"], {"--version": ["true"]}, []),
    (["--version=raw"], {"--version": ["raw"]}, []),
    (["--kubeconfig", "--v=2"], {"--kubeconfig": [""], "--v": ["2"]}, []),
    (["--", "--etcd-servers=x"], {}, ["--etcd-servers=x"]),
])
def test_parse_flags(argv, values, args):
    parsed = common.parse_flags(argv, KNOWN, value_flags=frozenset({"--etcd-servers"}))
    assert parsed.values == values
    assert parsed.args == args


@pytest.mark.parametrize("argv, message", [
    (["--insecure-port=8080"], "unknown flag: --insecure-port"),
    (["--insecure_port"], "unknown flag: --insecure_port"),
    (["-x"], "unknown shorthand flag: 'x' in -x"),
    (["--etcd-servers"], "flag needs an argument: --etcd-servers"),
    (["--anonymous-auth=maybe"], 'invalid argument "maybe" for "--anonymous-auth" flag'),
    (["--=x"], "bad flag syntax: --=x"),
])
def test_parse_flags_errors(argv, message):
    with pytest.raises(common.FlagError) as raised:
        common.parse_flags(argv, KNOWN, value_flags=frozenset({"--etcd-servers"}))
    assert str(raised.value).startswith(message)


def test_deprecated_flag_warns(capsys):
    common.parse_flags(["--admission-control=X"], KNOWN, deprecated_note="because")
    assert capsys.readouterr().err == "Flag --admission-control has been deprecated, because\n"


TOP = {"apiVersion", "kind", "clientConnection", "profiles", "featureGates"}
PATHS = TOP | {"clientConnection.kubeconfig", "profiles[].schedulerName", "profiles[].pluginConfig",
               "profiles[].pluginConfig[].name", "profiles[].pluginConfig[].args"}


@pytest.mark.parametrize("doc, unknown", [
    ({"apiVersion": "v", "kind": "k", "clientConnection": {"kubeconfig": "x"}}, []),
    ({"featureGates": {"Anything": True}}, []),
    ({"profiles": [{"pluginConfig": [{"name": "A", "args": {"free": {"form": 1}}}]}]}, []),
    ({"clientconnection": {}}, ["clientconnection"]),
    ({"clientConnection": {"kubeconfig": "x", "qps": 5}}, ["clientConnection.qps"]),
    ({"profiles": [{"schedulerName": "a"}, {"plugins": {}}]}, ["profiles[].plugins"]),
    ({"profiles": [{"pluginConfig": [{"nam": "A"}]}]}, ["profiles[].pluginConfig[].nam"]),
])
def test_unknown_fields(doc, unknown):
    assert common.unknown_fields(doc, TOP, PATHS) == unknown


@pytest.mark.parametrize("value, seconds", [("2s", 2.0), ("1m30s", 90.0), ("500ms", 0.5), ("0", 0.0), ("", 7.0)])
def test_parse_duration(value, seconds):
    assert common.parse_duration("--x", value, 7.0) == seconds


def test_parse_duration_rejects_garbage():
    with pytest.raises(common.FlagError):
        common.parse_duration("--x", "2 seconds", 1.0)

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""run_module: the etcd modules' main() after the argument spec (clients opened and closed, failures, diff)."""
from __future__ import annotations

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd import common
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.errors import EtcdError


class Exited(Exception):
    pass


class FakeModule:
    def __init__(self, diff=False):
        self._diff = diff
        self.outcome = None

    def exit_json(self, **result):
        self.outcome = ("exit", result)
        raise Exited

    def fail_json(self, **result):
        self.outcome = ("fail", result)
        raise Exited


class FakeClient:
    def __init__(self, params, log):
        self.name, self.log = params["endpoints"][0], log

    def close(self):
        self.log.append(f"close {self.name}")


@pytest.fixture
def log(monkeypatch):
    log = []
    monkeypatch.setattr(common, "client_from_params", lambda params: FakeClient(params, log))
    return log


@pytest.mark.parametrize("diff", [False, True])
def test_clients_are_closed_in_order_and_diff_kept_only_with_diff(log, diff):
    module = FakeModule(diff=diff)

    def run(source, dest):
        log.append(f"run {source.name} {dest.name}")
        return {"changed": True, "diff": {"before": "", "after": ""}}
    with pytest.raises(Exited):
        common.run_module(module, run, {"endpoints": ["a"]}, {"endpoints": ["b"]})
    assert log == ["run a b", "close a", "close b"]
    assert module.outcome == ("exit", {"changed": True, **({"diff": {"before": "", "after": ""}} if diff else {})})


def test_an_etcd_error_fails_with_its_partial_result_after_closing(log):
    module = FakeModule()

    def run(client):
        raise EtcdError("cannot connect to any etcd endpoint", result={"members": []})
    with pytest.raises(Exited):
        common.run_module(module, run, {"endpoints": ["a"]})
    assert log == ["close a"]
    assert module.outcome == ("fail", {"msg": "cannot connect to any etcd endpoint", "members": []})


def test_without_connections_and_without_diff_in_the_result(log):
    module = FakeModule()
    with pytest.raises(Exited):
        common.run_module(module, lambda: {"changed": False})
    assert log == [] and module.outcome == ("exit", {"changed": False})

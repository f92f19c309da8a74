# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller's etcd cluster tokens (module_utils/_etcd/cluster_token.py): every new cluster a
token no earlier one had, the current one last, restores recorded, and a lost file rebuilt from
the members."""
from __future__ import annotations

import datetime
import json
import re

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd import cluster_token
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.cluster_token import TokenFileError

NOW = datetime.datetime(2025, 5, 1, 10, 0, 0, tzinfo=datetime.timezone.utc)
THREE = ["etcd-1=https://10.0.0.11:2380", "etcd-2=https://10.0.0.12:2380", "etcd-3=https://10.0.0.13:2380"]
TWO = THREE[1:]


def text(state: dict) -> str:
    return json.dumps(state, indent=2) + "\n"


def draws(*values):
    """A random source that returns these hex strings in turn."""
    queue = list(values)
    return lambda _nbytes: queue.pop(0)


def test_the_first_bootstrap_creates_the_file_with_a_random_token():
    state = cluster_token.bootstrap(None, THREE, NOW)
    assert re.fullmatch(r"kubeforge-[0-9a-f]{16}", state["current"]), state
    assert state["clusters"] == [{"token": state["current"], "how": "bootstrap", "since": "2025-05-01T10:00:00Z",
                                  "initial_cluster": ",".join(THREE), "cluster_id": ""}]
    assert cluster_token.bootstrap("", ",".join(THREE), NOW)["clusters"][0]["initial_cluster"] == ",".join(THREE)


def test_a_new_cluster_on_the_same_hosts_never_gets_an_earlier_token():
    """A migration builds a new cluster on hosts that had one (twice, here): each gets its own token."""
    first = cluster_token.bootstrap(None, THREE[:1], NOW)
    second = cluster_token.bootstrap(text(first), TWO, NOW)
    third = cluster_token.bootstrap(text(second), TWO, NOW)
    tokens = [c["token"] for c in third["clusters"]]
    assert len(set(tokens)) == 3 and third["current"] == tokens[-1] and tokens[:2] == [first["current"], second["current"]]
    assert [c["initial_cluster"] for c in third["clusters"]] == [THREE[0], ",".join(TWO), ",".join(TWO)]


def test_a_drawn_token_already_used_or_the_old_constant_is_drawn_again():
    state = cluster_token.bootstrap(None, THREE, NOW, random_hex=draws("00000000000000aa"))
    again = cluster_token.bootstrap(text(state), THREE, NOW, random_hex=draws("00000000000000aa", "00000000000000bb"))
    assert again["current"] == "kubeforge-00000000000000bb"
    legacy = cluster_token.bootstrap(None, THREE, NOW, random_hex=draws("etcd", "00000000000000cc"))
    assert legacy["current"] == "kubeforge-00000000000000cc"  # never the constant of earlier releases
    with pytest.raises(TokenFileError, match="random source repeats"):
        cluster_token.new_token({"kubeforge-x"}, lambda _n: "x")


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not JSON"),
    ('{"current": "a"}', "has no list of clusters"),
    ('{"current": "a", "clusters": ["a"]}', "has no list of clusters"),
    ('{"current": "a", "clusters": [{"token": "b"}]}', "current is 'a' but the last cluster's token is 'b'"),
])
def test_a_file_kubeforge_did_not_write_is_refused_not_overwritten(content, message):
    with pytest.raises(TokenFileError, match=message):
        cluster_token.bootstrap(content, THREE, NOW)


def test_a_restore_is_recorded_once():
    booted = cluster_token.bootstrap(None, THREE, NOW)
    restored = cluster_token.restore(text(booted), "kubeforge-etcd-restore-0123456789abcdef", THREE, NOW)
    assert restored["current"] == "kubeforge-etcd-restore-0123456789abcdef"
    assert [c["how"] for c in restored["clusters"]] == ["bootstrap", "restore"]
    assert cluster_token.restore(text(restored), restored["current"], THREE, NOW) == restored  # a re-run changes nothing
    with pytest.raises(TokenFileError, match="needs its token"):
        cluster_token.restore(None, "", THREE, NOW)


def initial_env(state: str, token: str = "", members=None) -> str:
    """An /etc/etcd/etcd-initial.env as roles/etcd writes it (tests/unit/roles/test_etcd_cluster_token.py renders the real one)."""
    members = TWO if members is None else members
    lines = ["# Managed by kubeforge.cluster; changes are overwritten.", f"ETCD_INITIAL_CLUSTER={','.join(members)}",
             f"ETCD_INITIAL_CLUSTER_STATE={state}"]
    return "\n".join(lines + ([f"ETCD_INITIAL_CLUSTER_TOKEN={token}"] if token else [])) + "\n"


def test_parse_initial_env():
    assert cluster_token.parse_initial_env(initial_env("new", "kubeforge-aa")) == {
        "token": "kubeforge-aa", "initial_cluster": ",".join(TWO), "state": "new"}
    assert cluster_token.parse_initial_env(initial_env("existing", members=THREE))["token"] == ""


@pytest.mark.parametrize("envs, markers, token, initial", [
    # Bootstrapped members agree; the host that joined later never had a token.
    ({"etcd-1": initial_env("existing", members=THREE), "etcd-2": initial_env("new", "kubeforge-aa"),
      "etcd-3": initial_env("new", "kubeforge-aa")}, {}, "kubeforge-aa", ",".join(TWO)),
    # A restore is newer than the members' initial settings.
    ({"etcd-2": initial_env("new", "kubeforge-aa"), "etcd-3": initial_env("new", "kubeforge-aa")},
     {name: json.dumps({"initial_cluster_token": "kubeforge-etcd-restore-1", "initial_cluster": ",".join(THREE)}) for name in ("etcd-2", "etcd-3")},
     "kubeforge-etcd-restore-1", ",".join(THREE)),
    # Members that disagree, or none with a token: the cluster ID alone.
    ({"etcd-2": initial_env("new", "kubeforge-aa"), "etcd-3": initial_env("new", "kubeforge-bb")}, {}, "", ""),
    ({"etcd-1": initial_env("existing", members=THREE)}, {}, "", ""),
    ({}, {}, "", ""),
])
def test_a_lost_file_is_rebuilt_from_the_members(envs, markers, token, initial):
    state = cluster_token.recover(None, envs, markers, "cdf818194e3a8c32", NOW)
    assert state == {"current": token, "clusters": [{"token": token, "how": "recovered", "since": "2025-05-01T10:00:00Z",
                                                     "initial_cluster": initial, "cluster_id": "cdf818194e3a8c32"}]}
    # The next new cluster still gets a token of its own.
    after = cluster_token.bootstrap(text(state), THREE, NOW)
    assert after["current"] not in ("", token) and len(after["clusters"]) == 2


def test_recovery_keeps_a_file_the_controller_still_has():
    kept = cluster_token.bootstrap(None, THREE, NOW)
    assert cluster_token.recover(text(kept), {"etcd-2": initial_env("new", "kubeforge-other")}, {}, "1", NOW) == kept


def test_a_recovered_file_without_token_loads():
    state = cluster_token.recover(None, {}, {}, "cdf818194e3a8c32", NOW)
    assert cluster_token.load(text(state)) == state

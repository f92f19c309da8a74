# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The etcd cluster tokens the controller keeps, in ``<credentials dir>/etcd-cluster-token.json``.

etcd derives each member's ID from its peer URLs and the initial cluster token, and the cluster ID
from the member IDs: two clusters bootstrapped on the same peer URLs with the same token have the
same ID, and cannot be told apart (a data directory moved aside for one is taken for the other's).
So every new cluster gets a token no earlier one had, and the controller keeps the list:

    {"current": "kubeforge-3f9c0a5d1e2b4c68",
     "clusters": [{"token": "kubeforge-3f9c0a5d1e2b4c68", "how": "bootstrap", "since": "2025-05-01T10:00:00Z",
                   "initial_cluster": "etcd-1=https://10.0.0.11:2380,...", "cluster_id": ""}, ...]}

``clusters`` is oldest first and its last entry is the current cluster: ``current`` is its token,
"" when a recovery found the cluster's ID but not its token. The token counts only when a cluster
is bootstrapped (or restored); a running member never reads it again, so an existing cluster is
never touched by this file, and a bootstrap always takes a new token (when no member holds data,
there is no cluster whose token could be kept).
"""

from __future__ import annotations

import datetime
import json
import secrets
from collections.abc import Callable

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError

FILE_NAME = "etcd-cluster-token.json"
PREFIX = "kubeforge-"
# The token every kubeforge cluster had before tokens were generated: never handed out again.
LEGACY_TOKEN = "kubeforge-etcd"
FIELDS = ("token", "how", "since", "initial_cluster", "cluster_id")


class TokenFileError(KubeforgeError):
    """The token file is not what kubeforge writes."""


def _now(now: datetime.datetime | None) -> str:
    return (now or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _initial_cluster(value) -> str:
    return value if isinstance(value, str) else ",".join(str(v) for v in value or [])


def load(text: str | None) -> dict:
    """The state in the file's text; an empty state for no file (None or "")."""
    if not text or not str(text).strip():
        return {"current": "", "clusters": []}
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise TokenFileError(f"{FILE_NAME} is not JSON ({exc}): fix it or move it aside (a new one is written)") from None
    clusters = state.get("clusters") if isinstance(state, dict) else None
    if not isinstance(clusters, list) or not all(isinstance(c, dict) and isinstance(c.get("token", ""), str) for c in clusters):
        raise TokenFileError(f"{FILE_NAME} has no list of clusters: fix it or move it aside (a new one is written)")
    current = clusters[-1].get("token", "") if clusters else ""
    if state.get("current", "") != current:
        raise TokenFileError(f"{FILE_NAME}: current is {state.get('current')!r} but the last cluster's token is {current!r}")
    return {"current": current, "clusters": [{k: c.get(k, "") for k in FIELDS} for c in clusters]}


def used_tokens(state: dict) -> set:
    return {c["token"] for c in state["clusters"] if c["token"]} | {LEGACY_TOKEN}


def new_token(taken: set, random_hex: Callable[[int], str] = secrets.token_hex) -> str:
    """``kubeforge-<16 hex digits>`` not in ``taken``."""
    for _attempt in range(100):
        token = PREFIX + random_hex(8)
        if token not in taken:
            return token
    raise TokenFileError("no new etcd cluster token after 100 draws: the random source repeats itself")


def _append(state: dict, entry: dict) -> dict:
    entry = {k: entry.get(k, "") for k in FIELDS}
    return {"current": entry["token"], "clusters": state["clusters"] + [entry]}


def bootstrap(text: str | None, initial_cluster, now: datetime.datetime | None = None,
              random_hex: Callable[[int], str] = secrets.token_hex) -> dict:
    """The state once a new cluster of ``initial_cluster`` ("name=peer-url" list or string) is bootstrapped: a new token."""
    state = load(text)
    token = new_token(used_tokens(state), random_hex)
    return _append(state, {"token": token, "how": "bootstrap", "since": _now(now), "initial_cluster": _initial_cluster(initial_cluster)})


def restore(text: str | None, token: str, initial_cluster, now: datetime.datetime | None = None) -> dict:
    """The state once every member was restored from a snapshot with ``token``; unchanged when it is already current."""
    state = load(text)
    if not token:
        raise TokenFileError("a restored cluster needs its token")
    if state["current"] == token:
        return state
    return _append(state, {"token": token, "how": "restore", "since": _now(now), "initial_cluster": _initial_cluster(initial_cluster)})


def parse_initial_env(text: str) -> dict:
    """ETCD_INITIAL_* of an etcd-initial.env (roles/etcd) as {"token", "initial_cluster", "state"}."""
    found = {}
    for line in (text or "").splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name.startswith("ETCD_INITIAL_CLUSTER"):
            found[name] = value.strip().strip('"')
    return {"token": found.get("ETCD_INITIAL_CLUSTER_TOKEN", ""), "initial_cluster": found.get("ETCD_INITIAL_CLUSTER", ""),
            "state": found.get("ETCD_INITIAL_CLUSTER_STATE", "")}


def recover(text: str | None, initial_envs: dict, restore_markers: dict | None = None, cluster_id: str = "",
            now: datetime.datetime | None = None) -> dict:
    """The state rebuilt from what the members hold, for a controller that lost the file; a file kept is returned as it is.

    initial_envs: {member: its etcd-initial.env text}, the members of the cluster answering now;
    restore_markers: {member: its <data dir>/kubeforge-restore.json text} where there is one (a
    restore is newer than the member's initial env); cluster_id: the cluster's ID (hexadecimal).
    The token is known only when every member that has one agrees on it: a bootstrapped member's
    env (state new) or its restore marker; a member that joined (state existing) never had one.
    Otherwise the entry records the cluster ID alone: nothing needs the token of a running cluster,
    and the next bootstrap takes a new one anyway.
    """
    state = load(text)
    if state["clusters"]:
        return state
    tokens, clusters = set(), set()
    for member, env in sorted((initial_envs or {}).items()):
        marker = (restore_markers or {}).get(member)
        if marker:
            try:
                restored = json.loads(marker)
            except ValueError as exc:
                raise TokenFileError(f"{member}: the restore marker is not JSON ({exc})") from None
            tokens.add(restored.get("initial_cluster_token", ""))
            clusters.add(restored.get("initial_cluster", ""))
            continue
        parsed = parse_initial_env(env)
        if parsed["state"] == "new":
            tokens.add(parsed["token"])
            clusters.add(parsed["initial_cluster"])
    token = tokens.pop() if len(tokens) == 1 and len(clusters) == 1 else ""
    initial = clusters.pop() if token else ""
    return _append(state, {"token": token, "how": "recovered", "since": _now(now), "initial_cluster": initial,
                           "cluster_id": str(cluster_id or "")})

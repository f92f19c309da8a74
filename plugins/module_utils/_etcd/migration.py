# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The next step of playbooks/etcd_migrate.yml, decided from what the hosts and the cluster show.

Nothing is remembered between runs: every run reads the cluster that answers on the etcd group's
client URLs, the single etcd's data directory and the directories an earlier run moved aside, and
picks the step to resume from (docs/etcd-migration.md):

- ``done``: every host of the etcd group is a started, voting member of the cluster that answers.
- ``grow``: add the other hosts to the single (kubeforge) etcd as learners, one at a time.
- ``mirror``: build the new cluster on the other hosts and copy the single etcd into it.
- ``switch``: the single etcd was copied and moved aside (the point of no return): switch the
  apiservers and add the old host to the new cluster; never copy again.
"""

from __future__ import annotations

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError
from ansible_collections.kubeforge.cluster.plugins.module_utils._etcd.transport import NOT_RUNNING

METHODS = ("grow", "mirror")


def _voters(members: list) -> set:
    return {m.get("name") for m in members if m.get("name") and not m.get("is_learner")}


def probe_answer(probe: dict, endpoint_hosts: dict, hosts_with_data, source: str = "", foreign_source: bool = False) -> dict:
    """{"members", "cluster_id"} of the cluster answering on the etcd group's URLs: what an
    etcd_member read (``probe``, its registered result, failed or not) says.

    None answering counts as "no cluster" only when no endpoint refused the client: each one is
    not running (refused, timeout, unreachable) on a host that holds no etcd data
    (``hosts_with_data``: the hosts whose data directory has member/wal). A TLS failure (a wrong
    CA or certificate path, a certificate the member rejects), an error after connecting
    (authentication, permissions) or a member with data that does not answer raises: reading them
    as "no members" would send the migration down the wrong path. The exception is the single
    etcd kubeforge did not install (``foreign_source``): it refuses kubeforge's certificates, and
    the copy reads it with its own (etcd_migrate_source_*). ``endpoint_hosts`` maps each URL to its host.
    """
    if not probe.get("failed"):
        return {"members": list(probe.get("members") or []), "cluster_id": str(probe.get("cluster_id") or "")}
    errors = probe.get("endpoint_errors")
    if not isinstance(errors, list) or not errors:
        raise KubeforgeError(f"reading the etcd group's members failed after connecting, or before with the client's own files: "
                             f"{probe.get('msg')}; that is not \"no cluster\": fix it and run again")
    data = set(hosts_with_data or [])
    problems = []
    for error in errors:
        url = error.get("endpoint", "")
        host = endpoint_hosts.get(url, url)
        if host == source and foreign_source:
            continue
        if error.get("kind") not in NOT_RUNNING:
            problems.append(f"{host} ({url}) refused the client ({error.get('kind')}): {error.get('error')}")
        elif host in data:
            problems.append(f"{host} holds etcd data but does not answer on {url} ({error.get('error')}): start it")
    if problems:
        raise KubeforgeError("no member of the etcd group answered, and not because none runs: " + "; ".join(problems)
                             + ". A certificate or CA problem is not an empty cluster: check etcd_ca_file, etcd_client_cert_file "
                             "and etcd_client_key_file (or etcd_migrate_source_* for a single etcd kubeforge did not install)")
    return {"members": [], "cluster_id": ""}


def moved_aside_name(data_dir: str, cluster_id: str, stamp: str) -> str:
    """Where the single etcd's data goes once copied: the name carries the new cluster's ID."""
    return f"{data_dir}.migrated-to-{cluster_id}-{stamp}"


def migration_plan(method: str, etcd_hosts: list, source: str = "", members: list | None = None,
                   moved_aside: list | None = None, source_has_data: bool = True, cluster_id: str = "") -> dict:
    """{"step", "source", "targets", "reason"}; raises KubeforgeError when the migration cannot go on safely.

    members: the member list of the cluster answering on the etcd group's URLs ([] when none answers);
    moved_aside: the single etcd's data directories an earlier run moved aside (moved_aside_name);
    source_has_data: whether the single etcd's data directory holds data;
    cluster_id: the ID of the cluster that answered. Only a directory moved aside for that cluster
    counts: one left by an older migration does not stop a new one.
    """
    if method not in METHODS:
        raise KubeforgeError(f"etcd_migrate_method must be one of {', '.join(METHODS)}, not {method!r}")
    hosts = list(etcd_hosts or [])
    source = source or (hosts[0] if hosts else "")
    if source not in hosts:
        raise KubeforgeError(f"the single etcd's host {source!r} must be in the etcd group ({', '.join(hosts) or 'empty'}): "
                             "it becomes a member of the migrated cluster")
    if len(hosts) < 2:
        raise KubeforgeError("the etcd group has one host: add the hosts the cluster should grow to (3 for a quorum that survives "
                             "one member down)")
    members = list(members or [])
    stale = list(moved_aside or [])
    moved_aside = [path for path in stale if cluster_id and f".migrated-to-{cluster_id}-" in path]
    targets = [h for h in hosts if h != source]
    plan = {"source": source, "targets": targets}
    names = {m.get("name") for m in members}
    strangers = sorted(n for n in names if n and n not in hosts)
    if _voters(members) == set(hosts) and not strangers and len(members) == len(hosts):
        return dict(plan, step="done", reason="every host of the etcd group is a voting member")
    if moved_aside:
        # The point of no return was passed: the new cluster holds the data, the old host rejoins it.
        if source in names and source not in _voters(members) and not (names & set(targets)):
            raise KubeforgeError(f"the single etcd's data was moved aside ({', '.join(moved_aside)}) but the cluster answering is "
                                 f"still the single etcd on {source}: move the data back to resume, or restore a snapshot")
        if not (_voters(members) & set(targets)):
            raise KubeforgeError(f"the single etcd's data was moved aside ({', '.join(moved_aside)}) but the new cluster on "
                                 f"{', '.join(targets)} does not answer: start it, then run the migration again")
        if method != "mirror":
            raise KubeforgeError("a mirror migration has passed its point of no return: finish it with etcd_migrate_method=mirror")
        return dict(plan, step="switch", reason=f"the single etcd was copied and moved aside ({moved_aside[0]})")
    if strangers:
        raise KubeforgeError(f"the cluster answering has members outside the etcd group: {', '.join(strangers)}")
    if method == "grow":
        if source not in _voters(members):
            raise KubeforgeError(f"grow needs the single etcd on {source} to be a kubeforge etcd answering with the etcd role's "
                                 "certificates (a member named after its host); for another etcd use etcd_migrate_method=mirror")
        return dict(plan, step="grow", reason="the single etcd gets the other hosts as learners")
    if source in names and names & set(targets):
        raise KubeforgeError(f"the single etcd on {source} already has members of the etcd group ({', '.join(sorted(names & set(targets)))}): "
                             "an interrupted grow; finish it with etcd_migrate_method=grow")
    if not source_has_data and stale:
        raise KubeforgeError(f"the single etcd's data was moved aside ({', '.join(stale)}) and no cluster it was copied to answers: "
                             "start the new cluster, then run the migration again")
    if not source_has_data:
        raise KubeforgeError(f"the single etcd's data directory on {source} holds no data and nothing was moved aside: "
                             "set etcd_migrate_source_data_dir, or restore a snapshot")
    return dict(plan, step="mirror", reason="a new cluster on the other hosts, the single etcd copied into it")

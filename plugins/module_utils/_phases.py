# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The phases of site.yml, the ones a run selects by its tags, and what each needs an earlier phase to have done.

The preflight (check_phase_order) refuses a run that selects a phase without what it needs: on a cluster that no run
has converged from this controller, or where a phase it leaves out has not run on its hosts (a first run that stopped
part way). Such a phase would change the hosts, then fail (an apiserver started with no certificate and no etcd waits
a minute for its health, then fails)."""

from __future__ import annotations

# site.yml's order; each phase's play carries the tag of its name.
ORDER = ("prepare", "pki", "etcd", "ha_nginx", "control_plane", "container_runtime", "kubelet_bootstrap", "ipvs", "flannel",
         "coredns")
# What each phase needs an earlier one to have made: the credentials (pki), a running etcd, an API, nodes, the pod
# network. Only phases that work with the cluster's credentials are named, as only those are surely not done when the
# controller holds no CA: prepare, ha_nginx and container_runtime need none, and may have run alone before.
NEEDS = {
    "etcd": ("pki",),
    "control_plane": ("etcd",),
    "kubelet_bootstrap": ("control_plane",),
    "ipvs": ("control_plane",),
    "flannel": ("kubelet_bootstrap",),
    "coredns": ("flannel",),
}
# The unit file each of these phases writes on every host of its group (the node_facts module says which a host holds):
# a host of the group without it has not had the phase. The flannel phase writes nothing on the hosts (its DaemonSet
# does), so a run that needs it is not judged by them.
WRITES = {
    "etcd": ("etcd", "/etc/systemd/system/etcd.service"),
    "control_plane": ("kube_control_plane", "/etc/systemd/system/kube-apiserver.service"),
    "kubelet_bootstrap": ("k8s_cluster", "/etc/systemd/system/kubelet.service"),
}
# Ansible's special tags that select every tagged play.
_EVERY_TAG = frozenset(("all", "tagged"))


def selected(phases, run_tags, skip_tags) -> list[str]:
    """The phases among ``phases`` (names, or "all" for ORDER) that a run with these tags (ansible_run_tags,
    ansible_skip_tags) runs, in ORDER."""
    named = ORDER if phases == "all" else tuple(phases or ())
    unknown = sorted(set(named) - set(ORDER))
    if unknown:
        raise ValueError(f"unknown phases {', '.join(unknown)}: the phases are {', '.join(ORDER)}")
    run, skip = set(run_tags or ("all",)), set(skip_tags or ())
    if skip & _EVERY_TAG:
        return []
    return [phase for phase in ORDER if phase in named and (run & _EVERY_TAG or phase in run) and phase not in skip]


def needed(phase: str) -> list[str]:
    """Every phase ``phase`` needs done before it, directly or through another, in ORDER."""
    found, todo = set(), list(NEEDS.get(phase, ()))
    while todo:
        before = todo.pop()
        if before not in found:
            found.add(before)
            todo.extend(NEEDS.get(before, ()))
    return [name for name in ORDER if name in found]


def left_out(phases) -> dict[str, list[str]]:
    """{phase: the phases it needs that ``phases`` does not hold} for each of ``phases`` that lacks one."""
    chosen = set(phases)
    return {phase: missing for phase in phases if (missing := [name for name in needed(phase) if name not in chosen])}

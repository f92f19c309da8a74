# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Version policy of a rolling upgrade: which target versions the running cluster allows.

Pure functions on the versions read from the hosts. The ``*_problems`` functions return every
problem they find (an empty list: the upgrade may go ahead), each naming the hosts and versions
concerned and what the operator should do instead; an unreadable version is a problem, not an
exception. Versions are written ``1.36.4`` or ``v1.36.4``.

Kubernetes follows the version skew policy (https://kubernetes.io/releases/version-skew-policy/):
one minor at a time, the apiservers at most one minor apart, kube-controller-manager,
kube-scheduler, kubelet and kube-proxy never newer than the newest apiserver (an upgrade
interrupted after one control-plane host is finished by a re-run), kubelet and kube-proxy at most
three minors older. etcd follows its upgrade policy: patch upgrades within a minor, one minor at a
time, and every member on at least the newest patch of the old minor before any member runs the next.
The run's own settings are checked with them (``settings_problems``): a bad one would stop the run after etcd and the
control plane were upgraded, or drain every node at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible_collections.kubeforge.cluster.plugins.module_utils import _versions

# How many minors kubelet and kube-proxy may be older than kube-apiserver.
NODE_MAX_MINOR_SKEW = 3
CONTROLLERS = ("kube-controller-manager", "kube-scheduler")
NODE_COMPONENTS = ("kubelet", "kube-proxy")
# upgrade_node_batch_size: a number of nodes, or a percentage of them (Ansible's serial forms).
_COUNT = re.compile(r"^[0-9]+$")
_PERCENT = re.compile(r"^([0-9]+)%$")

# First line of `<binary> --version`: the Kubernetes binaries, then etcd.
_VERSION_OUTPUT = (
    re.compile(r"^Kubernetes v([0-9]+\.[0-9]+\.[0-9]+)$"),
    re.compile(r"^etcd Version: ([0-9]+\.[0-9]+\.[0-9]+)$"),
)


def parse_version(text: str) -> tuple[int, int, int] | None:
    """'1.36.4' or 'v1.36.4' -> (1, 36, 4); None when the text is not a release version."""
    text = str(text)
    if text.startswith("v"):
        text = text[1:]
    if _versions.minor_of(text) is None:
        return None
    major, minor, patch = (int(part) for part in text.split("."))
    return major, minor, patch


def _show(version: tuple[int, int, int]) -> str:
    return ".".join(str(part) for part in version)


def _listing(found: list[tuple[str, str, tuple[int, int, int]]]) -> str:
    """[(host, component, version)] -> 'kubelet 1.33.2 on worker1, kube-proxy 1.33.2 on worker1'."""
    return ", ".join(f"{component} {_show(version)} on {host}" for host, component, version in found)


def kubernetes_upgrade_problems(target: str, running: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Why a rolling upgrade of Kubernetes to ``target`` is refused; empty when it is allowed.

    ``running`` maps each host to the versions of its components (kube-apiserver,
    kube-controller-manager, kube-scheduler, kubelet, kube-proxy) read from the host; a component
    absent from a host's mapping is not installed there yet and is ignored. A new cluster (nothing
    running) allows any release target.
    """
    problems: list[str] = []
    wanted = parse_version(target)
    if wanted is None:
        problems.append(f"target Kubernetes version {target!r} is not a release version: write X.Y.Z, for example 1.36.4")
    elif wanted[0] != 1:
        problems.append(f"target Kubernetes version {_show(wanted)} is not 1.x: the collection upgrades within Kubernetes 1 only")
        wanted = None
    found = []
    for host, components in running.items():
        for component in components:
            if component not in _versions.COMPONENTS:
                problems.append(f"host {host} reports an unknown component {component!r}: "
                                f"the versions read must name {', '.join(_versions.COMPONENTS)}")
        for component in _versions.COMPONENTS:
            if component not in components:
                continue
            version = parse_version(components[component])
            if version is None:
                problems.append(f"{component} on {host} reports the version {components[component]!r}, which is not a release version: "
                                f"check `{component} --version` on {host} and repair that installation before upgrading")
            elif version[0] != 1:
                problems.append(f"{component} on {host} runs {_show(version)}, which is not Kubernetes 1.x: "
                                f"the collection manages Kubernetes 1 only; replace that installation before upgrading")
            else:
                found.append((host, component, version))
    if wanted is not None:
        problems.extend(_kubernetes_target_problems(wanted, found))
    problems.extend(_kubernetes_skew_problems(found))
    return problems


def _kubernetes_target_problems(wanted: tuple[int, int, int], found: list) -> list[str]:
    """The rules that compare the target with what runs."""
    problems = []
    target = _show(wanted)
    newer = [entry for entry in found if entry[2] > wanted]
    if newer:
        highest = max(version for _host, _component, version in newer)
        problems.append(f"target {target} is older than what runs: {_listing(newer)}; downgrades are refused: "
                        f"choose a target of at least {_show(highest)}")
    apiservers = [entry for entry in found if entry[1] == "kube-apiserver"]
    if apiservers:
        low = min(version[1] for _host, _component, version in apiservers)
        high = max(version[1] for _host, _component, version in apiservers)
        if wanted[1] > low + 1:
            oldest = [entry for entry in apiservers if entry[2][1] == low]
            problems.append(f"target {target} skips a minor: {_listing(oldest)}; Kubernetes upgrades one minor at a time: "
                            f"upgrade to 1.{low + 1} first")
        if high == low + 1 and wanted[1] != high:
            problems.append(f"an upgrade of the kube-apiservers to 1.{high} was interrupted ({_listing(apiservers)}): "
                            f"target {target} is not on 1.{high}; finish that upgrade first with a 1.{high} target of at least "
                            f"{_show(max(version for _host, _component, version in apiservers))}")
    too_old = [entry for entry in found if entry[1] in NODE_COMPONENTS and wanted[1] - entry[2][1] > NODE_MAX_MINOR_SKEW]
    if too_old:
        problems.append(f"target {target}: kubelet and kube-proxy may be at most {NODE_MAX_MINOR_SKEW} minors older than kube-apiserver, "
                        f"and these are older: {_listing(too_old)}; upgrade them to at least 1.{wanted[1] - NODE_MAX_MINOR_SKEW} first")
    return problems


def _kubernetes_skew_problems(found: list) -> list[str]:
    """The rules the running cluster already breaks, whatever the target."""
    apiservers = [entry for entry in found if entry[1] == "kube-apiserver"]
    if not apiservers:
        return []
    problems = []
    low = min(version[1] for _host, _component, version in apiservers)
    high = max(version[1] for _host, _component, version in apiservers)
    oldest = [entry for entry in apiservers if entry[2][1] == low]
    oldest_hosts = ", ".join(host for host, _component, _version in oldest)
    if high > low + 1:
        problems.append(f"the kube-apiservers span more than one minor ({_listing(apiservers)}): the version skew policy allows one; "
                        f"a rolling upgrade cannot repair this: bring the kube-apiservers on 1.{low} up one minor at a time by hand")
    # An upgrade interrupted after a control-plane host (its apiserver and controllers on 1.N+1, another
    # apiserver still on 1.N) is what a re-run finishes: only a component newer than every apiserver is refused.
    for components, rule in ((CONTROLLERS, "kube-controller-manager and kube-scheduler"), (NODE_COMPONENTS, "kubelet and kube-proxy")):
        newer = [entry for entry in found if entry[1] in components and entry[2][1] > high]
        if newer:
            problems.append(f"{_listing(newer)}: newer than every kube-apiserver ({_listing(apiservers)}); {rule} must not be newer "
                            f"than the kube-apiservers, so the version skew is already broken: bring the kube-apiservers on {oldest_hosts} "
                            f"to the same minor by hand, or return those components to 1.{high}, before upgrading")
    return problems


def etcd_upgrade_problems(target: str, running: Mapping[str, str], newest_patch: Mapping[str, str]) -> list[str]:
    """Why a rolling upgrade of etcd to ``target`` is refused; empty when it is allowed.

    ``running`` maps each etcd member to the version it runs; ``newest_patch`` maps each etcd minor
    the collection knows ("3.5") to its newest patch release ("3.5.35"). A minor upgrade needs
    every member still on the old minor to run at least that minor's newest patch; members already
    on the new minor (an interrupted upgrade) may stay.
    """
    problems: list[str] = []
    wanted = parse_version(target)
    if wanted is None:
        problems.append(f"target etcd version {target!r} is not a release version: write X.Y.Z, for example 3.5.35")
    members = []
    for member, text in running.items():
        version = parse_version(text)
        if version is None:
            problems.append(f"etcd member {member} reports the version {text!r}, which is not a release version: "
                            f"check `etcd --version` on {member} and repair that member before upgrading")
        else:
            members.append((member, "etcd", version))
    if not members:
        return problems
    low = min(version for _member, _name, version in members)
    high = max(version for _member, _name, version in members)
    if high[0] != low[0] or high[1] > low[1] + 1:
        problems.append(f"the etcd members span more than one minor ({_listing(members)}): etcd upgrades one minor at a time; "
                        f"a rolling upgrade cannot repair this: bring the members on {low[0]}.{low[1]} up one minor at a time by hand")
    if wanted is None:
        return problems
    target = _show(wanted)
    newer = [entry for entry in members if entry[2] > wanted]
    if newer:
        problems.append(f"target etcd {target} is older than what runs: {_listing(newer)}; downgrades are refused: "
                        f"choose a target of at least {_show(max(version for _member, _name, version in newer))}")
    other_major = [entry for entry in members if entry[2][0] != wanted[0]]
    if other_major:
        problems.append(f"target etcd {target} is another major version than {_listing(other_major)}: "
                        f"the collection upgrades etcd within one major version only")
    same_major = [entry for entry in members if entry[2][0] == wanted[0]]
    if not same_major:
        return problems
    oldest_minor = min(version[1] for _member, _name, version in same_major)
    old_minor = f"{wanted[0]}.{oldest_minor}"
    on_old_minor = [entry for entry in same_major if entry[2][1] == oldest_minor]
    if wanted[1] > oldest_minor + 1:
        problems.append(f"target etcd {target} skips a minor: {_listing(on_old_minor)}; etcd upgrades one minor at a time: "
                        f"upgrade every member to {wanted[0]}.{oldest_minor + 1} first")
    elif wanted[1] == oldest_minor + 1:
        problems.extend(_etcd_minor_upgrade_problems(target, old_minor, on_old_minor, newest_patch))
    return problems


def _etcd_minor_upgrade_problems(target: str, old_minor: str, on_old_minor: list, newest_patch: Mapping[str, str]) -> list[str]:
    """A minor upgrade to ``target``: every member on ``old_minor`` must run at least its newest patch the
    collection knows (a newer local build of that minor is fine)."""
    names = ", ".join(member for member, _name, _version in on_old_minor)
    if old_minor not in newest_patch:
        return [f"unknown newest patch of etcd {old_minor}: the collection cannot check that {_listing(on_old_minor)} may move to "
                f"{target}; add the newest {old_minor} patch to the collection's etcd versions before upgrading {names}"]
    newest = parse_version(newest_patch[old_minor])
    if newest is None or f"{newest[0]}.{newest[1]}" != old_minor:
        return [f"the newest patch of etcd {old_minor} known to the collection is {newest_patch[old_minor]!r}, "
                f"not a {old_minor}.Z release: correct the collection's etcd versions before upgrading {names}"]
    behind = [entry for entry in on_old_minor if entry[2] < newest]
    if not behind:
        return []
    return [f"target etcd {target} is a minor upgrade, and every member still on {old_minor} must first run its newest patch "
            f"{_show(newest)}: {_listing(behind)}; run the upgrade with target {_show(newest)} first, then with {target}"]


def component_versions(text: str) -> str:
    """The version in the first line of ``<binary> --version``: 'Kubernetes v1.36.4' -> '1.36.4',
    'etcd Version: 3.5.35' -> '3.5.35'; ValueError for any other output."""
    lines = str(text).splitlines()
    first = lines[0].strip() if lines else ""
    for pattern in _VERSION_OUTPUT:
        match = pattern.match(first)
        if match:
            return match.group(1)
    raise ValueError(f"not the output of a Kubernetes or etcd --version: {first!r}")


ETCD_COMPONENT = "etcd"


def newest_patches(versions) -> dict[str, str]:
    """{"3.5": "3.5.35", ...}: the newest release of each minor among ``versions``."""
    newest: dict[str, tuple[int, int, int]] = {}
    for text in versions:
        version = parse_version(str(text))
        if version is not None:
            minor = f"{version[0]}.{version[1]}"
            newest[minor] = max(newest.get(minor, version), version)
    return {minor: _show(version) for minor, version in newest.items()}


def read_versions(reads: Mapping[str, list]) -> tuple[dict, dict, list[str]]:
    """({host: {component: version}} of the Kubernetes components, {host: etcd version}, problems) from
    each host's registered ``<binary> --version`` results (``item`` the component, ``rc`` 0 when it
    is installed, ``stdout``); a component whose binary is absent (rc not 0) is not installed yet."""
    kubernetes: dict[str, dict[str, str]] = {}
    etcd: dict[str, str] = {}
    problems = []
    for host, results in reads.items():
        for result in results or []:
            if result.get("rc") != 0:
                continue
            component = result.get("item")
            try:
                version = component_versions(result.get("stdout", ""))
            except ValueError:
                problems.append(f"{component} on {host}: `{component} --version` printed {str(result.get('stdout', ''))[:80]!r}, no version")
                continue
            if component == ETCD_COMPONENT:
                etcd[host] = version
            else:
                kubernetes.setdefault(host, {})[component] = version
    return kubernetes, etcd, problems


def _whole_number(value) -> int | None:
    """A whole number given as an int or as digits (-e gives text); None otherwise (a bool is not a number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if _COUNT.match(text) else None


def nodes_per_batch(batch_size, nodes: int) -> int | None:
    """How many of ``nodes`` one batch of the nodes' play takes, as Ansible's serial counts it (a percentage rounds
    down, and is at least one node); None when ``batch_size`` is neither a whole number nor a percentage of 1 to 100."""
    count = _whole_number(batch_size)
    if count is not None:
        return count
    percent = _PERCENT.match(str(batch_size).strip())
    if not percent or not 1 <= int(percent.group(1)) <= 100:
        return None
    return max(int(int(percent.group(1)) / 100 * nodes), 1)


def settings_problems(node_batch_size, drain_timeout, nodes: int) -> list[str]:
    """Why upgrade.yml's own settings cannot drive the run: ``node_batch_size`` (upgrade_node_batch_size) nodes at a
    time out of ``nodes``, each drain waiting up to ``drain_timeout`` seconds (upgrade_drain_timeout)."""
    problems = []
    per_batch = nodes_per_batch(node_batch_size, nodes)
    if per_batch is None:
        problems.append(f"upgrade_node_batch_size {node_batch_size} is neither a number of nodes (2) nor a percentage of them"
                        " from 1% to 100% (20%)")
    elif per_batch < 1:
        # Ansible's serial takes 0 as every host at once.
        problems.append(f"upgrade_node_batch_size {node_batch_size}: at least 1 node at a time")
    elif nodes > 1 and per_batch >= nodes:
        problems.append(f"upgrade_node_batch_size {node_batch_size} drains all {nodes} nodes at once, leaving none to run their pods:"
                        f" at most {nodes - 1}")
    timeout = _whole_number(drain_timeout)
    if timeout is None or timeout < 1:
        problems.append(f"upgrade_drain_timeout {drain_timeout} is not a number of seconds (300)")
    return problems

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Read-only facts of a node that the preflight rules and the prepare role need (the node_facts module).

Everything is read below a root directory ('/' on a host), so unit tests build fake /proc, /sys
and /lib/modules trees. The readers are pure functions of file contents; ``NodeFactsBackend``
only finds the files.
"""

from __future__ import annotations

import os
import re

from ansible_collections.kubeforge.cluster.plugins.module_utils._file_record import RECORD_PATH
from ansible_collections.kubeforge.cluster.plugins.module_utils._phases import WRITES

# What the kernel says about IP_VS (the module kube-proxy's ipvs mode needs), best first.
IP_VS_STATES = ("loaded", "builtin", "loadable", "missing")
_IP_VS_FILES = ("ip_vs.ko", "ip_vs.ko.xz", "ip_vs.ko.zst", "ip_vs.ko.gz")
CGROUP_ROOT = "/sys/fs/cgroup"
DPKG_STATUS = "/var/lib/dpkg/status"
# The distributions (ID, or one of ID_LIKE, in /etc/os-release) of each OS family the prepare role knows.
OS_FAMILIES = {"Debian": ("debian", "ubuntu"), "RedHat": ("rhel", "fedora", "centos")}
# The version directory of the artifacts layout (_artifact_install.version_dir: <install_dir>/<name>/v<version>/) a
# linked program points into; read here without importing the installer (tests/unit checks the two agree).
_LINKED_VERSION = re.compile(r"/v(\d+\.\d+\.\d+[^/]*)/[^/]+$")


def cgroup_version_from_mounts(mounts: str) -> int | None:
    """2 when the last mount on /sys/fs/cgroup (/proc/self/mounts) is cgroup2, 1 when it is
    something else (tmpfs of a v1 or hybrid layout), None when nothing is mounted there.

    The kubelet asks the same question (statfs of /sys/fs/cgroup is cgroup2): a hybrid layout,
    with cgroup2 only on /sys/fs/cgroup/unified, counts as v1.
    """
    fstype = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1].rstrip("/") == CGROUP_ROOT:
            fstype = fields[2]  # a later mount on the same point hides the earlier one
    if fstype is None:
        return None
    return 2 if fstype == "cgroup2" else 1


def module_loaded(proc_modules: str, name: str) -> bool:
    """Whether /proc/modules lists ``name`` ('ip_vs 200704 6 ip_vs_rr, Live 0x0')."""
    return any(line.split(" ", 1)[0] == name for line in proc_modules.splitlines())


def module_listed(listing: str, filenames: tuple) -> bool:
    """Whether modules.builtin or modules.dep lists a module file of one of these names.

    modules.builtin has one path a line; modules.dep has 'path: dependencies'.
    """
    for line in listing.splitlines():
        path = line.split(":", 1)[0].strip()
        if path and os.path.basename(path) in filenames:
            return True
    return False


def fstab_swap_entries(fstab: str) -> list[str]:
    """The /etc/fstab lines that mount swap at boot (type 'swap', not commented out)."""
    entries = []
    for line in fstab.splitlines():
        fields = line.split()
        if len(fields) >= 3 and not fields[0].startswith("#") and fields[2] == "swap":
            entries.append(line.strip())
    return entries


def dpkg_installed(status: str) -> list[str]:
    """The packages dpkg's status file says are installed ('Status: install ok installed'), sorted: what
    ``dpkg-query --show`` reports as installed, read without starting it."""
    installed = set()
    for stanza in status.split("\n\n"):
        fields = dict(line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith((" ", "\t")))
        if fields.get("Status", "").split()[-1:] == ["installed"] and fields.get("Package", "").strip():
            installed.add(fields["Package"].strip())
    return sorted(installed)


def os_release(text: str) -> dict[str, str]:
    """The KEY=value lines of an os-release file, values unquoted."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            value = value.strip()
            fields[key] = value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'" else value
    return fields


def os_facts(release: dict[str, str]) -> dict:
    """The OS family (the name Ansible's setup module gives, for the families the prepare role knows; else
    the ID) and the distribution's name, from os-release fields."""
    ids = [release.get("ID", "").lower(), *release.get("ID_LIKE", "").lower().split()]
    family = next((name for name, members in OS_FAMILIES.items() if any(member in ids for member in members)), ids[0] or "unknown")
    return {"family": family, "name": release.get("NAME") or release.get("ID") or "an unknown Linux"}


def swap_total_mb(meminfo: str) -> int:
    """SwapTotal of /proc/meminfo in MiB (0 without swap)."""
    for line in meminfo.splitlines():
        if line.startswith("SwapTotal:"):
            return int(line.split()[1]) // 1024
    return 0


def linked_version(target: str) -> str | None:
    """The release version in the path a program's link points at, in the artifacts layout
    (``<install_dir>/<name>/v<version>/<file>``); None for any other path."""
    match = _LINKED_VERSION.search(target)
    return match.group(1) if match else None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


class NodeFactsBackend:
    """Reads the facts below ``root``; changes nothing. ``bin_dir``: where the phases link the programs they install."""

    def __init__(self, root: str = "/", bin_dir: str = "") -> None:
        self.root = root
        self.bin_dir = bin_dir

    def _path(self, *parts: str) -> str:
        return os.path.join(self.root, *(part.lstrip("/") for part in parts))

    def kernel_release(self) -> str:
        text = _read(self._path("/proc/sys/kernel/osrelease"))
        return text.strip() if text else os.uname().release

    def cgroup_version(self) -> int:
        mounts = _read(self._path("/proc/self/mounts"))
        version = cgroup_version_from_mounts(mounts) if mounts else None
        if version is None:
            # No mount table to read: the unified hierarchy has cgroup.controllers at its root.
            version = 2 if os.path.isfile(self._path(CGROUP_ROOT, "cgroup.controllers")) else 1
        return version

    def ip_vs(self, release: str) -> str:
        if module_loaded(_read(self._path("/proc/modules")) or "", "ip_vs"):
            return "loaded"
        modules_dir = self._path("/lib/modules", release)
        if module_listed(_read(os.path.join(modules_dir, "modules.builtin")) or "", ("ip_vs.ko",)):
            return "builtin"
        sysfs = self._path("/sys/module/ip_vs")
        if os.path.isdir(sysfs):
            # Only a loaded module has initstate; a built-in one with parameters has the directory alone.
            return "loaded" if os.path.exists(os.path.join(sysfs, "initstate")) else "builtin"
        if module_listed(_read(os.path.join(modules_dir, "modules.dep")) or "", _IP_VS_FILES):
            return "loadable"
        return "missing"

    def hostname(self) -> dict:
        """The kernel's (transient) hostname and the one set for boot (/etc/hostname); empty when unreadable."""
        transient = (_read(self._path("/proc/sys/kernel/hostname")) or "").strip()
        static = (_read(self._path("/etc/hostname")) or "").strip()
        return {"transient": transient, "static": static}

    def fstab_swap(self) -> list[str]:
        return fstab_swap_entries(_read(self._path("/etc/fstab")) or "")

    def installed_packages(self) -> list[str] | None:
        """The installed packages of a dpkg host; None on others (the prepare role asks their package manager)."""
        status = _read(self._path(DPKG_STATUS))
        return dpkg_installed(status) if status is not None else None

    def linked_versions(self) -> dict[str, str]:
        """{program: version} of the links in ``bin_dir`` that point into the artifacts layout; {} without ``bin_dir``."""
        if not self.bin_dir:
            return {}
        directory = self._path(self.bin_dir)
        try:
            names = os.listdir(directory)
        except OSError:
            return {}
        versions = {}
        for name in sorted(names):
            try:
                version = linked_version(os.readlink(os.path.join(directory, name)))
            except OSError:  # not a link
                continue
            if version:
                versions[name] = version
        return versions

    def os(self) -> dict:
        text = _read(self._path("/etc/os-release"))
        return os_facts(os_release(text if text is not None else _read(self._path("/usr/lib/os-release")) or ""))

    def facts(self) -> dict:
        release = self.kernel_release()
        return {"cgroup_version": self.cgroup_version(), "ip_vs": self.ip_vs(release), "kernel_release": release,
                "hostname": self.hostname(), "fstab_swap": self.fstab_swap(), "installed_packages": self.installed_packages(),
                "os": self.os(), "swap_total_mb": swap_total_mb(_read(self._path("/proc/meminfo")) or ""),
                "file_record": os.path.isfile(self._path(RECORD_PATH)), "linked_versions": self.linked_versions(),
                "phase_units": {phase: os.path.isfile(self._path(unit)) for phase, (_group, unit) in WRITES.items()}}

    def run(self) -> dict:
        return {"changed": False, "ansible_facts": {"kubeforge_node": self.facts()}}

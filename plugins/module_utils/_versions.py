# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Supported versions and the per-version data the collection carries (flags, config fields).

Controller side only: the data files live beside this module in ``_data/``. The flag lists of a
minor whose folder holds SOURCE.txt were read from the real binaries' --help by
tools/k8s_flags_from_help.py; the other flag lists, the config-api field lists and the checksums
are copied from the project's shared data by tools/sync_shared_data.py.
"""

from __future__ import annotations

import functools
import os
import re

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_data")

SUPPORTED_KUBE_MINORS = ("1.35", "1.36", "1.37")
SUPPORTED_ETCD_MINORS = ("3.5", "3.6")
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def minor_of(version: str) -> str | None:
    """'1.36.4' -> '1.36'; None when the text is not a plain X.Y.Z release version."""
    match = _VERSION_RE.match(str(version))
    return f"{match.group(1)}.{match.group(2)}" if match else None


def _minor_key(minor: str) -> tuple:
    return tuple(int(part) for part in minor.split("."))


@functools.lru_cache(maxsize=None)
def component_flags(minor: str, component: str) -> dict:
    """Flags a component accepts in a minor version: {'--flag': deprecated(bool)}."""
    path = os.path.join(DATA_DIR, "flags", minor, component + ".txt")
    flags = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            name, _sep, marker = line.rstrip("\n").partition("\t")
            if name:
                flags[name] = marker == "deprecated"
    return flags


def config_api_minor(minor: str) -> str:
    """The newest config-api field list at or below a Kubernetes minor version."""
    available = [m for m in os.listdir(os.path.join(DATA_DIR, "config_api")) if _minor_key(m) <= _minor_key(minor)]
    return max(available, key=_minor_key)


@functools.lru_cache(maxsize=None)
def config_fields(minor: str, kind: str, nested: bool = False) -> frozenset:
    """Field names (top-level, or dotted paths when nested) of a config kind for a version."""
    name = kind + (".nested.txt" if nested else ".txt")
    with open(os.path.join(DATA_DIR, "config_api", config_api_minor(minor), name), encoding="utf-8") as handle:
        return frozenset(line.strip() for line in handle if line.strip())

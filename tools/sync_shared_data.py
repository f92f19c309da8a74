# SPDX-License-Identifier: GPL-3.0-or-later
"""Refresh the collection's own copy of release checksums and Kubernetes flag lists.

The product must not depend on ../shared at run time, so the data it needs is copied into
plugins/module_utils/_data/. Run this when ../shared changes, then review the diff:

    python3 tools/sync_shared_data.py [--shared ../shared]

Flag lists: a minor whose folder holds SOURCE.txt was generated from the real binaries' --help
output by tools/k8s_flags_from_help.py and is left alone; only the other minors are copied from
../shared/k8s-flags (whose 1.36 and 1.37 lists are partly derived from release notes). Today 1.36
and 1.37 come from the binaries (1.36.4, 1.37.2) and 1.35 from ../shared. Regenerate a
binary-made minor with that tool, not with this one.

Config-file fields (config_api/) still come from ../shared only: the binaries print no field
lists, and ../shared has none newer than 1.35, so 1.36 and 1.37 use the 1.35 lists
(_versions.config_api_minor picks the newest list at or below the target minor).
"""
from __future__ import annotations

import argparse
import os
import shutil

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "plugins", "module_utils", "_data")

# Minor versions the collection supports; keep in step with _versions.SUPPORTED_*.
KUBE_MINORS = ("1.35", "1.36", "1.37")
ETCD_MINORS = ("3.5", "3.6")
# Artifacts the roles install from files (the control-plane binaries carry a .sha256 beside
# each download instead, and kube-proxy runs from the same release directory).
ARTIFACTS = ("kubelet", "kubectl", "etcd", "containerd", "runc", "cni_plugins", "crictl")
# Written by tools/k8s_flags_from_help.py beside the lists it makes from the binaries.
BINARY_SOURCE = "SOURCE.txt"
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _key(minor: str) -> tuple:
    return tuple(int(p) for p in minor.split("."))


def sync_checksums(shared: str) -> None:
    with open(os.path.join(shared, "checksums", "releases.yml"), encoding="utf-8") as f:
        releases = yaml.safe_load(f)
    kept: dict = {"url_patterns": {k: v for k, v in releases["url_patterns"].items() if k in ARTIFACTS}}
    for name in ARTIFACTS:
        minors = ETCD_MINORS if name == "etcd" else KUBE_MINORS if name in ("kubelet", "kubectl") else None
        kept[name] = {
            arch: {v: s for v, s in sums.items() if minors is None or _minor(v) in minors}
            for arch, sums in releases[name].items()
        }
    with open(os.path.join(DATA, "releases.yml"), "w", encoding="utf-8") as f:
        f.write("---\n# Published sha256 of official release artifacts, copied by tools/sync_shared_data.py.\n")
        yaml.safe_dump(kept, f, sort_keys=False, width=160)


def from_binaries(minor: str) -> bool:
    """True when the minor's flag lists were written by tools/k8s_flags_from_help.py (it leaves SOURCE.txt)."""
    return os.path.exists(os.path.join(DATA, "flags", minor, BINARY_SOURCE))


def sync_flags(shared: str) -> None:
    flags = os.path.join(shared, "k8s-flags")
    for minor in KUBE_MINORS:
        out = os.path.join(DATA, "flags", minor)
        if from_binaries(minor):
            print(f"flags {minor}: generated from the binaries ({BINARY_SOURCE}), not copied from {flags}")
            continue
        os.makedirs(out, exist_ok=True)
        for component in COMPONENTS:
            # A list read from the reference page wins over a derived one.
            for candidate in (os.path.join(flags, minor, component + ".txt"),
                              os.path.join(flags, minor, "derived", component + ".txt")):
                if os.path.exists(candidate):
                    shutil.copyfile(candidate, os.path.join(out, component + ".txt"))
                    break
            else:
                raise SystemExit(f"no flag list for {component} {minor}")
    # Config fields: a target version uses the newest list at or below it, so keep the lists
    # from the newest one at or below the oldest supported minor upwards.
    api_minors = sorted(os.listdir(os.path.join(flags, "config-api")), key=_key)
    floor = max(m for m in api_minors if _key(m) <= _key(KUBE_MINORS[0]))
    for minor in (m for m in api_minors if _key(m) >= _key(floor)):
        out = os.path.join(DATA, "config_api", minor)
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(os.path.join(flags, "config-api", minor), out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=os.path.join(REPO, "..", "shared"))
    args = parser.parse_args()
    os.makedirs(DATA, exist_ok=True)
    sync_checksums(args.shared)
    sync_flags(args.shared)


if __name__ == "__main__":
    main()

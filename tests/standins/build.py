# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build the kubeforge kube-* TEST STAND-INS into an artifacts directory (release layout).

    python3 tests/standins/build.py --flags-dir ../shared/k8s-flags --out DIR VERSION [VERSION...]

For each version and component this writes DIR/release/v<VERSION>/bin/linux/<arch>/<name>, an
executable zip application (``#!/usr/bin/env python3``) holding the kubeforge_standins package and
a data.json with the component's flag list for that minor version (``<minor>/<name>.txt``, or
``<minor>/derived/<name>.txt`` where the flags README puts it) and the config-api field lists
(the newest list at or below the version), and ``<name>.sha256`` beside it in sha256sum format.
The zip is stored uncompressed with fixed timestamps and sorted entries, so the same sources
give the same bytes and the same checksum. Uses the standard library only.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = "kubeforge_standins"
sys.path.insert(0, HERE)

from kubeforge_standins.common import COMPONENT_CONFIGS, CONFIG_KINDS  # noqa: E402  pylint: disable=wrong-import-position

SHEBANG = b"#!/usr/bin/env python3\n"
MODULES = {name: name.replace("-", "_") for name in COMPONENT_CONFIGS}
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


class BuildError(Exception):
    pass


def read_list(path: str) -> list:
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.strip() and not line.startswith("#")]


def flag_list(flags_dir: str, minor: str, component: str) -> tuple:
    """({flag: deprecated?}, source path relative to flags_dir)."""
    for relative in (f"{minor}/{component}.txt", f"{minor}/derived/{component}.txt"):
        path = os.path.join(flags_dir, relative)
        if os.path.isfile(path):
            flags = {}
            for line in read_list(path):
                name, _tab, marker = line.partition("\t")
                flags[name.strip()] = marker.strip() == "deprecated"
            return flags, relative
    raise BuildError(f"no flag list for {component} {minor} in {flags_dir} (looked for {minor}/ and {minor}/derived/)")


def config_lists(flags_dir: str, minor: str, kinds: tuple) -> dict:
    """The config-api lists of the newest version at or below ``minor``."""
    base = os.path.join(flags_dir, "config-api")
    wanted = tuple(int(part) for part in minor.split("."))
    versions = sorted((tuple(int(part) for part in name.split(".")), name) for name in os.listdir(base)
                      if re.match(r"^\d+\.\d+$", name))
    usable = [name for number, name in versions if number <= wanted]
    if kinds and not usable:
        raise BuildError(f"no config-api list at or below {minor} in {base}")
    result = {}
    for kind in kinds:
        source = f"config-api/{usable[-1]}/{kind}"
        result[kind] = {
            "apiVersion": CONFIG_KINDS[kind],
            "fields": read_list(os.path.join(flags_dir, source + ".txt")),
            "paths": read_list(os.path.join(flags_dir, source + ".nested.txt")),
            "source": source + ".nested.txt",
        }
    return result


def data_for(flags_dir: str, version: str, component: str) -> dict:
    major, minor_number = _VERSION.match(version).groups()[:2]
    minor = f"{major}.{minor_number}"
    if component == "kubectl":
        flags, source = {}, "(kubectl has its own small flag set)"
    else:
        flags, source = flag_list(flags_dir, minor, component)
    return {"component": component, "version": version, "minor": minor, "flags": flags, "flag_list": source,
            "configs": config_lists(flags_dir, minor, COMPONENT_CONFIGS[component])}


def archive(component: str, data: dict) -> bytes:
    """The zip application: deterministic bytes for the same inputs."""
    module = MODULES[component]
    files = {
        "__main__.py": (f"# kubeforge TEST STAND-IN for {component} (tests only; real hosts run the official binary)\n"
                        f"import sys\nfrom {PACKAGE} import {module}\nsys.exit({module}.main(sys.argv[1:]))\n").encode(),
        f"{PACKAGE}/data.json": (json.dumps(data, indent=1, sort_keys=True) + "\n").encode(),
    }
    for name in ("__init__.py", "common.py", module + ".py"):
        with open(os.path.join(HERE, PACKAGE, name), "rb") as handle:
            files[f"{PACKAGE}/{name}"] = handle.read()
    buffer = io.BytesIO()
    buffer.write(SHEBANG)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as bundle:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.create_system = 3
            bundle.writestr(info, files[name])
    return buffer.getvalue()


def install(out: str, version: str, arch: str, component: str, content: bytes) -> str:
    directory = os.path.join(out, "release", f"v{version}", "bin", "linux", arch)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, component)
    sidecar = f"{hashlib.sha256(content).hexdigest()}  {component}\n".encode()
    for target, payload, mode in ((path, content, 0o755), (path + ".sha256", sidecar, 0o644)):
        try:
            with open(target, "rb") as handle:
                unchanged = handle.read() == payload
        except OSError:
            unchanged = False
        if not unchanged:
            temporary = target + ".tmp"
            with open(temporary, "wb") as handle:
                handle.write(payload)
            os.replace(temporary, target)
        os.chmod(target, mode)
    return path


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--flags-dir", required=True, help="the shared k8s-flags directory (../shared/k8s-flags)")
    parser.add_argument("--out", required=True, help="artifacts directory (release layout below it)")
    parser.add_argument("--arch", default="amd64")
    parser.add_argument("versions", nargs="+", metavar="VERSION", help="Kubernetes version, e.g. 1.36.4")
    args = parser.parse_args(argv)
    try:
        for version in args.versions:
            if not _VERSION.match(version):
                raise BuildError(f"{version!r} is not a Kubernetes version like 1.36.4")
            for component in MODULES:
                path = install(args.out, version, args.arch, component, archive(component, data_for(args.flags_dir, version, component)))
                print(f"build-standins: {path}", file=sys.stderr)
    except (BuildError, OSError) as exc:
        print(f"build-standins: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

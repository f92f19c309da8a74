# SPDX-License-Identifier: GPL-3.0-or-later
"""Write the collection's per-version flag lists from the real binaries' --help output.

For each VERSION, runs `<component> --help` for kube-apiserver, kube-controller-manager,
kube-scheduler, kubelet and kube-proxy from an artifacts directory in the official release layout
(<dir>/release/v<VERSION>/bin/linux/amd64/<component>, as tests/harness/upstream/build.py lays it
out) and writes plugins/module_utils/_data/flags/<minor>/<component>.txt in the format described
in ../shared/k8s-flags/README.md: one long flag name per line (`-v, --v` gives `--v`), followed by
`<TAB>deprecated` when the flag's help text contains DEPRECATED (the `(DEPRECATED - default=...)`
markers of the feature gates listed in --feature-gates do not count), sorted in byte order.

Beside the lists it writes <minor>/SOURCE.txt naming the binaries; tools/sync_shared_data.py
leaves a minor holding that file alone. Prints, per component, the number of flags and deprecated
flags and what was added, removed, newly deprecated or no longer deprecated against the list it
replaces:

    python3 tools/k8s_flags_from_help.py --artifacts-dir DIR VERSION [VERSION...]

Only what --help prints is listed: a flag hidden from --help (pflag's MarkHidden/MarkDeprecated)
is left out, so preflight refuses it for that version.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "plugins", "module_utils", "_data", "flags")
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
ARCH = "amd64"
SOURCE_FILE = "SOURCE.txt"

# pflag prints a flag as `  -x, --name type   usage` (with a shorthand) or `      --name type   usage`;
# usage lines after the first are indented to the usage column, deeper than either form.
_FLAG_LINE = re.compile(r"^(?:  -[^-\s], |      )--(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)(?=[\s=\[]|$)(?P<rest>.*)$")
# A feature gate in the --feature-gates value list: `Name=true|false (DEPRECATED - default=false)`.
_GATE_MARKER = re.compile(r"\((?:ALPHA|BETA|GA|DEPRECATED)\s+-\s+default=[^)]*\)")
_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


class HelpError(Exception):
    """A binary that is missing, does not run, or prints no flags."""


def parse_help(text: str) -> dict:
    """{'--flag': deprecated(bool)} from a pflag/cobra --help output.

    A flag's help text is its own line plus the indented lines that follow it; an unindented line
    (a section header such as "Generic flags:", or "Usage:") ends it.
    """
    texts: dict = {}
    current = None
    for line in text.splitlines():
        match = _FLAG_LINE.match(line)
        if match:
            current = "--" + match.group("name")
            texts.setdefault(current, []).append(match.group("rest"))
        elif line[:1].isspace() and current is not None:
            texts[current].append(line)
        elif line.strip():
            current = None
    return {name: "DEPRECATED" in _GATE_MARKER.sub("", "\n".join(lines)) for name, lines in texts.items()}


def format_list(flags: dict) -> str:
    """The file format: one flag a line, `<TAB>deprecated` when marked, byte order."""
    return "".join(f"{name}\tdeprecated\n" if flags[name] else f"{name}\n" for name in sorted(flags, key=lambda n: n.encode()))


def read_list(path: str) -> dict | None:
    """A flag list file as {'--flag': deprecated}; None when there is none."""
    if not os.path.exists(path):
        return None
    flags = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            name, _sep, marker = line.rstrip("\n").partition("\t")
            if name:
                flags[name] = marker == "deprecated"
    return flags


def compare(old: dict | None, new: dict) -> dict:
    """What changed from one list to the next: added, removed, deprecated, undeprecated (sorted names)."""
    old = old or {}
    common = set(old) & set(new)
    return {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "deprecated": sorted(n for n in common if new[n] and not old[n]),
        "undeprecated": sorted(n for n in common if old[n] and not new[n]),
    }


def minor_of(version: str) -> str:
    match = _VERSION_RE.match(version)
    if not match:
        raise HelpError(f"{version!r} is not a release version (X.Y.Z)")
    return f"{match.group(1)}.{match.group(2)}"


def binary_path(artifacts_dir: str, version: str, component: str) -> str:
    return os.path.join(artifacts_dir, "release", "v" + version.lstrip("v"), "bin", "linux", ARCH, component)


def _run(path: str, arg: str) -> str:
    if not os.access(path, os.X_OK):
        raise HelpError(f"{path} is missing: build the artifacts (python3 tests/harness/upstream/build.py)")
    try:
        result = subprocess.run([path, arg], capture_output=True, text=True, timeout=120, check=False,
                                stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HelpError(f"{path} {arg}: {exc}") from exc
    if result.returncode != 0:
        raise HelpError(f"{path} {arg} exited {result.returncode}: {result.stderr[-2000:]}")
    # cobra prints help on stdout; fall back to stderr should a binary print it there.
    return result.stdout if result.stdout.strip() else result.stderr


def component_help(artifacts_dir: str, version: str, component: str) -> str:
    """The --help output of one binary, after checking that --version reports VERSION."""
    path = binary_path(artifacts_dir, version, component)
    reported = _run(path, "--version").split()
    if "v" + version.lstrip("v") not in reported:
        raise HelpError(f"{path} --version says {' '.join(reported)!r}, expected v{version.lstrip('v')}")
    return _run(path, "--help")


def _names(names: list, limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def write_version(artifacts_dir: str, version: str, data_dir: str = DATA) -> list:
    """Write the five lists and SOURCE.txt of one version; summary lines."""
    version = version.lstrip("v")
    minor = minor_of(version)
    out = os.path.join(data_dir, minor)
    lists = {}
    for component in COMPONENTS:
        flags = parse_help(component_help(artifacts_dir, version, component))
        if "--help" not in flags or len(flags) < 10:
            raise HelpError(f"{component} {version} --help: found only {len(flags)} flags; is this pflag help output?")
        lists[component] = flags
    os.makedirs(out, exist_ok=True)
    lines = []
    for component, flags in lists.items():
        path = os.path.join(out, component + ".txt")
        changes = compare(read_list(path), flags)
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(format_list(flags))
        os.replace(path + ".tmp", path)
        lines.append(f"{version} {component}: {len(flags)} flags, {sum(flags.values())} deprecated; "
                     f"+{len(changes['added'])} -{len(changes['removed'])} "
                     f"deprecated +{len(changes['deprecated'])} -{len(changes['undeprecated'])} against the previous list")
        for key, label in (("added", "added"), ("removed", "removed"), ("deprecated", "now deprecated"),
                           ("undeprecated", "no longer deprecated")):
            if changes[key]:
                lines.append(f"    {label}: {_names(changes[key])}")
    with open(os.path.join(out, SOURCE_FILE), "w", encoding="utf-8") as handle:
        handle.write(f"Generated by tools/k8s_flags_from_help.py from the --help output of {', '.join(COMPONENTS)} "
                     f"v{version} (linux/{ARCH}).\ntools/sync_shared_data.py does not overwrite the lists of this minor.\n")
    return lines


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts-dir", required=True, help="artifacts directory in the release layout")
    parser.add_argument("--data-dir", default=DATA, help="where the <minor>/ folders go (default: the collection's)")
    parser.add_argument("versions", nargs="+", metavar="VERSION", help="e.g. 1.36.4")
    args = parser.parse_args(argv)
    minors = [minor_of(v.lstrip("v")) for v in args.versions]
    if len(set(minors)) != len(minors):
        parser.error("give one version per minor")
    try:
        for version in args.versions:
            for line in write_version(args.artifacts_dir, version, args.data_dir):
                print(line)
    except HelpError as exc:
        print(f"k8s_flags_from_help: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

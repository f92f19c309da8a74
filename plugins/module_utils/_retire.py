# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Retire a node host that leaves the cluster: the backend of the node_retire module.

One run, in this order: stop and disable the node's services (systemctl; the kubelet among them, so
that no pod is started again), remove every pod sandbox the container runtime still has (crictl),
stop and disable the runtime's own service, delete the pod network's devices (ip link), then move each
state directory aside - every mount at or below it unmounted first, deepest first, then the directory
renamed to ``<path>.removed-<stamp>`` in its own directory and that directory fsynced. No file is deleted.

The pod network's devices go because they hold the node's pod subnet: the CNI bridge keeps its gateway
address, and a host added again gets another subnet, on which the bridge plugin refuses every pod
("already has an IP address different from ...").

What can be checked before changing anything is checked first and every problem is reported in one
error: paths that are relative or system directories, a path on another file system than its
directory (a btrfs subvolume: a rename cannot move it), a moved-aside name already taken, a device
pattern that matches any name, the loopback device or a device of the host's default route.

Pure parsers (``/proc/self/mountinfo``, ``systemctl show``, ``/proc/net/route``) are separate functions
tested against recorded output; the backend gets its command runner, clock, mount table, network devices
and routes through its constructor.
"""

from __future__ import annotations

import datetime
import errno
import fnmatch
import os
import re
import socket
import stat
from collections.abc import Callable, Iterable, Mapping

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError
from ansible_collections.kubeforge.cluster.plugins.module_utils._units import parse_unit_state
from ansible_collections.kubeforge.cluster.plugins.module_utils._fs import sync_directory

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
MOVED_MARK = ".removed-"
MOUNTINFO = "/proc/self/mountinfo"
UNIX_SCHEME = "unix://"
DEFAULT_ENDPOINT = "unix:///run/containerd/containerd.sock"
# Never moved aside, whatever a playbook says: the root, the FHS top-level directories and the few
# below them that hold the whole system. Paths below them (/var/lib/kubelet) are what this is for.
PROTECTED_PATHS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media", "/mnt", "/opt", "/proc",
    "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/local/bin",
    "/usr/sbin", "/var", "/var/cache", "/var/lib", "/var/log", "/var/run", "/var/tmp",
})
SYS_CLASS_NET = "/sys/class/net"
ROUTE_TABLES = ("/proc/net/route", "/proc/net/ipv6_route")
LOOPBACK = "lo"
_WILDCARDS = re.compile(r"\[[^\]]*\]|[*?]")
ACTIVE_STATES = frozenset({"active", "activating", "reloading", "refreshing", "deactivating"})
ENABLED_STATES = {"enabled": [], "enabled-runtime": ["--runtime"]}  # UnitFileState -> extra `systemctl disable` flags
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


class RetireError(KubeforgeError):
    """The node cannot be retired; ``errors`` lists every problem, ``result`` what was done before it."""

    def __init__(self, msg: str, errors: list[str] | None = None, result: dict | None = None) -> None:
        super().__init__(msg)
        self.errors = list(errors) if errors else [msg]
        self.result = result or {}


# -- pure functions ------------------------------------------------------------------------------------

def decode_mount_field(field: str) -> str:
    """A mountinfo field with the kernel's octal escapes (``\\040`` space, ``\\011`` tab, ``\\012``
    newline, ``\\134`` backslash) decoded."""
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[str]:
    """The mount points of a ``/proc/<pid>/mountinfo`` text (field 5), in the kernel's order, escapes decoded.

    A mount point mounted over more than once appears once per mount."""
    points = []
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) >= 5 and fields[4].startswith("/"):
            points.append(decode_mount_field(fields[4]))
    return points


def is_at_or_below(candidate: str, path: str) -> bool:
    """Whether ``candidate`` is ``path`` or inside it (``/a/bc`` is not inside ``/a/b``)."""
    path = path.rstrip("/") or "/"
    return candidate == path or candidate.startswith(path if path == "/" else path + "/")


def mounts_below(mount_points: Iterable[str], path: str) -> list[str]:
    """The mount points at or below ``path``, deepest first; mounts at the same depth latest first (the
    kernel lists a mount after the one it covers), so each can be unmounted in the order given."""
    found = [(index, point) for index, point in enumerate(mount_points) if is_at_or_below(point, path)]
    found.sort(key=lambda item: (item[1].rstrip("/").count("/"), item[0]), reverse=True)
    return [point for _index, point in found]


def moved_aside_name(path: str, stamp: str) -> str:
    """Where ``path`` is moved: beside it, as ``<path>.removed-<stamp>``."""
    return f"{path.rstrip('/')}{MOVED_MARK}{stamp}"


def normalize_path(path: str) -> str:
    """``path`` without ``.``/``..`` components, doubled or trailing slashes."""
    normal = os.path.normpath(path)
    return "/" + normal.lstrip("/") if normal.startswith("/") else normal


def validate_paths(paths: Iterable[str]) -> list[str]:
    """The paths, normalized; raises RetireError naming every path that is not absolute or is a system directory."""
    normalized, problems = [], []
    for path in paths:
        if not path or not os.path.isabs(path):
            problems.append(f"{path!r} is not an absolute path")
            continue
        normal = normalize_path(path)
        if normal in PROTECTED_PATHS:
            problems.append(f"{path} is a system directory" + (f" ({normal})" if normal != path else ""))
            continue
        normalized.append(normal)
    if problems:
        raise RetireError("refusing to move these paths aside: " + "; ".join(problems), problems)
    return normalized


def parse_default_route_devices(route: str, ipv6_route: str) -> set[str]:
    """The devices of the host's default routes, from the texts of /proc/net/route (IPv4: destination and mask
    00000000, after a header line) and /proc/net/ipv6_route (destination all zeros, prefix length 00; device last)."""
    devices = set()
    for line in route.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000":
            devices.add(fields[0])
    for line in ipv6_route.splitlines():
        fields = line.split()
        if len(fields) >= 10 and fields[0] == "0" * 32 and fields[1] == "00":
            devices.add(fields[9])
    return devices


def link_pattern_problem(pattern: str) -> str | None:
    """What is wrong with a device name or shell pattern (``flannel.*``): empty, not a device name, or matching any name."""
    if not pattern or "/" in pattern or any(char.isspace() for char in pattern):
        return f"{pattern!r} is not a network device name or pattern"
    if not _WILDCARDS.sub("", pattern):
        return f"{pattern} matches any device name"
    return None


def link_pattern_problems(patterns: Iterable[str]) -> list[str]:
    """The problems of ``patterns`` (link_pattern_problem), in their order."""
    return [problem for pattern in patterns if (problem := link_pattern_problem(pattern))]


def matching_links(devices: Iterable[str], patterns: Iterable[str]) -> list[str]:
    """The devices matched by one of ``patterns``, in the patterns' order, each once."""
    found: list[str] = []
    for pattern in patterns:
        found += [name for name in sorted(devices) if fnmatch.fnmatchcase(name, pattern) and name not in found]
    return found


def socket_path(endpoint: str) -> str:
    """The socket file of a CRI endpoint: the part after ``unix://`` (an endpoint without it is the path itself)."""
    return endpoint[len(UNIX_SCHEME):] if endpoint.startswith(UNIX_SCHEME) else endpoint


def runtime_listening(path: str) -> bool:
    """Whether a process listens on the unix socket ``path``; False for no file, another kind of file, or the
    socket a stopped or crashed runtime left behind (nothing to remove, so nothing to fail on)."""
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return False
    except OSError:
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(5)
    try:
        probe.connect(path)
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return False
        raise RetireError(f"cannot connect to the container runtime at {path}: {exc.strerror or exc}") from exc
    finally:
        probe.close()
    return True


def device(path: str) -> int:
    """The file system (st_dev) ``path`` itself is on (a symbolic link is not followed)."""
    return os.lstat(path).st_dev


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def read_mountinfo() -> str:
    with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as handle:
        return handle.read()


def read_net_devices() -> list[str]:
    return os.listdir(SYS_CLASS_NET)


def read_route_tables() -> tuple[str, str]:
    """The texts of /proc/net/route and /proc/net/ipv6_route ('' for a table the host lacks: no IPv6)."""
    texts = []
    for path in ROUTE_TABLES:
        try:
            with open(path, encoding="utf-8") as handle:
                texts.append(handle.read())
        except FileNotFoundError:
            texts.append("")
    return texts[0], texts[1]


def _message(rc: int, out: str, err: str) -> str:
    return (err or "").strip() or (out or "").strip() or f"exit status {rc}"


# -- the backend -------------------------------------------------------------------------------------

class NodeRetirer:
    """The module's backend.

    ``run_command(argv) -> (rc, stdout, stderr)`` runs crictl, systemctl, ip and umount (AnsibleModule.run_command
    in the module); ``clock()`` gives the time, a timezone-aware datetime, read once per run for the stamp of
    the moved-aside names; ``mountinfo()`` gives the text of /proc/self/mountinfo; ``net_devices()`` the host's
    network devices and ``routes()`` the texts of its IPv4 and IPv6 route tables (read only when ``links`` are
    given); ``systemctl``, ``ip`` and ``umount`` are the binaries to run.
    """

    def __init__(self, params: Mapping, run_command: Callable[[list], tuple], clock: Callable[[], datetime.datetime] = utc_now,
                 mountinfo: Callable[[], str] = read_mountinfo, net_devices: Callable[[], list] = read_net_devices,
                 routes: Callable[[], tuple] = read_route_tables, systemctl: str = "systemctl", ip: str = "ip",
                 umount: str = "umount") -> None:
        self.crictl = params.get("crictl")
        self.endpoint = params.get("runtime_endpoint") or DEFAULT_ENDPOINT
        self.services = list(params.get("services") or [])
        self.runtime_service = params.get("runtime_service")
        self.paths = list(params.get("paths") or [])
        self.links = list(params.get("links") or [])
        self.run_command = run_command
        self.clock = clock
        self.mountinfo = mountinfo
        self.net_devices = net_devices
        self.routes = routes
        self.systemctl = systemctl
        self.ip = ip
        self.umount = umount

    def run(self, check_mode: bool = False) -> dict:
        refusals: list[RetireError] = []
        paths: list[str] = []
        try:
            paths = validate_paths(self.paths)
        except RetireError as exc:
            refusals.append(exc)
        stamp = self.clock().astimezone(datetime.timezone.utc).strftime(STAMP_FORMAT)
        try:
            self._check_paths(paths, stamp)
        except RetireError as exc:
            refusals.append(exc)
        links = self._links_to_delete(refusals)
        if refusals:
            raise RetireError("; ".join(str(exc) for exc in refusals), [error for exc in refusals for error in exc.errors])
        result = {"changed": False, "pods_removed": 0, "stopped": [], "disabled": [], "missing": [], "links_deleted": [],
                  "moved": [], "unmounted": []}
        try:
            for unit in self.services:
                self._retire_unit(unit, result, check_mode)
            result["pods_removed"] = self._remove_pods(check_mode)
            if self.runtime_service:
                self._retire_unit(self.runtime_service, result, check_mode)
            # Once the pods are gone (their veths with them) and the runtime stopped: nothing recreates them.
            for name in links:
                self._delete_link(name, result, check_mode)
            gone: list[str] = []
            for path in paths:
                self._move_aside(path, stamp, result, gone, check_mode)
        except RetireError as exc:
            exc.result = _finish(result)
            raise
        return _finish(result)

    # -- before any change ---------------------------------------------------------------------------
    def _check_paths(self, paths: list[str], stamp: str) -> None:
        """Every problem a path will meet that can be seen now, in one error."""
        mounted = set(parse_mountinfo(self.mountinfo()))
        problems = []
        for path in paths:
            if not os.path.lexists(path):
                continue
            target = moved_aside_name(path, stamp)
            if os.path.lexists(target):
                problems.append(f"{path}: {target} already exists")
            # A mount point is on its parent's file system once unmounted; that is checked again then.
            try:
                if _resolved(path) not in mounted and not _same_file_system(path):
                    problems.append(_other_file_system(path))
            except OSError as exc:
                problems.append(f"cannot read {path}: {exc.strerror or exc}")
        if problems:
            raise RetireError("cannot move these paths aside: " + "; ".join(problems), problems)

    def _links_to_delete(self, refusals: list) -> list[str]:
        """The devices ``links`` match now; a bad pattern, or one matching the loopback device or a device of the
        host's default route (the way its own traffic leaves), is added to ``refusals``."""
        if not self.links:
            return []
        checked = [(pattern, link_pattern_problem(pattern)) for pattern in self.links]
        problems = [problem for _pattern, problem in checked if problem]
        links = matching_links(self.net_devices(), [pattern for pattern, problem in checked if not problem])
        routed = parse_default_route_devices(*self.routes())
        for name in links:
            if name == LOOPBACK:
                problems.append(f"{name} is the loopback device")
            elif name in routed:
                problems.append(f"{name} carries a default route of the host")
        if problems:
            refusals.append(RetireError("refusing to delete these network devices: " + "; ".join(problems), problems))
        return links

    # -- pods ------------------------------------------------------------------------------------------
    def _remove_pods(self, check_mode: bool) -> int:
        if not self.crictl or not os.path.isfile(self.crictl) or not runtime_listening(socket_path(self.endpoint)):
            return 0
        crictl = [self.crictl, "--runtime-endpoint", self.endpoint]
        rc, out, err = self.run_command(crictl + ["pods", "-q"])
        if rc != 0:
            raise RetireError(f"crictl pods failed: {_message(rc, out, err)}")
        pods = [line.strip() for line in out.splitlines() if line.strip()]
        if pods and not check_mode:
            rc, out, err = self.run_command(crictl + ["rmp", "--all", "--force"])
            if rc != 0:
                raise RetireError(f"crictl rmp --all --force failed: {_message(rc, out, err)}")
        return len(pods)

    # -- services --------------------------------------------------------------------------------------
    def _systemctl(self, *args: str) -> str:
        rc, out, err = self.run_command([self.systemctl, *args])
        if rc != 0:
            raise RetireError(f"systemctl {' '.join(args)} failed: {_message(rc, out, err)}")
        return out

    def _retire_unit(self, unit: str, result: dict, check_mode: bool) -> None:
        state = parse_unit_state(self._systemctl("show", "--property=LoadState", "--property=ActiveState",
                                                 "--property=UnitFileState", "--", unit))
        if state.get("LoadState", "not-found") == "not-found":
            result["missing"].append(unit)
            return
        if state.get("ActiveState") in ACTIVE_STATES:
            if not check_mode:
                self._systemctl("stop", "--", unit)
            result["stopped"].append(unit)
        flags = ENABLED_STATES.get(state.get("UnitFileState", ""))
        if flags is not None:
            if not check_mode:
                self._systemctl("disable", *flags, "--", unit)
            result["disabled"].append(unit)

    # -- network devices -------------------------------------------------------------------------------
    def _delete_link(self, name: str, result: dict, check_mode: bool) -> None:
        if not check_mode:
            rc, out, err = self.run_command([self.ip, "link", "delete", "dev", name])
            # One gone with another since it was listed (a veth with its peer) is not a failure.
            if rc != 0 and name in self.net_devices():
                raise RetireError(f"cannot delete the network device {name}: {_message(rc, out, err)}")
        result["links_deleted"].append(name)

    # -- paths -----------------------------------------------------------------------------------------
    def _move_aside(self, path: str, stamp: str, result: dict, gone: list[str], check_mode: bool) -> None:
        # In check mode a path inside one already (to be) moved is gone too, as it will be in a real run.
        if not os.path.lexists(path) or any(is_at_or_below(path, moved) for moved in gone):
            return
        self._unmount_below(path, result, check_mode)
        if not check_mode and not _same_file_system(path):
            raise RetireError(_other_file_system(path))
        target = moved_aside_name(path, stamp)
        if not check_mode:
            if os.path.lexists(target):  # checked before any change; this is for a name taken since
                raise RetireError(f"cannot move {path} aside: {target} already exists")
            try:
                os.rename(path, target)
                sync_directory(os.path.dirname(path))
            except OSError as exc:
                raise RetireError(f"cannot move {path} to {target}: {exc.strerror or exc}") from exc
        gone.append(path)
        result["moved"].append({"path": path, "moved_to": target})

    def _unmount_below(self, path: str, result: dict, check_mode: bool) -> None:
        for point in mounts_below(parse_mountinfo(self.mountinfo()), _resolved(path)):
            if not check_mode:
                rc, out, err = self.run_command([self.umount, point])
                # A mount gone with another (propagation between shared mounts) is not a failure.
                if rc != 0 and point in parse_mountinfo(self.mountinfo()):
                    raise RetireError(f"cannot unmount {point}: {_message(rc, out, err)}")
            result["unmounted"].append(point)


def _resolved(path: str) -> str:
    """``path`` as the mount table names it: its directory's symbolic links resolved, not its own last component."""
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def _same_file_system(path: str) -> bool:
    return device(path) == os.stat(os.path.dirname(path)).st_dev


def _other_file_system(path: str) -> str:
    return (f"{path} is on another file system than {os.path.dirname(path)} (a btrfs subvolume, or a mount this "
            "host's mount table does not show); a rename cannot move it - move or remove it by hand")


def _finish(result: dict) -> dict:
    result["changed"] = bool(result["pods_removed"] or result["stopped"] or result["disabled"] or result["links_deleted"]
                             or result["moved"] or result["unmounted"])
    return result

# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The backend of node_retire (_retire): mountinfo, systemctl and route table parsers on recorded output,
path and device checks, and NodeRetirer on a fake host - its commands answered by a fake systemd, crictl,
ip and mount table, its directories in tmp_path."""
from __future__ import annotations

import datetime
import os
import shutil
import socket
import tempfile

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils import _retire as retire
from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError

POD = "/var/lib/kubelet/pods/0c6e1f04-7a9d-4a4e-9a40-61d7f3c2b6a1/volumes"
# /proc/self/mountinfo of a worker with two pod volumes, a containerd rootfs, a directory whose name
# has a space (the kernel writes it \040) and a sibling of /var/lib/kubelet with the same prefix.
MOUNTINFO = rf"""22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
25 22 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=4008048k,nr_inodes=1002012,mode=755
26 22 0:25 / /run rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs tmpfs rw,size=805708k,mode=755
31 22 259:3 / /var/lib/containerd rw,relatime shared:20 - xfs /dev/nvme1n1 rw,attr2,inode64,noquota
412 22 0:58 / {POD}/kubernetes.io~projected/kube-api-access-x2v9q rw,relatime shared:220 - tmpfs tmpfs rw,size=7995400k
415 22 0:59 / {POD}/kubernetes.io~secret/webhook\040certs rw,relatime shared:223 - tmpfs tmpfs rw,size=7995400k
420 26 0:61 / /run/containerd/io.containerd.runtime.v2.task/k8s.io/5d3c0a9b/rootfs rw,relatime shared:230 - overlay overlay rw,lowerdir=/l1
433 22 0:62 / /var/lib/kubelet-plugins/csi rw,relatime shared:240 - tmpfs tmpfs rw
"""

SHOW_ACTIVE_ENABLED = "LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n"
SHOW_NOT_FOUND = "LoadState=not-found\nActiveState=inactive\nUnitFileState=\n"
SHOW_MASKED = "LoadState=masked\nActiveState=inactive\nUnitFileState=masked\n"
# /proc/net/route and /proc/net/ipv6_route of a lab worker (flannel vxlan): the default route on eth0, the pod
# subnets on flannel.1 and cni0; IPv6 has only the kernel's unreachable defaults, on lo.
ROUTE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t01281EAC\t0003\t0\t0\t0\t00000000\t0\t0\t0
flannel.1\t0000F40A\t0000F40A\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0
cni0\t0002F40A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t00281EAC\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""
IPV6_ROUTE = ("00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 "
              "ffffffff 00000001 00000000 00200200       lo\n")
# A host whose IPv6 default route leaves through ens5 (and a /64 on it that is not a default).
IPV6_DEFAULT = ("20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 "
                "00000100 00000001 00000000 00000001     ens5\n"
                "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 "
                "00000400 00000001 00000000 00000003     ens5\n")
NOW = datetime.datetime(2025, 3, 1, 10, 15, 0, tzinfo=datetime.timezone.utc)
STAMP = "20250301T101500Z"


# -- pure functions ------------------------------------------------------------------------------------

def test_parse_mountinfo_reads_field_five_with_escapes_decoded():
    assert retire.parse_mountinfo(MOUNTINFO) == [
        "/", "/proc", "/sys", "/dev", "/run", "/var/lib/containerd",
        f"{POD}/kubernetes.io~projected/kube-api-access-x2v9q",
        f"{POD}/kubernetes.io~secret/webhook certs",
        "/run/containerd/io.containerd.runtime.v2.task/k8s.io/5d3c0a9b/rootfs",
        "/var/lib/kubelet-plugins/csi",
    ]


@pytest.mark.parametrize("field, decoded", [
    (r"/mnt/a\040b", "/mnt/a b"),
    (r"/mnt/tab\011here", "/mnt/tab\there"),
    (r"/mnt/back\134slash", "/mnt/back\\slash"),
    (r"/mnt/line\012feed", "/mnt/line\nfeed"),
    ("/mnt/plain", "/mnt/plain"),
])
def test_decode_mount_field(field, decoded):
    assert retire.decode_mount_field(field) == decoded


def test_parse_mountinfo_skips_blank_and_short_lines():
    assert retire.parse_mountinfo("\n36 35 98:0\n36 35 98:0 / /mnt rw - ext4 /dev/x rw\n") == ["/mnt"]


@pytest.mark.parametrize("path, expected", [
    ("/var/lib/kubelet", [f"{POD}/kubernetes.io~secret/webhook certs", f"{POD}/kubernetes.io~projected/kube-api-access-x2v9q"]),
    ("/var/lib/kubelet/", [f"{POD}/kubernetes.io~secret/webhook certs", f"{POD}/kubernetes.io~projected/kube-api-access-x2v9q"]),
    ("/var/lib/containerd", ["/var/lib/containerd"]),  # the path itself
    ("/var/lib/kubelet-plugins", ["/var/lib/kubelet-plugins/csi"]),
    ("/var/lib/kube", []),  # a prefix of names is not a parent
    ("/run", ["/run/containerd/io.containerd.runtime.v2.task/k8s.io/5d3c0a9b/rootfs", "/run"]),
    ("/srv", []),
])
def test_mounts_below(path, expected):
    assert retire.mounts_below(retire.parse_mountinfo(MOUNTINFO), path) == expected


def test_mounts_below_deepest_first_and_stacked_mounts_latest_first():
    points = ["/a", "/a/b", "/a/b/c/d", "/a/b", "/a/bc", "/a/b/c"]
    assert retire.mounts_below(points, "/a/b") == ["/a/b/c/d", "/a/b/c", "/a/b", "/a/b"]


@pytest.mark.parametrize("text, expected", [
    (SHOW_ACTIVE_ENABLED, {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled"}),
    (SHOW_NOT_FOUND, {"LoadState": "not-found", "ActiveState": "inactive", "UnitFileState": ""}),
    (SHOW_MASKED, {"LoadState": "masked", "ActiveState": "inactive", "UnitFileState": "masked"}),
    ("", {}),
])
def test_parse_unit_state(text, expected):
    assert retire.parse_unit_state(text) == expected


@pytest.mark.parametrize("path, moved", [
    ("/var/lib/kubelet", f"/var/lib/kubelet.removed-{STAMP}"),
    ("/etc/cni/net.d/", f"/etc/cni/net.d.removed-{STAMP}"),
])
def test_moved_aside_name(path, moved):
    assert retire.moved_aside_name(path, STAMP) == moved


@pytest.mark.parametrize("route, ipv6_route, devices", [
    (ROUTE, IPV6_ROUTE, {"eth0", "lo"}),
    ("Iface\tDestination\n", IPV6_DEFAULT, {"ens5"}),
    ("", "", set()),
])
def test_parse_default_route_devices(route, ipv6_route, devices):
    assert retire.parse_default_route_devices(route, ipv6_route) == devices


def test_link_pattern_problems():
    assert retire.link_pattern_problems(["cni0", "flannel.*", "veth[0-9]?"]) == []
    assert retire.link_pattern_problems(["", "a b", "../eth0", "*", "?*", "[a-z]*"]) == [
        "'' is not a network device name or pattern", "'a b' is not a network device name or pattern",
        "'../eth0' is not a network device name or pattern", "* matches any device name", "?* matches any device name",
        "[a-z]* matches any device name"]


def test_matching_links_in_the_patterns_order_each_once():
    devices = ["eth0", "flannel.1", "cni0", "lo", "flannel.4096", "cni01"]
    assert retire.matching_links(devices, ["cni0", "flannel.*", "*.1"]) == ["cni0", "flannel.1", "flannel.4096"]
    assert retire.matching_links(devices, ["kube-ipvs0"]) == []


def test_validate_paths_normalizes():
    assert retire.validate_paths(["/var/lib/kubelet/", "//etc//kubernetes", "/var/lib/./etcd"]) == [
        "/var/lib/kubelet", "/etc/kubernetes", "/var/lib/etcd"]


def test_validate_paths_lists_every_problem_in_one_message():
    bad = ["var/lib/kubelet", "/", "/etc", "/var/", "/usr", "/var/lib", "/home", "/root", "/var/lib/../../etc", ""]
    with pytest.raises(retire.RetireError) as raised:
        retire.validate_paths(["/var/lib/kubelet"] + bad)
    assert isinstance(raised.value, KubeforgeError)
    assert len(raised.value.errors) == len(bad)
    message = str(raised.value)
    assert "'var/lib/kubelet' is not an absolute path" in message
    assert "/var/lib/../../etc is a system directory (/etc)" in message
    assert "/var/ is a system directory (/var)" in message
    for path in ("/", "/etc", "/usr", "/var/lib", "/home", "/root"):
        assert f"{path} is a system directory" in message
    assert "/var/lib/kubelet is" not in message


@pytest.mark.parametrize("endpoint, path", [
    ("unix:///run/containerd/containerd.sock", "/run/containerd/containerd.sock"),
    ("/run/crio/crio.sock", "/run/crio/crio.sock"),
])
def test_socket_path(endpoint, path):
    assert retire.socket_path(endpoint) == path


def test_runtime_listening_only_with_a_listener(tmp_path):
    short = tempfile.mkdtemp(prefix="kf-sock-", dir="/tmp")  # a unix socket path is limited to 107 bytes
    try:
        path = os.path.join(short, "s.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)
        assert retire.runtime_listening(path)
        server.close()
        assert os.path.exists(path)  # the socket file a crashed runtime leaves behind
        assert not retire.runtime_listening(path)
    finally:
        shutil.rmtree(short)
    (tmp_path / "file.sock").write_text("")
    assert not retire.runtime_listening(str(tmp_path / "file.sock"))
    assert not retire.runtime_listening(str(tmp_path / "none.sock"))


# -- the backend on a fake host ------------------------------------------------------------------------

class Host:
    """A host: directories under tmp_path, a mount table, systemd units, a container runtime with pods.

    ``run_command`` records every command and answers as crictl, systemctl and umount would."""

    def __init__(self, root) -> None:
        self.root = os.path.realpath(str(root))
        self.mounts = ["/", "/proc"]
        self.units = {}
        self.pods = []
        self.busy = set()
        self.vanishing = {}  # mount point -> other mount points its umount takes with it (propagation)
        self.calls = []
        self.links = {"lo", "eth0"}
        self.undeletable = set()
        self.routes = (ROUTE, IPV6_ROUTE)
        self.crictl = self.path("bin", "crictl")
        self.socket = self.path("run", "containerd", "containerd.sock")
        self.endpoint = "unix://" + self.socket

    def path(self, *parts) -> str:
        return os.path.join(self.root, *parts)

    def mkdir(self, *parts) -> str:
        os.makedirs(self.path(*parts), exist_ok=True)
        return self.path(*parts)

    def runtime(self, pods) -> None:
        """containerd up with these pods, crictl installed."""
        self.mkdir("bin")
        with open(self.crictl, "w", encoding="utf-8") as handle:
            handle.write("#!/bin/sh\n")
        self.mkdir("run", "containerd")
        with open(self.socket, "w", encoding="utf-8"):
            pass
        self.pods = list(pods)

    def mountinfo(self) -> str:
        return "".join(f"{100 + index} 1 0:{index} / {point.replace(' ', chr(92) + '040')} rw - tmpfs tmpfs rw\n"
                       for index, point in enumerate(self.mounts))

    def run_command(self, argv):
        self.calls.append(list(argv))
        if argv[0] == self.crictl:
            return self._crictl(argv[3:])
        if argv[0] == "systemctl":
            return self._systemctl(argv[1:])
        if argv[0] == "umount":
            return self._umount(argv[1])
        if argv[:4] == ["ip", "link", "delete", "dev"]:
            return self._ip_link_delete(argv[4])
        raise AssertionError(f"unexpected command {argv}")

    def _ip_link_delete(self, name):
        if name in self.undeletable:
            return 2, "", "RTNETLINK answers: Operation not permitted"
        if name not in self.links:
            return 1, "", f'Cannot find device "{name}"'
        self.links.remove(name)
        return 0, "", ""

    def _crictl(self, args):
        if args == ["pods", "-q"]:
            return 0, "".join(pod + "\n" for pod in self.pods), ""
        if args == ["rmp", "--all", "--force"]:
            self.pods = []
            return 0, "", ""
        raise AssertionError(f"unexpected crictl {args}")

    def _systemctl(self, args):
        unit = args[-1]
        assert args[-2] == "--"
        state = self.units.get(unit, {"LoadState": "not-found", "ActiveState": "inactive", "UnitFileState": ""})
        if args[0] == "show":
            return 0, "".join(f"{key}={value}\n" for key, value in state.items()), ""
        if args[0] == "stop":
            state["ActiveState"] = "inactive"
        elif args[0] == "disable":
            state["UnitFileState"] = "disabled"
        else:
            raise AssertionError(f"unexpected systemctl {args}")
        return 0, "", ""

    def _umount(self, point):
        if point in self.busy:
            return 32, "", f"umount: {point}: target is busy."
        if point not in self.mounts:
            return 32, "", f"umount: {point}: not mounted."
        del self.mounts[len(self.mounts) - 1 - self.mounts[::-1].index(point)]
        for other in self.vanishing.get(point, []):
            self.mounts.remove(other)
        return 0, "", ""

    def retirer(self, **params) -> retire.NodeRetirer:
        return retire.NodeRetirer(params, self.run_command, clock=lambda: NOW, mountinfo=self.mountinfo,
                                  net_devices=lambda: sorted(self.links), routes=lambda: self.routes)

    def run(self, check_mode=False, **params) -> dict:
        return self.retirer(**params).run(check_mode=check_mode)

    def tree(self) -> list:
        return sorted(os.path.relpath(os.path.join(top, name), self.root)
                      for top, dirs, files in os.walk(self.root) for name in dirs + files)

    def commands(self) -> list:
        """The commands run, with the binary's name only."""
        return [" ".join([os.path.basename(argv[0])] + argv[1:]) for argv in self.calls]


@pytest.fixture
def host(tmp_path, monkeypatch):
    host = Host(tmp_path)
    monkeypatch.setattr(retire, "runtime_listening", lambda path: path == host.socket and os.path.exists(path))
    return host


@pytest.fixture
def worker(host):
    """A worker as remove_nodes.yml finds it: pods, kubelet and containerd running, volumes mounted."""
    host.runtime(["5d3c0a9b11", "77aa01ee42"])
    host.units = {
        "kubelet": {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled"},
        "containerd": {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled"},
        "nginx": {"LoadState": "loaded", "ActiveState": "inactive", "UnitFileState": "enabled"},
    }
    host.mkdir("var", "lib", "kubelet", "pods", "p1", "volumes", "secret certs")
    host.mkdir("var", "lib", "kubelet", "pods", "p1", "volumes", "token")
    host.mkdir("var", "lib", "kubelet-plugins")
    host.mkdir("etc", "kubernetes", "pki")
    host.links |= {"cni0", "flannel.1"}
    host.mounts += [host.path("var", "lib", "kubelet", "pods", "p1", "volumes", "token"),
                    host.path("var", "lib", "kubelet", "pods", "p1", "volumes", "secret certs"),
                    host.path("var", "lib", "kubelet-plugins")]
    host.params = {"crictl": host.crictl, "runtime_endpoint": host.endpoint,
                   "services": ["kubelet", "kube-proxy", "nginx"], "runtime_service": "containerd",
                   "links": ["cni0", "flannel.*", "kube-ipvs0"],
                   "paths": [host.path("var", "lib", "kubelet"), host.path("etc", "kubernetes"), host.path("var", "lib", "cni")]}
    return host


def expected_result(host) -> dict:
    kubelet, kubernetes = host.path("var", "lib", "kubelet"), host.path("etc", "kubernetes")
    return {
        "changed": True, "pods_removed": 2, "stopped": ["kubelet", "containerd"], "disabled": ["kubelet", "nginx", "containerd"],
        "missing": ["kube-proxy"], "links_deleted": ["cni0", "flannel.1"],
        "unmounted": [host.path("var", "lib", "kubelet", "pods", "p1", "volumes", "secret certs"),
                      host.path("var", "lib", "kubelet", "pods", "p1", "volumes", "token")],
        "moved": [{"path": kubelet, "moved_to": f"{kubelet}.removed-{STAMP}"},
                  {"path": kubernetes, "moved_to": f"{kubernetes}.removed-{STAMP}"}],
    }


def test_retires_a_worker_then_a_second_run_changes_nothing(worker):
    result = worker.run(**worker.params)
    assert result == expected_result(worker)
    crictl = f"crictl --runtime-endpoint {worker.endpoint}"
    show = "systemctl show --property=LoadState --property=ActiveState --property=UnitFileState --"
    assert worker.commands() == [
        f"{show} kubelet", "systemctl stop -- kubelet", "systemctl disable -- kubelet",  # first: it starts no pod again
        f"{show} kube-proxy",
        f"{show} nginx", "systemctl disable -- nginx",
        f"{crictl} pods -q", f"{crictl} rmp --all --force",
        f"{show} containerd", "systemctl stop -- containerd", "systemctl disable -- containerd",  # after the pods
        "ip link delete dev cni0", "ip link delete dev flannel.1",  # after the runtime: nothing recreates them
        f"umount {worker.path('var', 'lib', 'kubelet', 'pods', 'p1', 'volumes', 'secret certs')}",
        f"umount {worker.path('var', 'lib', 'kubelet', 'pods', 'p1', 'volumes', 'token')}",
    ]
    tree = worker.tree()
    assert f"var/lib/kubelet.removed-{STAMP}/pods/p1/volumes/secret certs" in tree
    assert f"etc/kubernetes.removed-{STAMP}/pki" in tree
    assert "var/lib/kubelet" not in tree and "etc/kubernetes" not in tree
    assert "var/lib/kubelet-plugins" in tree and worker.path("var", "lib", "kubelet-plugins") in worker.mounts  # the sibling
    worker.calls.clear()
    again = worker.run(**worker.params)
    assert again == {"changed": False, "pods_removed": 0, "stopped": [], "disabled": [], "missing": ["kube-proxy"],
                     "links_deleted": [], "unmounted": [], "moved": []}
    assert worker.links == {"lo", "eth0"}
    assert [command.split()[1] for command in worker.commands()] == ["show", "show", "show", "--runtime-endpoint", "show"]


def test_check_mode_reports_the_same_and_changes_nothing(worker):
    tree, mounts = worker.tree(), list(worker.mounts)
    result = worker.run(check_mode=True, **worker.params)
    assert result == expected_result(worker)
    assert worker.tree() == tree and worker.mounts == mounts and len(worker.pods) == 2 and "cni0" in worker.links
    assert [unit["ActiveState"] for unit in worker.units.values()] == ["active", "active", "inactive"]
    assert all(command.split()[1] == "show" or command.endswith("pods -q") for command in worker.commands())


def test_a_path_inside_another_is_moved_with_it_in_both_modes(host):
    host.mkdir("etc", "kubernetes", "manifests")
    params = {"paths": [host.path("etc", "kubernetes"), host.path("etc", "kubernetes", "manifests")]}
    moved = [{"path": host.path("etc", "kubernetes"), "moved_to": host.path("etc", f"kubernetes.removed-{STAMP}")}]
    assert host.run(check_mode=True, **params)["moved"] == moved
    assert host.run(**params)["moved"] == moved


def test_a_path_moved_after_its_content_keeps_both(host):
    host.mkdir("etc", "kubernetes", "manifests")
    params = {"paths": [host.path("etc", "kubernetes", "manifests"), host.path("etc", "kubernetes")]}
    assert [entry["path"] for entry in host.run(**params)["moved"]] == params["paths"]
    assert f"etc/kubernetes.removed-{STAMP}/manifests.removed-{STAMP}" in host.tree()


def test_every_path_of_a_run_shares_the_stamp_taken_once(host):
    times = iter([NOW, NOW + datetime.timedelta(seconds=5)])
    host.mkdir("a")
    host.mkdir("b")
    retirer = retire.NodeRetirer({"paths": [host.path("a"), host.path("b")]}, host.run_command, clock=lambda: next(times),
                                 mountinfo=host.mountinfo)
    assert [entry["moved_to"][-len(STAMP):] for entry in retirer.run()["moved"]] == [STAMP, STAMP]


def test_a_symbolic_link_is_moved_not_its_target(host):
    target = host.mkdir("data", "kubelet")
    os.makedirs(host.path("var", "lib"))
    os.symlink(target, host.path("var", "lib", "kubelet"))
    result = host.run(paths=[host.path("var", "lib", "kubelet")])
    assert os.path.islink(host.path("var", "lib", f"kubelet.removed-{STAMP}")) and os.path.isdir(target)
    assert result["unmounted"] == []


def test_the_path_itself_a_mount_point_is_unmounted_then_moved(host):
    host.mkdir("var", "lib", "containerd", "io.containerd.content.v1.content")
    host.mounts += [host.path("var", "lib", "containerd"), host.path("var", "lib", "containerd")]  # mounted twice over
    result = host.run(paths=[host.path("var", "lib", "containerd")])
    assert result["unmounted"] == [host.path("var", "lib", "containerd")] * 2
    assert host.mounts == ["/", "/proc"] and result["moved"][0]["moved_to"].endswith(f"containerd.removed-{STAMP}")


def test_a_busy_mount_fails_with_umount_message_and_what_was_done(worker):
    busy = worker.path("var", "lib", "kubelet", "pods", "p1", "volumes", "token")
    worker.busy.add(busy)
    with pytest.raises(retire.RetireError) as raised:
        worker.run(**worker.params)
    assert str(raised.value) == f"cannot unmount {busy}: umount: {busy}: target is busy."
    done = raised.value.result
    assert done["changed"] and done["stopped"] == ["kubelet", "containerd"] and done["moved"] == []
    assert done["unmounted"] == [worker.path("var", "lib", "kubelet", "pods", "p1", "volumes", "secret certs")]
    assert os.path.isdir(worker.path("var", "lib", "kubelet")) and os.path.isdir(worker.path("etc", "kubernetes"))


def test_a_mount_gone_with_another_is_not_a_failure(host):
    host.mkdir("var", "lib", "kubelet", "plugins", "csi")
    deep, bind = host.path("var", "lib", "kubelet", "plugins", "csi"), host.path("var", "lib", "kubelet", "plugins")
    host.mounts += [bind, deep]
    host.vanishing[deep] = [bind]  # a shared mount whose peer goes with it
    result = host.run(paths=[host.path("var", "lib", "kubelet")])
    assert result["unmounted"] == [deep, bind] and result["moved"]


def test_refused_paths_are_all_named_before_anything_runs(worker):
    params = dict(worker.params, paths=["/etc", "relative/dir", worker.path("etc", "kubernetes"), "/var/lib/", "/"])
    with pytest.raises(retire.RetireError) as raised:
        worker.run(**params)
    assert raised.value.errors == ["/etc is a system directory", "'relative/dir' is not an absolute path",
                                   "/var/lib/ is a system directory (/var/lib)", "/ is a system directory"]
    assert str(raised.value).startswith("refusing to move these paths aside: /etc is a system directory; ")
    assert worker.calls == [] and os.path.isdir(worker.path("etc", "kubernetes"))


@pytest.mark.parametrize("routes, links, errors", [
    ((ROUTE, IPV6_ROUTE), ["e*0"], ["eth0 carries a default route of the host"]),
    (("", IPV6_DEFAULT), ["ens*"], ["ens5 carries a default route of the host"]),
    ((ROUTE, IPV6_ROUTE), ["l?", "*"], ["* matches any device name", "lo is the loopback device"]),
])
def test_devices_the_host_needs_are_refused_before_anything_runs(worker, routes, links, errors):
    worker.routes = routes
    worker.links.add("ens5")
    with pytest.raises(retire.RetireError) as raised:
        worker.run(**dict(worker.params, links=links))
    assert raised.value.errors == errors
    assert str(raised.value) == "refusing to delete these network devices: " + "; ".join(errors)
    assert worker.calls == [] and {"cni0", "flannel.1", "eth0", "lo", "ens5"} <= worker.links


def test_refused_paths_and_devices_are_named_in_one_message(worker):
    with pytest.raises(retire.RetireError) as raised:
        worker.run(**dict(worker.params, paths=["/etc"], links=["eth0"]))
    assert str(raised.value) == ("refusing to move these paths aside: /etc is a system directory; "
                                 "refusing to delete these network devices: eth0 carries a default route of the host")
    assert raised.value.errors == ["/etc is a system directory", "eth0 carries a default route of the host"]
    assert worker.calls == []


def test_a_device_gone_since_it_was_listed_is_not_a_failure_one_that_stays_is(host):
    host.links |= {"cni0", "flannel.1"}
    retirer = host.retirer(links=["cni0", "flannel.*"])
    listed = sorted(host.links)
    retirer.net_devices = lambda: listed if not host.calls else sorted(host.links)
    host.links.discard("cni0")  # gone with its last veth, say
    assert retirer.run()["links_deleted"] == ["cni0", "flannel.1"]
    host.links.add("cni0")
    host.undeletable.add("cni0")
    with pytest.raises(retire.RetireError, match="cannot delete the network device cni0: RTNETLINK answers: Operation not permitted"):
        host.run(links=["cni0"])


def test_another_file_system_and_a_taken_name_are_refused_before_anything_runs(worker, monkeypatch):
    subvolume = worker.path("etc", "kubernetes")
    real_device = retire.device
    monkeypatch.setattr(retire, "device", lambda path: real_device(path) + (1 if path == subvolume else 0))
    worker.mkdir("var", "lib", f"kubelet.removed-{STAMP}")
    with pytest.raises(retire.RetireError) as raised:
        worker.run(**worker.params)
    assert len(raised.value.errors) == 2
    assert f"{worker.path('var', 'lib', 'kubelet')}: {worker.path('var', 'lib', f'kubelet.removed-{STAMP}')} already exists" in str(raised.value)
    assert f"{subvolume} is on another file system than {worker.path('etc')}" in str(raised.value)
    assert "a rename cannot move it" in str(raised.value)
    assert worker.calls == []


def test_a_mount_point_still_on_another_file_system_once_unmounted_fails(host, monkeypatch):
    path = host.mkdir("var", "lib", "containerd")
    host.mounts.append(path)
    real_device = retire.device
    monkeypatch.setattr(retire, "device", lambda p: real_device(p) + (1 if p == path else 0))
    assert host.run(check_mode=True, paths=[path])["moved"]  # not knowable before unmounting
    with pytest.raises(retire.RetireError, match="is on another file system than"):
        host.run(paths=[path])
    assert host.commands() == [f"umount {path}"] and os.path.isdir(path)


@pytest.mark.parametrize("setup", ["no crictl option", "no crictl file", "no socket"])
def test_no_runtime_no_pods_no_error(host, setup):
    host.runtime(["5d3c0a9b11"])
    params = {"crictl": host.crictl, "runtime_endpoint": host.endpoint}
    if setup == "no crictl option":
        del params["crictl"]
    elif setup == "no crictl file":
        os.unlink(host.crictl)
    else:
        os.unlink(host.socket)
    assert host.run(**params) == {"changed": False, "pods_removed": 0, "stopped": [], "disabled": [], "missing": [],
                                  "links_deleted": [], "unmounted": [], "moved": []}
    assert host.calls == []


def test_no_pods_nothing_removed(host):
    host.runtime([])
    result = host.run(crictl=host.crictl, runtime_endpoint=host.endpoint)
    assert (result["changed"], result["pods_removed"]) == (False, 0)
    assert [command.split()[-1] for command in host.commands()] == ["-q"]


def test_crictl_failing_on_a_live_runtime_is_an_error(host):
    host.runtime(["5d3c0a9b11"])

    def failing(argv):
        host.calls.append(argv)
        return 1, "", "rpc error: code = Unavailable desc = connection closed"
    with pytest.raises(retire.RetireError, match="crictl pods failed: rpc error: code = Unavailable"):
        retire.NodeRetirer({"crictl": host.crictl, "runtime_endpoint": host.endpoint}, failing, clock=lambda: NOW,
                           mountinfo=host.mountinfo).run()


@pytest.mark.parametrize("state, commands, stopped, disabled", [
    ({"ActiveState": "active", "UnitFileState": "enabled"}, ["stop -- kubelet", "disable -- kubelet"], ["kubelet"], ["kubelet"]),
    ({"ActiveState": "activating", "UnitFileState": "static"}, ["stop -- kubelet"], ["kubelet"], []),
    ({"ActiveState": "failed", "UnitFileState": "enabled-runtime"}, ["disable --runtime -- kubelet"], [], ["kubelet"]),
    ({"ActiveState": "inactive", "UnitFileState": "disabled"}, [], [], []),
    ({"ActiveState": "inactive", "UnitFileState": "masked", "LoadState": "masked"}, [], [], []),
])
def test_unit_states(host, state, commands, stopped, disabled):
    host.units["kubelet"] = dict({"LoadState": "loaded"}, **state)
    result = host.run(services=["kubelet"])
    assert [command.split(" ", 1)[1] for command in host.commands()[1:]] == commands
    assert (result["stopped"], result["disabled"], result["missing"], result["changed"]) == (stopped, disabled, [], bool(commands))


def test_systemctl_failing_is_an_error(host):
    def failing(argv):
        return 1, "", "System has not been booted with systemd as init system (PID 1). Can't operate."
    with pytest.raises(retire.RetireError, match="systemctl show .* kubelet failed: System has not been booted"):
        retire.NodeRetirer({"services": ["kubelet"]}, failing, clock=lambda: NOW, mountinfo=host.mountinfo).run()

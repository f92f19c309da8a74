# SPDX-License-Identifier: GPL-3.0-or-later
"""node_facts' readers on fake /proc, /sys and /lib/modules trees built in tmp_path."""
from __future__ import annotations

import os

import pytest

from ansible_collections.kubeforge.cluster.plugins.module_utils import _node_facts
from ansible_collections.kubeforge.cluster.plugins.module_utils._artifact_install import version_dir

RELEASE = "6.8.0-60-generic"
# /proc/self/mounts of the three cgroup layouts (abridged from real hosts).
MOUNTS_V2 = """\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0
"""
MOUNTS_HYBRID = """\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,nosuid,nodev,noexec,relatime,xattr,name=systemd 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0
"""
MOUNTS_V1 = """\
tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,nosuid,nodev,noexec,relatime,xattr,name=systemd 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0
"""
PROC_MODULES = """\
ip_vs_rr 12288 4 - Live 0x0000000000000000
ip_vs 221184 10 ip_vs_rr, Live 0x0000000000000000
nf_conntrack 196608 5 ip_vs,xt_conntrack, Live 0x0000000000000000
"""
MODULES_DEP_ZST = """\
kernel/net/netfilter/nf_conntrack.ko.zst: kernel/lib/libcrc32c.ko.zst
kernel/net/netfilter/ipvs/ip_vs_rr.ko.zst: kernel/net/netfilter/ipvs/ip_vs.ko.zst
kernel/net/netfilter/ipvs/ip_vs.ko.zst: kernel/net/netfilter/nf_conntrack.ko.zst
"""


def tree(root, files: dict, dirs=()):
    """Write ``files`` ({'proc/modules': text}) and make ``dirs`` below ``root``; return its path."""
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for path in dirs:
        (root / path).mkdir(parents=True, exist_ok=True)
    return str(root)


def facts(root) -> dict:
    return _node_facts.NodeFactsBackend(root).facts()


def base(**extra) -> dict:
    return {"proc/sys/kernel/osrelease": RELEASE + "\n", "proc/self/mounts": MOUNTS_V2, **extra}


@pytest.mark.parametrize("mounts, version", [(MOUNTS_V2, 2), (MOUNTS_HYBRID, 1), (MOUNTS_V1, 1)])
def test_cgroup_version_from_mounts(tmp_path, mounts, version):
    assert facts(tree(tmp_path, base(**{"proc/self/mounts": mounts})))["cgroup_version"] == version


def test_a_later_mount_on_the_cgroup_root_hides_the_earlier_one():
    assert _node_facts.cgroup_version_from_mounts(MOUNTS_V1 + "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n") == 2
    assert _node_facts.cgroup_version_from_mounts("proc /proc proc rw 0 0\n") is None


@pytest.mark.parametrize("files, version", [
    ({"sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory pids\n"}, 2),
    # Hybrid: cgroup.controllers only below /sys/fs/cgroup/unified.
    ({"sys/fs/cgroup/unified/cgroup.controllers": ""}, 1),
])
def test_cgroup_version_without_a_mount_table(tmp_path, files, version):
    files = {"proc/sys/kernel/osrelease": RELEASE, **files}
    assert facts(tree(tmp_path, files))["cgroup_version"] == version


@pytest.mark.parametrize("files, dirs, state", [
    ({"proc/modules": PROC_MODULES}, [], "loaded"),
    ({}, ["sys/module/ip_vs/initstate"], "loaded"),
    ({f"lib/modules/{RELEASE}/modules.builtin": "kernel/net/netfilter/nf_conntrack.ko\nkernel/net/netfilter/ipvs/ip_vs.ko\n"}, [], "builtin"),
    # A built-in module with parameters has its /sys/module directory but no initstate.
    ({}, ["sys/module/ip_vs/parameters"], "builtin"),
    ({f"lib/modules/{RELEASE}/modules.dep": MODULES_DEP_ZST}, [], "loadable"),
    ({f"lib/modules/{RELEASE}/modules.dep": "kernel/net/netfilter/ipvs/ip_vs.ko.xz: kernel/net/netfilter/nf_conntrack.ko.xz\n"}, [], "loadable"),
    ({f"lib/modules/{RELEASE}/modules.dep": "kernel/net/netfilter/ipvs/ip_vs.ko:\n"}, [], "loadable"),
    # Only the schedulers, or the module of another kernel release: missing.
    ({"proc/modules": "ip_vs_rr 12288 0 - Live 0x0\n",
      f"lib/modules/{RELEASE}/modules.dep": "kernel/net/netfilter/ipvs/ip_vs_rr.ko.zst:\n"}, [], "missing"),
    ({"lib/modules/5.15.0-1-generic/modules.dep": MODULES_DEP_ZST}, [], "missing"),
    ({"proc/modules": "nf_conntrack 196608 0 - Live 0x0\n"}, [], "missing"),
    # A container without /lib/modules and no module loaded.
    ({}, [], "missing"),
])
def test_ip_vs_state(tmp_path, files, dirs, state):
    assert facts(tree(tmp_path, base(**files), dirs))["ip_vs"] == state


def test_loaded_wins_over_loadable(tmp_path):
    root = tree(tmp_path, base(**{"proc/modules": PROC_MODULES, f"lib/modules/{RELEASE}/modules.dep": MODULES_DEP_ZST}))
    assert facts(root)["ip_vs"] == "loaded"


def test_run_returns_the_facts_and_changes_nothing(tmp_path):
    root = tree(tmp_path, base(**{"proc/self/mounts": MOUNTS_HYBRID, f"lib/modules/{RELEASE}/modules.dep": MODULES_DEP_ZST}))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = _node_facts.NodeFactsBackend(root).run()
    assert result == {"changed": False,
                      "ansible_facts": {"kubeforge_node": {"cgroup_version": 1, "ip_vs": "loadable", "kernel_release": RELEASE,
                                                           "hostname": {"transient": "", "static": ""}, "fstab_swap": [],
                                                           "installed_packages": None, "os": {"family": "unknown", "name": "an unknown Linux"},
                                                           "swap_total_mb": 0, "file_record": False, "linked_versions": {},
                                                           "phase_units": {"etcd": False, "control_plane": False, "kubelet_bootstrap": False}}}}
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_file_record_says_whether_the_host_has_file_bundles_record(tmp_path):
    root = tree(tmp_path, base(**{"proc/self/mounts": MOUNTS_HYBRID, "var/lib/kubeforge/file_bundle.json": "{}"}))
    assert facts(root)["file_record"] is True


def test_phase_units_say_which_phases_unit_files_the_host_holds(tmp_path):
    root = tree(tmp_path, base(**{"proc/self/mounts": MOUNTS_HYBRID, "etc/systemd/system/etcd.service": "[Unit]\n",
                                  "etc/systemd/system/kubelet.service": "[Unit]\n"}))
    assert facts(root)["phase_units"] == {"etcd": True, "control_plane": False, "kubelet_bootstrap": True}


def test_linked_versions_are_read_from_the_links_into_the_artifacts_layout(tmp_path):
    root = tree(tmp_path, base(**{"proc/self/mounts": MOUNTS_HYBRID, "usr/local/bin/nginx-helper": "#!/bin/sh\n"}))
    links = {"kube-apiserver": "/opt/kubeforge/kube-apiserver/v1.36.4/kube-apiserver", "etcd": "/opt/kubeforge/etcd/v3.5.33/etcd",
             "kubelet": "/srv/k8s/kubeforge/kubelet/v1.37.0-rc.1/kubelet", "python3": "/usr/bin/python3.11",
             "runc": "runc.amd64", "crictl": "/opt/kubeforge/crictl/v1.37.0"}
    for name, target in links.items():
        (tmp_path / "usr/local/bin" / name).symlink_to(target)
    found = _node_facts.NodeFactsBackend(root, bin_dir="/usr/local/bin").facts()["linked_versions"]
    # Links need not resolve (read, not followed); a regular file, or a link elsewhere, is left out.
    assert found == {"etcd": "3.5.33", "kube-apiserver": "1.36.4", "kubelet": "1.37.0-rc.1"}
    assert _node_facts.NodeFactsBackend(root).facts()["linked_versions"] == {}
    assert _node_facts.NodeFactsBackend(root, bin_dir="/nowhere").facts()["linked_versions"] == {}


@pytest.mark.parametrize("target, version", [
    ("/opt/kubeforge/kubectl/v1.36.4/kubectl", "1.36.4"),
    ("/opt/kubeforge/staged/v1.36.4", None),  # a version directory itself, no file in it
    ("/opt/kubeforge/kubectl/1.36.4/kubectl", None),
    ("kubectl", None),
])
def test_linked_version(target, version):
    assert _node_facts.linked_version(target) == version


def test_linked_version_reads_the_installers_layout():
    installed = os.path.join(version_dir("/opt/kubeforge", "kube-proxy", "1.37.2"), "kube-proxy")
    assert _node_facts.linked_version(installed) == "1.37.2"


def test_kernel_release_falls_back_to_uname(tmp_path):
    assert facts(tree(tmp_path, {"proc/self/mounts": MOUNTS_V2}))["kernel_release"] == os.uname().release


def test_the_states_are_the_ones_preflight_knows():
    assert _node_facts.IP_VS_STATES == ("loaded", "builtin", "loadable", "missing")


def test_hostnames_of_the_kernel_and_of_boot(tmp_path):
    root = tree(tmp_path, {"proc/self/mounts": MOUNTS_V2, "proc/sys/kernel/hostname": "kf-cp1\n", "etc/hostname": "localhost\n"})
    assert facts(root)["hostname"] == {"transient": "kf-cp1", "static": "localhost"}


def test_fstab_swap_lists_only_the_swap_mounts_left_on(tmp_path):
    fstab = ("# /swapfile none swap sw 0 0\n"
             "UUID=1234 / ext4 errors=remount-ro 0 1\n"
             "/swapfile none swap sw 0 0\n"
             "  /dev/sdb2\tnone\tswap\tsw,pri=5\t0\t0\n"
             "# /dev/sdb2 none swap sw 0 0  # disabled by kubeforge: the kubelet needs swap off\n"
             "tmpfs /swap tmpfs defaults 0 0\n")
    root = tree(tmp_path, {"proc/self/mounts": MOUNTS_V2, "etc/fstab": fstab})
    assert facts(root)["fstab_swap"] == ["/swapfile none swap sw 0 0", "/dev/sdb2\tnone\tswap\tsw,pri=5\t0\t0"]


def test_fstab_swap_is_empty_without_an_fstab(tmp_path):
    assert facts(tree(tmp_path, {"proc/self/mounts": MOUNTS_V2}))["fstab_swap"] == []


DPKG_STATUS = """\
Package: curl
Status: install ok installed
Priority: optional
Description: command line tool
 with a continuation line: Status: install ok installed

Package: socat
Status: deinstall ok config-files

Package: chrony
Status: install ok half-configured
Architecture: amd64

Package: ca-certificates
Architecture: all
Status: install ok installed
"""


def test_the_installed_packages_are_the_ones_dpkg_says_are_installed(tmp_path):
    root = tree(tmp_path, {"proc/self/mounts": MOUNTS_V2, "var/lib/dpkg/status": DPKG_STATUS})
    assert facts(root)["installed_packages"] == ["ca-certificates", "curl"]


@pytest.mark.parametrize(("os_release", "family", "name"), [
    ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nID=debian\n', "Debian", "Debian GNU/Linux"),
    ("NAME='Ubuntu'\nID=ubuntu\nID_LIKE=debian\n", "Debian", "Ubuntu"),
    ('NAME="Linux Mint"\nID=linuxmint\nID_LIKE="ubuntu debian"\n', "Debian", "Linux Mint"),
    ('NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\n', "RedHat", "Rocky Linux"),
    ('NAME="Oracle Linux Server"\nID="ol"\nID_LIKE="fedora"\n', "RedHat", "Oracle Linux Server"),
    ('# a comment\nNAME="Alpine Linux"\nID=alpine\n', "alpine", "Alpine Linux"),
])
def test_the_os_family_is_the_one_of_its_id_or_id_like(tmp_path, os_release, family, name):
    root = tree(tmp_path, {"proc/self/mounts": MOUNTS_V2, "etc/os-release": os_release})
    assert facts(root)["os"] == {"family": family, "name": name}


def test_the_os_release_of_usr_lib_is_read_without_one_in_etc(tmp_path):
    root = tree(tmp_path, {"proc/self/mounts": MOUNTS_V2, "usr/lib/os-release": "NAME=Fedora\nID=fedora\n"})
    assert facts(root)["os"] == {"family": "RedHat", "name": "Fedora"}


def test_swap_total_in_mib(tmp_path):
    meminfo = "MemTotal:       24576000 kB\nSwapCached:            0 kB\nSwapTotal:       2097148 kB\nSwapFree:        2097148 kB\n"
    assert facts(tree(tmp_path, {"proc/self/mounts": MOUNTS_V2, "proc/meminfo": meminfo}))["swap_total_mb"] == 2047
    assert facts(tree(tmp_path / "none", {"proc/self/mounts": MOUNTS_V2, "proc/meminfo": "SwapTotal:  0 kB\n"}))["swap_total_mb"] == 0

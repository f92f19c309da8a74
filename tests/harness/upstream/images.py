# SPDX-License-Identifier: GPL-3.0-or-later
"""OCI image tarballs for offline installs, made with the local Docker engine from the binaries
build.py compiled: a root file system (a static binary, and for flannel the host's iptables with
its libraries) goes through `docker import` with its entrypoint, then `docker save` writes the
tarball that containerd imports (`ctr -n k8s.io images import`).

    pause      registry.k8s.io/pause:<TAG>          pause.c from the k8s.io/kubernetes module, gcc -static
    coredns    registry.k8s.io/coredns/coredns:v<>  the coredns binary
    flannel    ghcr.io/flannel-io/flannel:v<>       flanneld at /opt/bin/flanneld, the flannel CNI plugin at
                                                    /flannel, iptables (nft) and its extensions from this Debian host
    busybox    kubeforge.local/busybox:<deb ver>    Debian's busybox-static, for test pods (ping, nslookup, httpd)
"""
from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path


def _docker(*args: str, stdin: bytes | None = None) -> str:
    result = subprocess.run(["docker", *args], input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"upstream: `docker {' '.join(args)}` failed: {result.stderr.decode(errors='replace')[-3000:]}")
    return result.stdout.decode()


def _rootfs(files: dict) -> bytes:
    """A deterministic tar of {path in image: source file or symlink target prefixed with '->'}."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs = sorted({str(parent) for path in files for parent in Path(path).parents if str(parent) not in (".", "/")})
        for directory in dirs:
            info = tarfile.TarInfo(directory.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, source in sorted(files.items()):
            info = tarfile.TarInfo(path.lstrip("/"))
            if str(source).startswith("->"):
                info.type, info.linkname = tarfile.SYMTYPE, str(source)[2:]
                tar.addfile(info)
                continue
            data = Path(source).read_bytes()
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _with_libraries(binary: str) -> dict:
    """A dynamically linked host binary and every library ldd names, at their host paths."""
    files = {binary: binary}
    for line in subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        match = re.search(r"(/\S+) \(0x", line)
        if match:
            files[match.group(1)] = str(Path(match.group(1)).resolve())
    return files


def save_image(ref: str, files: dict, entrypoint: list, dest: Path, instruction: str = "ENTRYPOINT") -> Path:
    """docker import the file system with its entrypoint (or CMD), docker save it to dest."""
    change = instruction + " [" + ", ".join(f'"{part}"' for part in entrypoint) + "]"
    _docker("import", "--change", change, "-", ref, stdin=_rootfs(files))
    dest.parent.mkdir(parents=True, exist_ok=True)
    _docker("save", "-o", str(dest), ref)
    return dest


def pause_image(kube_module_dir: Path, work: Path, images: Path) -> Path:
    source = kube_module_dir / "build/pause/linux/pause.c"
    tag = re.search(r"^TAG \?= (\S+)", (kube_module_dir / "build/pause/Makefile").read_text(), re.M).group(1)
    binary = work / "pause"
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gcc", "-Os", "-static", "-Wall", "-Werror", f'-DVERSION=v{tag}', "-o", str(binary), str(source)], check=True)
    return save_image(f"registry.k8s.io/pause:{tag}", {"/pause": binary}, ["/pause"], images / f"pause-{tag}.tar")


def coredns_image(version: str, binary: Path, images: Path) -> Path:
    return save_image(f"registry.k8s.io/coredns/coredns:v{version}", {"/coredns": binary}, ["/coredns"],
                      images / f"coredns-v{version}.tar")


def flannel_image(version: str, flanneld: Path, cni_plugin: Path, busybox: Path, images: Path) -> Path:
    """Like the upstream image (alpine): its install-cni container runs `sh -c` to `cp` the CNI plugin and config onto the node."""
    iptables = shutil.which("xtables-nft-multi") or "/usr/sbin/xtables-nft-multi"
    if not Path(iptables).exists():
        raise SystemExit("upstream: the flannel image takes iptables from this host: apt-get install iptables")
    files = {"/opt/bin/flanneld": flanneld, "/flannel": cni_plugin, "/bin/busybox": busybox, "/bin/cp": "->busybox",
             "/bin/sh": "->busybox", **_with_libraries(iptables)}
    # iptables loads each match and target (comment, MASQUERADE, ...) from its extension directory beside
    # libxtables at run time, which ldd does not name: without them flanneld's rules fail to install.
    libxtables = next(Path(path) for path in files if Path(path).name.startswith("libxtables.so"))
    extensions = Path(files[str(libxtables)]).parent / "xtables"
    if not any(extensions.glob("libxt_*.so")):
        raise SystemExit(f"upstream: no iptables extensions in {extensions}: apt-get install iptables")
    for extension in sorted(extensions.glob("*.so")):
        files.update(_with_libraries(str(extension)))
    for name in ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"):
        files[f"/usr/sbin/{name}"] = "->xtables-nft-multi"
    return save_image(f"ghcr.io/flannel-io/flannel:v{version}", files, ["/opt/bin/flanneld"], images / f"flannel-v{version}.tar")


def busybox_image(work: Path, images: Path) -> Path:
    """Debian's busybox-static (apt-get download, nothing installed), applets linked in /bin."""
    work.mkdir(parents=True, exist_ok=True)
    for attempt in range(2):
        done = subprocess.run(["apt-get", "download", "busybox-static"], cwd=work, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            break
        if attempt == 0:
            subprocess.run(["apt-get", "update", "-qq"], check=True)
    else:
        raise SystemExit(f"upstream: apt-get download busybox-static failed: {done.stderr[-2000:]}")
    deb = sorted(work.glob("busybox-static_*.deb"))[-1]
    # The Debian version without its epoch, '+' made tag-safe: 1:1.35.0-4+b3 -> 1.35.0-4_b3.
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True, check=True).stdout.strip()
    version = re.sub(r"[^A-Za-z0-9_.-]", "_", version.split(":")[-1])
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        binary = work / "busybox"
        shutil.copyfile(Path(tmp, "bin/busybox"), binary)
        binary.chmod(0o755)
    applets = subprocess.run([str(binary), "--list"], capture_output=True, text=True, check=True).stdout.split()
    files = {"/bin/busybox": binary, **{f"/bin/{a}": "->busybox" for a in applets if a != "busybox"}}
    deb.unlink()
    return save_image(f"kubeforge.local/busybox:{version}", files, ["/bin/sh"], images / f"busybox-{version}.tar", "CMD")

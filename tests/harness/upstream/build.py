# SPDX-License-Identifier: GPL-3.0-or-later
"""Build the upstream components from their published Go modules into a per-machine cache, laid
out as an offline artifacts directory in the official release layouts (.sha256 beside each file).

    build.py [--all-versions] [--only NAME ...] [--print-dir]

By default the first pinned version of each component (what the lab and the tests run) and the
images; --all-versions adds the others (Kubernetes 1.37, etcd 3.6, an earlier CoreDNS: the flag-list
tool and the upgrade tests use them). It prints the artifacts directory on stdout, its progress on stderr.

The official download sites cannot be reached here, so the real programs are compiled with the
`go` command from the modules the upstream projects publish, at the versions pinned in
components.json. Nothing is built inside the checkout: sources come through the Go module cache,
results go to $KUBEFORGE_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/kubeforge):

    <cache>/build/<component>-<version>/   a scratch main module per component and version
    <cache>/artifacts/                     the release layouts (what kubeforge_artifacts_dir points at)
    <cache>/images/                        OCI image tarballs (pause, CoreDNS, flannel, test image)
    <cache>/images-previous/               --all-versions: the earlier CoreDNS, links to the others

Each result is keyed by component and version (and a hash of how it is built), so a second run
only checks the stamps. The cold and warm times are printed at the end.

Where a module's main package lives in a module whose go.mod has `replace` directives to sibling
directories (k8s.io/kubernetes to its staging modules, etcd to its api/client/pkg modules), those
directives do not apply to a dependency. The scratch module therefore requires the module and
replaces every sibling with its published version, then builds the main packages (`tool` lines
in go.mod keep `go mod tidy` honest about what is built).

It never downloads release binaries: the download sites are unreachable here, and there is no
online mode to get wrong.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import inspect
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import images as images_lib  # pylint: disable=import-error  # beside this file

HERE = Path(__file__).resolve().parent
PINS = json.loads((HERE / "components.json").read_text(encoding="utf-8"))
ARCH = "amd64"
EPOCH = "1970-01-01T00:00:00Z"


def cache_dir() -> Path:
    base = os.environ.get("KUBEFORGE_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kubeforge")
    return Path(base)


def log(message: str) -> None:
    print(f"upstream: {message}", file=sys.stderr, flush=True)


def run(cmd: list, cwd: Path | None = None, env: dict | None = None) -> str:
    full_env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", **(env or {})}
    result = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"upstream: `{' '.join(map(str, cmd))}` failed in {cwd} (rc {result.returncode}):\n{result.stderr[-6000:]}")
    return result.stdout


# --------------------------------------------------------------------------- Go module builds

def module_info(module: str, version: str) -> dict:
    """`go mod download -json` of one module version: its Dir and GoMod in the module cache."""
    info = json.loads(run(["go", "mod", "download", "-json", f"{module}@{version}"], cwd=Path(tempfile.gettempdir())))
    if info.get("Error"):
        raise SystemExit(f"upstream: the Go module proxy has no {module}@{version}: {info['Error']}")
    return info


def upstream_replaces(gomod: str, sibling_version) -> list:
    """The replace lines the scratch module needs: a sibling directory (`=> ./staging/...`,
    `=> ../api`) becomes that module's published version; other replaces are copied as they are;
    etcd's `=> ./FORBIDDEN_DEPENDENCY` guards are dropped."""
    lines = []
    block = re.search(r"^replace \((.*?)^\)", gomod, re.M | re.S)
    entries = block.group(1).splitlines() if block else []
    entries += [m.group(1) for m in re.finditer(r"^replace (?!\()(.+)$", gomod, re.M)]
    for entry in entries:
        entry = entry.split("//")[0].strip()
        if "=>" not in entry:
            continue
        left, right = (part.strip() for part in entry.split("=>"))
        module = left.split()[0]
        if "FORBIDDEN" in right:
            continue
        if right.startswith("."):
            # The version the upstream go.mod requires (etcd: client/v2 v2.305.x), unless it is the
            # v0.0.0 placeholder (k8s.io staging modules): then the sibling's published version.
            required = re.search(rf"^\s*(?:require\s+)?{re.escape(module)} (v\S+)", gomod, re.M)
            version = required.group(1) if required and required.group(1) != "v0.0.0" else sibling_version(module)
            lines.append(f"{module} => {module} {version}")
        else:
            lines.append(f"{left} => {right}")
    return lines


def go_build(name: str, version: str, module: str, packages: list, out: Path, *, sibling_version=None,
             ldflags: tuple = (), cgo: bool = False, tags: tuple = (), requires: tuple = (), replaces: tuple = ()) -> float:
    """Build main packages of `module@version` into `out` (one binary per package); seconds taken."""
    started = time.monotonic()
    info = module_info(module, version)
    gomod = Path(info["GoMod"]).read_text(encoding="utf-8")
    replaces = upstream_replaces(gomod, sibling_version or (lambda _m: version)) + list(replaces)
    work = cache_dir() / "build" / f"{name}-{version}"
    work.mkdir(parents=True, exist_ok=True)
    go_line = re.search(r"^go (\S+)", gomod, re.M)
    text = [f"module kubeforge.local/build/{name}", "", f"go {go_line.group(1) if go_line else '1.22'}", "",
            "require (", f"\t{module} {version}", *[f"\t{r}" for r in requires], ")", ""]
    if replaces:
        text += ["replace (", *[f"\t{line}" for line in replaces], ")", ""]
    text += ["tool (", *[f"\t{pkg}" for pkg in packages], ")", ""]
    (work / "go.mod").write_text("\n".join(text), encoding="utf-8")
    # -e: tidy also walks the tests of dependencies, where old etcd releases import an ambiguous
    # package; only what the build needs must resolve, and `go build` below checks that.
    run(["go", "mod", "tidy", "-e"], cwd=work)
    out.mkdir(parents=True, exist_ok=True)
    env = {"CGO_ENABLED": "1" if cgo else "0"}
    cmd = ["go", "build", "-trimpath", "-ldflags", " ".join(["-s", "-w", *ldflags]), "-o", str(out) + "/"]
    if tags:
        cmd += ["-tags", ",".join(tags)]
    run(cmd + packages, cwd=work, env=env)
    return time.monotonic() - started


def _x(package: str, **values) -> list:
    return [f"-X {package}.{key}={value}" for key, value in values.items()]


# --------------------------------------------------------------------------- release layouts

def write_sha256(path: Path) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n", encoding="utf-8")


def pack_tar(dest: Path, members: list, top: str = "") -> None:
    """A deterministic tar.gz of (arcname, file) pairs under an optional top directory."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs = sorted({str(Path(top, arc).parent) for arc, _source in members} - {"", "."})
        for directory in dirs:
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for arc, source in sorted(members):
            data = Path(source).read_bytes()
            info = tarfile.TarInfo(str(Path(top, arc)) if top else arc)
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            tar.addfile(info, io.BytesIO(data))
    with open(dest, "wb") as handle, gzip.GzipFile(fileobj=handle, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    write_sha256(dest)


def install_file(source: Path, dest: Path) -> None:
    """Copy beside, then rename: a running copy of the old file (a test's apiserver) keeps its inode."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    shutil.copyfile(source, partial)
    partial.chmod(0o755)
    os.replace(partial, dest)
    write_sha256(dest)


# --------------------------------------------------------------------------- components

KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl")


def build_kubernetes(version: str, bins: Path, artifacts: Path) -> list:
    major, minor, patch = version.split(".")
    flags = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += _x(package, gitVersion=f"v{version}", gitMajor=major, gitMinor=minor, gitTreeState="clean", buildDate=EPOCH,
                    # A module zip carries no commit: say none rather than the "$Format:%H$" placeholder.
                    gitCommit="")
    go_build("kubernetes", f"v{version}", "k8s.io/kubernetes", [f"k8s.io/kubernetes/cmd/{c}" for c in KUBE_COMMANDS], bins,
             sibling_version=lambda _m: f"v0.{minor}.{patch}", ldflags=tuple(flags))
    outputs = []
    for command in KUBE_COMMANDS:
        dest = artifacts / f"release/v{version}/bin/linux/{ARCH}/{command}"
        install_file(bins / command, dest)
        outputs.append(dest)
    return outputs


def build_etcd(version: str, bins: Path, artifacts: Path) -> list:
    tag = f"v{version}"
    # Three modules, one main package each (a /v3 path builds a binary named after the element before it).
    for program in ("server", "etcdctl", "etcdutl"):
        go_build(f"etcd-{program}", tag, f"go.etcd.io/etcd/{program}/v3", [f"go.etcd.io/etcd/{program}/v3"], bins)
    name = f"etcd-{tag}-linux-{ARCH}"
    dest = artifacts / f"etcd-io/etcd/releases/download/{tag}/{name}.tar.gz"
    pack_tar(dest, [("etcd", bins / "server"), ("etcdctl", bins / "etcdctl"), ("etcdutl", bins / "etcdutl")], top=name)
    return [dest]


def build_containerd(version: str, bins: Path, artifacts: Path) -> list:
    tag = f"v{version}"
    module = "github.com/containerd/containerd/v2"
    commands = ("containerd", "containerd-shim-runc-v2", "ctr")
    # Static, without cgo: the btrfs snapshotter (cgo) is left out, as in upstream's static build.
    go_build("containerd", tag, module, [f"{module}/cmd/{c}" for c in commands], bins, tags=("no_btrfs",),
             ldflags=tuple(_x(f"{module}/version", Version=tag, Package=module)))
    dest = artifacts / f"containerd/containerd/releases/download/{tag}/containerd-{version}-linux-{ARCH}.tar.gz"
    pack_tar(dest, [(f"bin/{c}", bins / c) for c in commands])
    return [dest]


def build_runc(version: str, bins: Path, artifacts: Path) -> list:
    # runc needs cgo (nsenter) and libseccomp; linked statically like the release binary.
    if not Path("/usr/include/seccomp.h").exists():
        raise SystemExit("upstream: runc needs Debian's libseccomp-dev (apt-get install libseccomp-dev); tests/harness/build-artifacts.sh installs it")
    go_build("runc", f"v{version}", "github.com/opencontainers/runc", ["github.com/opencontainers/runc"], bins, cgo=True,
             tags=("seccomp", "urfave_cli_no_docs"), ldflags=("-extldflags=-static", *_x("main", version=version)))
    dest = artifacts / f"opencontainers/runc/releases/download/v{version}/runc.{ARCH}"
    install_file(bins / "runc", dest)
    return [dest]


CNI_PLUGINS = ("main/bridge", "main/host-device", "main/ipvlan", "main/loopback", "main/macvlan", "main/ptp", "main/vlan",
               "main/dummy", "main/tap", "ipam/dhcp", "ipam/host-local", "ipam/static",
               "meta/bandwidth", "meta/firewall", "meta/portmap", "meta/sbr", "meta/tuning", "meta/vrf")


def build_cni_plugins(version: str, bins: Path, artifacts: Path) -> list:
    tag = f"v{version}"
    module = "github.com/containernetworking/plugins"
    go_build("cni-plugins", tag, module, [f"{module}/plugins/{p}" for p in CNI_PLUGINS], bins,
             ldflags=tuple(_x(f"{module}/pkg/utils/buildversion", BuildVersion=tag)))
    dest = artifacts / f"containernetworking/plugins/releases/download/{tag}/cni-plugins-linux-{ARCH}-{tag}.tgz"
    pack_tar(dest, [(f"./{p.split('/')[1]}", bins / p.split("/")[1]) for p in CNI_PLUGINS])
    return [dest]


def build_crictl(version: str, bins: Path, artifacts: Path) -> list:
    tag = f"v{version}"
    go_build("crictl", tag, "sigs.k8s.io/cri-tools", ["sigs.k8s.io/cri-tools/cmd/crictl"], bins,
             ldflags=tuple(_x("sigs.k8s.io/cri-tools/pkg/version", Version=tag)))
    dest = artifacts / f"kubernetes-sigs/cri-tools/releases/download/{tag}/crictl-{tag}-linux-{ARCH}.tar.gz"
    pack_tar(dest, [("crictl", bins / "crictl")])
    return [dest]


def build_flannel(version: str, bins: Path, artifacts: Path) -> list:
    tag = f"v{version}"
    module = "github.com/flannel-io/flannel"
    # The Go module proxy here refuses the Tencent VPC SDK version flannel requires (v1.3.188) and
    # serves v1.3.75, which the earlier 0.28 releases built with; that cloud backend is unused here.
    vpc = "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc"
    # cgo for the udp backend (its C proxy), linked statically as upstream's amd64 release is.
    go_build("flannel", tag, module, [module], bins, cgo=True,
             ldflags=("-extldflags=-static", *_x(f"{module}/pkg/version", Version=tag)), replaces=(f"{vpc} => {vpc} v1.3.75",))
    dest = artifacts / f"flannel-io/flannel/releases/download/{tag}/flanneld-{ARCH}"
    install_file(bins / "flannel", dest)
    return [dest]


def build_flannel_cni(version: str, bins: Path, artifacts: Path) -> list:
    # The flannel CNI plugin's own module (flannel-io/cni-plugin) is not served by the Go module
    # proxy here; its origin, plugins/meta/flannel of the CNI plugins, is (up to v0.9.1).
    tag = f"v{version}"
    module = "github.com/containernetworking/plugins"
    go_build("flannel-cni", tag, module, [f"{module}/plugins/meta/flannel"], bins, requires=("golang.org/x/sys v0.30.0",))
    dest = artifacts / f"containernetworking/plugins/releases/download/{tag}/flannel-{ARCH}"
    install_file(bins / "flannel", dest)
    return [dest]


def build_coredns(version: str, bins: Path, artifacts: Path) -> list:
    tag = f"v{version}"
    go_build("coredns", tag, "github.com/coredns/coredns", ["github.com/coredns/coredns"], bins)
    dest = artifacts / f"coredns/coredns/releases/download/{tag}/coredns_{version}_linux_{ARCH}.tgz"
    pack_tar(dest, [("coredns", bins / "coredns")])
    return [dest]


COMPONENTS = {
    "kubernetes": build_kubernetes,
    "etcd": build_etcd,
    "containerd": build_containerd,
    "runc": build_runc,
    "cni_plugins": build_cni_plugins,
    "crictl": build_crictl,
    "flannel": build_flannel,
    "flannel_cni": build_flannel_cni,
    "coredns": build_coredns,
}


def stamp_of(name: str, version: str) -> Path:
    return cache_dir() / "stamps" / f"{name}-{version}.json"


def recipe(name: str) -> str:
    """How a component is built: its builder's source and the shared build steps. A change to
    either rebuilds that component (the Go build cache keeps it short); other edits do not."""
    source = "".join(inspect.getsource(f) for f in (COMPONENTS[name], go_build, upstream_replaces, pack_tar))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def stamped(stamp: Path, key: str, what: str, build) -> tuple:
    """(built?, seconds): nothing is done when the stamp has this key and every output it recorded
    is still there with its checksum; otherwise build() runs and returns its outputs."""
    if stamp.exists():
        record = json.loads(stamp.read_text(encoding="utf-8"))
        if record.get("recipe") == key and all(Path(p).exists() and Path(p + ".sha256").exists() for p in record["outputs"]):
            return False, 0.0
    log(f"building {what} ...")
    started = time.monotonic()
    outputs = build()
    seconds = time.monotonic() - started
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"recipe": key, "seconds": round(seconds, 1), "outputs": [str(p) for p in outputs]}, indent=1),
                     encoding="utf-8")
    log(f"built {what} in {seconds:.0f} s")
    return True, seconds


def ensure(name: str, version: str, artifacts: Path) -> tuple:
    """One component version, built unless its stamp is current."""
    return stamped(stamp_of(name, version), recipe(name), f"{name} {version}",
                   lambda: COMPONENTS[name](version, cache_dir() / "bin" / f"{name}-{version}", artifacts))


def ensure_images(images: Path) -> tuple:
    """The OCI image tarballs (images.py), from the first pinned Kubernetes' pause source and the
    CoreDNS and flannel binaries built above; keyed by those versions and images.py."""
    pins = PINS["components"]
    key = hashlib.sha256(json.dumps([pins["kubernetes"][0], pins["coredns"][0], pins["flannel"][0], pins["flannel_cni"][0],
                                     inspect.getsource(images_lib)]).encode()).hexdigest()[:16]

    def build() -> list:
        if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
            raise SystemExit("upstream: the images need a Docker engine: run tests/harness/ensure-docker.sh (make docker)")
        bins = cache_dir() / "bin"
        kube_dir = Path(module_info("k8s.io/kubernetes", f"v{pins['kubernetes'][0]}")["Dir"])
        outputs = [
            images_lib.pause_image(kube_dir, cache_dir() / "build" / "pause", images),
            images_lib.coredns_image(pins["coredns"][0], bins / f"coredns-{pins['coredns'][0]}" / "coredns", images),
        ]
        busybox = images_lib.busybox_image(cache_dir() / "build" / "busybox", images)
        outputs += [
            images_lib.flannel_image(pins["flannel"][0], bins / f"flannel-{pins['flannel'][0]}" / "flannel",
                                     bins / f"flannel_cni-{pins['flannel_cni'][0]}" / "flannel",
                                     cache_dir() / "build" / "busybox" / "busybox", images),
            busybox,
        ]
        for output in outputs:
            write_sha256(output)
        return outputs

    return stamped(stamp_of("images", "all"), key, "the images (pause, CoreDNS, flannel, busybox)", build)


def ensure_previous_images(images: Path, previous: Path) -> tuple:
    """With --all-versions: the images the upgrade scenario starts from (its kubeforge_images_dir until upgrade.yml
    brings the lab's): the CoreDNS image of each other pinned version, and links to the other images of ``images``."""
    pins = PINS["components"]
    others = sorted(path.name for path in images.glob("*.tar") if not path.name.startswith("coredns-"))
    key = hashlib.sha256(json.dumps([pins["coredns"], others, inspect.getsource(images_lib)]).encode()).hexdigest()[:16]

    def build() -> list:
        shutil.rmtree(previous, ignore_errors=True)  # a cache: what an older recipe left goes
        bins = cache_dir() / "bin"
        outputs = [images_lib.coredns_image(version, bins / f"coredns-{version}" / "coredns", previous) for version in pins["coredns"][1:]]
        for output in outputs:
            write_sha256(output)
        for name in others:
            for file in (name, f"{name}.sha256"):
                (previous / file).symlink_to(images / file)
            outputs.append(previous / name)
        return outputs

    return stamped(stamp_of("images-previous", "all"), key, "the upgrade scenario's earlier images (CoreDNS)", build)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--only", nargs="*", default=None, help="component names (default: all)")
    parser.add_argument("--all-versions", action="store_true",
                        help="every pinned version; by default only the first of each, which the lab and the tests run")
    parser.add_argument("--print-dir", action="store_true", help="print the artifacts directory and exit")
    args = parser.parse_args()
    artifacts = cache_dir() / "artifacts"
    if args.print_dir:
        print(artifacts)
        return 0
    if not shutil.which("go"):
        raise SystemExit("upstream: the `go` command is not on PATH (Go 1.26 is needed to build the components)")
    started = time.monotonic()
    built = []
    # The first pinned version of every component first (what the lab and the tests run), then the others.
    wanted = [(name, versions) for name, versions in PINS["components"].items() if not args.only or name in args.only]
    ranks = max((len(v) for _n, v in wanted), default=0) if args.all_versions else 1
    for rank in range(ranks):
        for name, versions in wanted:
            if rank < len(versions):
                did, seconds = ensure(name, versions[rank], artifacts)
                if did:
                    built.append(f"{name} {versions[rank]} {seconds:.0f} s")
    if not args.only or "images" in args.only:
        did, seconds = ensure_images(artifacts.parent / "images")
        if did:
            built.append(f"images {seconds:.0f} s")
        if args.all_versions:
            did, seconds = ensure_previous_images(artifacts.parent / "images", artifacts.parent / "images-previous")
            if did:
                built.append(f"earlier images {seconds:.0f} s")
    total = time.monotonic() - started
    if built:
        log(f"built with {run(['go', 'env', 'GOVERSION']).strip()} on {os.cpu_count()} cores: {', '.join(built)}")
    log(f"{'' if built else 'everything cached; '}total {total:.1f} s; artifacts in {artifacts}")
    print(artifacts)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Build the lab/test artifacts directory in the official release layout, with a .sha256 beside
# each file, so the roles install from it exactly as from the official downloads.
#   build-artifacts.sh DIR
# etcd: the release tarball cannot be downloaded here, so Debian sid's etcd 3.5 binaries are
# packed the way etcd's release tarball is (etcd-vX-linux-amd64/{etcd,etcdctl,etcdutl}).
# The tar is deterministic, so an unchanged input gives the same checksum.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build-artifacts.sh DIR}
arch=amd64

bin_dir=$("$here/fetch-etcd.sh")
version=$("$bin_dir/etcd" --version | awk '/^etcd Version:/ {print $3}')
name=etcd-v$version-linux-$arch
dest=$out/etcd-io/etcd/releases/download/v$version
if [ ! -s "$dest/$name.tar.gz.sha256" ]; then
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/$name" "$dest"
  cp "$bin_dir/etcd" "$bin_dir/etcdctl" "$bin_dir/etcdutl" "$stage/$name/"
  printf 'etcd %s built by Debian (sid packages etcd-server/etcd-client), packed in the release layout by kubeforge tests/harness/build-artifacts.sh.\n' \
    "$version" > "$stage/$name/README-kubeforge-lab.txt"
  tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - "$name" | gzip -n > "$dest/$name.tar.gz"
  (cd "$dest" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
fi
echo "build-artifacts: etcd $version in $dest" >&2

# ---- kube-* TEST STAND-INS (tests/standins; not Kubernetes, tests only): installed under the real
# ---- names in the release layout for the lab's kube_version (the default in inventory/sample, or
# ---- KUBEFORGE_LAB_KUBE_VERSION). All the logic is in tests/harness/build-standins.sh.
standin_version=${KUBEFORGE_LAB_KUBE_VERSION:-$(sed -n 's/^kube_version: *"\{0,1\}\([0-9.]*\)"\{0,1\}.*/\1/p' "$here/../../inventory/sample/group_vars/all.yml")}
"$here/build-standins.sh" "$out" "${standin_version:-1.36.4}"

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The lab's and the tests' offline artifacts directory:
#   build-artifacts.sh LINK [build.py options, e.g. --all-versions]
# The official download sites cannot be reached here, so the real upstream programs (Kubernetes,
# etcd, containerd, runc, CNI plugins, crictl, flannel, CoreDNS) are compiled from their Go
# modules by tests/harness/upstream/build.py into the per-machine cache
# (${XDG_CACHE_HOME:-~/.cache}/kubeforge/artifacts, in the official release layouts with a .sha256
# beside each file; images in .../images), and LINK points at that directory. A warm cache takes
# seconds; a cold one is timed in the README.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
link=${1:?usage: build-artifacts.sh LINK [--all-versions]}
shift

# Build dependencies beyond Go: runc links libseccomp statically; the images need a Docker engine.
if [ ! -e /usr/include/seccomp.h ]; then
  echo "build-artifacts: installing Debian's libseccomp-dev (runc is linked against it)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libseccomp-dev >&2
fi
"$here/ensure-docker.sh"

dir=$("${PYTHON:-python3}" "$here/upstream/build.py" "$@")
mkdir -p "$(dirname "$link")"
# An artifacts directory left by an older checkout's harness is a cache, not state: replace it.
[ -L "$link" ] || rm -rf "$link"
ln -sfn "$dir" "$link"
echo "build-artifacts: $link -> $dir" >&2
# The image tarballs (kubeforge_images_dir of the lab and the scenarios) sit beside the artifacts.
images_link=$(dirname "$link")/images
ln -sfn "$(dirname "$dir")/images" "$images_link"
echo "build-artifacts: $images_link -> $(dirname "$dir")/images" >&2
# --all-versions: the images the upgrade scenario starts from (an earlier CoreDNS).
if [ -d "$(dirname "$dir")/images-previous" ]; then
  ln -sfn "$(dirname "$dir")/images-previous" "${images_link}-previous"
fi

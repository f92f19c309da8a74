#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Install the kubeforge TEST STAND-INS for the kube-* binaries (tests/standins: NOT Kubernetes;
# real hosts run the official binaries) into an artifacts directory in the official release layout:
#   build-standins.sh DIR VERSION [VERSION...]
# -> DIR/release/v<VERSION>/bin/linux/amd64/{kube-apiserver,kube-controller-manager,kube-scheduler,
#    kubelet,kube-proxy,kubectl} (executable, deterministic) with <name>.sha256 beside each.
# The flag and config-field lists are read now from ../shared/k8s-flags beside the checkout
# (KUBEFORGE_K8S_FLAGS_DIR overrides) and baked into each file, so the nodes need no access to them.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: build-standins.sh DIR VERSION [VERSION...]}
shift
[ $# -gt 0 ] || { echo "usage: build-standins.sh DIR VERSION [VERSION...]" >&2; exit 2; }
flags_dir=${KUBEFORGE_K8S_FLAGS_DIR:-$repo/../shared/k8s-flags}
if [ -z "${KUBEFORGE_K8S_FLAGS_DIR:-}" ] && [ ! -d "$flags_dir" ]; then
  # A checkout without ../shared beside it: use the collection's own copy of the same lists
  # (tools/sync_shared_data.py writes it from ../shared), arranged in the shared layout.
  data=$repo/plugins/module_utils/_data
  flags_dir=$(mktemp -d)
  trap 'rm -rf "$flags_dir"' EXIT
  for minor in "$data"/flags/*/; do ln -s "$minor" "$flags_dir/$(basename "$minor")"; done
  ln -s "$data/config_api" "$flags_dir/config-api"
  echo "build-standins.sh: ../shared/k8s-flags not found, using the collection's copy in $data" >&2
fi
[ -d "$flags_dir" ] || { echo "build-standins.sh: $flags_dir is missing (the shared k8s-flags lists)" >&2; exit 1; }
"${PYTHON:-python3}" "$repo/tests/standins/build.py" --flags-dir "$flags_dir" --out "$out" --arch amd64 "$@"

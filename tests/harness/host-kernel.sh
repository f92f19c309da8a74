#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Lab only: the kernel settings the lab's kubelets require, set on this machine.
# The lab hosts are containers sharing this kernel, whose /proc/sys is read-only inside; kubelet
# runs with protectKernelDefaults (it refuses to start unless these already hold, as on a real
# host where the prepare role sets them), so the harness sets them here, once per boot.
set -euo pipefail
declare -A wanted=(
  [vm.overcommit_memory]=1
  [vm.panic_on_oom]=0
  [kernel.panic]=10
  [kernel.panic_on_oops]=1
  [kernel.keys.root_maxkeys]=1000000
  [kernel.keys.root_maxbytes]=25000000
  # Every lab host's containerd, kubelet and pods take inotify instances from root's one budget on
  # this kernel (128 by default): two scenarios side by side ran out, and containerd's CRI plugin
  # failed to load ("couldn't initialize inotify: too many open files").
  [fs.inotify.max_user_instances]=8192
  [fs.inotify.max_user_watches]=524288
)
for key in "${!wanted[@]}"; do
  if [ "$(sysctl -n "$key")" != "${wanted[$key]}" ]; then
    sysctl -q -w "$key=${wanted[$key]}"
    echo "host-kernel: $key=${wanted[$key]}" >&2
  fi
done

#!/usr/bin/env bash
# Build the kubeforge test node image: debootstrap of Debian bookworm -> docker import.
# The tag is a hash of this script and packages.txt, so the image is rebuilt only when its
# definition changes. Prints the image reference on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
suite=bookworm
mirror=${KUBEFORGE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
tag=$(cat "$here/build.sh" "$here/packages.txt" "$here/kubeforge-lab-init" | sha256sum | cut -c1-12)
image="kubeforge-node:$tag"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi

command -v debootstrap >/dev/null || {
  echo "build.sh: installing debootstrap" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
}

root=$(mktemp -d /var/tmp/kubeforge-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
include=$(grep -v -e '^#' -e '^$' "$here/packages.txt" | paste -sd, -)
echo "build.sh: debootstrap $suite into $root (this takes a few minutes once)" >&2
debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >&2

# A container has no console, no udev and no kernel to tune: mask what cannot work there.
for unit in getty@tty1.service console-getty.service systemd-udevd.service \
            systemd-udev-trigger.service systemd-modules-load.service \
            systemd-remount-fs.service sys-kernel-config.mount; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
# kubelet watches the kernel log for OOM kills; an unprivileged container has no /dev/kmsg, so
# (as kind does) it reads the console instead, which `docker run -t` provides. Lab only.
echo 'L /dev/kmsg - - - - /dev/console' > "$root/etc/tmpfiles.d/kubeforge-lab-kmsg.conf"
# The entrypoint puts the container's own cgroup at the root of each cgroup v1 hierarchy, then starts systemd.
install -m 0755 "$here/kubeforge-lab-init" "$root/usr/local/sbin/kubeforge-lab-init"
# The packaged nginx default site would hold port 80; the ha_nginx role writes its own config.
rm -f "$root/etc/nginx/sites-enabled/default"
echo "deb $mirror $suite main" > "$root/etc/apt/sources.list"
rm -rf "$root"/var/cache/apt/archives/*.deb

tar -C "$root" -c . | docker import \
  --change 'CMD ["/usr/local/sbin/kubeforge-lab-init"]' \
  --change 'ENV container=docker' \
  - "$image" >&2
echo "$image"

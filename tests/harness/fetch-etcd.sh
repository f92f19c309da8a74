#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Fetch Debian sid's etcd 3.5 binaries (etcd, etcdctl, etcdutl) for the integration tests and the
# benches, WITHOUT touching the system's apt state: a private sources list, lists dir, cache,
# status and pinning under .cache/apt-sid (the system's apt.conf.d still applies: proxies and
# mirror settings), `apt-get download` of the two packages, `dpkg-deb -x` into a scratch dir.
# Nothing is installed. Needs apt-get, apt-cache and dpkg-deb (any Debian or Ubuntu host).
# Idempotent: does nothing when the three binaries are already there. Prints the bin dir.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin_dir=${KUBEFORGE_ETCD_BIN_DIR:-$repo/.cache/etcd/bin}
mirror=${KUBEFORGE_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ -x "$bin_dir/etcd" ] && [ -x "$bin_dir/etcdctl" ] && [ -x "$bin_dir/etcdutl" ]; then
  echo "$bin_dir"
  exit 0
fi

apt_dir=$repo/.cache/apt-sid
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/etc/preferences.d" \
         "$apt_dir/debs" "$bin_dir"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main" \
  > "$apt_dir/etc/sources.list"
apt_opts=(
  -o "Dir::Etc::sourcelist=$apt_dir/etc/sources.list"
  -o "Dir::Etc::sourceparts=-"
  -o "Dir::Etc::preferences=$apt_dir/etc/preferences"
  -o "Dir::Etc::preferencesparts=$apt_dir/etc/preferences.d"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "Dir::State::status=/dev/null"
  -o "APT::Get::List-Cleanup=0"
  -o "APT::Sandbox::User=root"
)
echo "fetch-etcd.sh: reading Debian sid's package lists into $apt_dir" >&2
apt-get "${apt_opts[@]}" -qq update >&2
version=$(apt-cache "${apt_opts[@]}" policy etcd-server | awk '/Candidate:/ {print $2}')
case "$version" in
  3.5.*) ;;
  *) echo "fetch-etcd.sh: sid has etcd-server '$version', expected a 3.5.x" >&2; exit 1 ;;
esac
echo "fetch-etcd.sh: downloading etcd-server and etcd-client $version" >&2
(cd "$apt_dir/debs" && rm -f ./*.deb && apt-get "${apt_opts[@]}" -qq download "etcd-server=$version" "etcd-client=$version" >&2)

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for deb in "$apt_dir"/debs/*.deb; do
  dpkg-deb -x "$deb" "$scratch"
done
# Debian ships etcdutl in etcd-server (beside etcd), etcdctl alone in etcd-client (3.5.30-2);
# look for every binary in both packages' trees rather than rely on that split.
for name in etcd etcdctl etcdutl; do
  found=$(find "$scratch" -type f -name "$name" -perm -u+x | head -n 1)
  [ -n "$found" ] || { echo "fetch-etcd.sh: $name not found in the sid packages" >&2; exit 1; }
  install -m 0755 "$found" "$bin_dir/$name"
done
rm -f "$apt_dir"/debs/*.deb
"$bin_dir/etcd" --version >&2
echo "$bin_dir"

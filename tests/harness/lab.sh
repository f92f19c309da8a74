#!/usr/bin/env bash
# Create or remove the lab hosts: systemd containers from the node image on a private network.
#   lab.sh up IMAGE                          create the network and any missing host (idempotent)
#   lab.sh down                              remove the hosts and the network
#   lab.sh host IMAGE NETWORK NAME:ADDRESS   one more host, as the lab runs one, on an existing
#                                            network (a worker the day2 scenario adds)
#   lab.sh remove NAME                       remove such a host
# Hosts and addresses match inventory/lab/hosts.yml; LAB_EXTRA_HOSTS="NAME:ADDRESS ..." adds more
# (the worker bench/converge.py adds).
set -euo pipefail
network=kubeforge-lab
subnet=172.30.40.0/24
hosts=(kf-cp1:172.30.40.11 kf-cp2:172.30.40.12 kf-cp3:172.30.40.13 kf-w1:172.30.40.21)
read -r -a extra <<< "${LAB_EXTRA_HOSTS:-}"
hosts+=("${extra[@]}")

# start_host IMAGE NETWORK NAME ADDRESS: the container, unless it runs already.
start_host() {
  local image=$1 net=$2 name=$3 ip=$4
  if [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ]; then
    return
  fi
  docker rm -f -v "$name" >/dev/null 2>&1 || true
  # systemd as PID 1 needs SYS_ADMIN, no seccomp filter, the cgroup tree and tmpfs /run; the
  # kubelet, containerd and runc inside need the cgroup tree writable, SYS_PTRACE and MKNOD, and
  # containerd's overlay snapshots need a file system that is not overlay: an anonymous volume (the
  # machine's disk), which, like a real disk, keeps the images over a restart of the host.
  # /proc/sys is read-only inside, so the namespaced sysctls Kubernetes needs are set here.
  # --tty gives the container a /dev/console, which the kubelet reads as its kernel log.
  docker run -d --name "$name" --hostname "$name" --network "$net" --ip "$ip" --label kubeforge.lab=1 \
    --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_PTRACE --cap-add MKNOD \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
    -v /var/lib/containerd \
    --sysctl net.ipv4.ip_forward=1 --sysctl net.ipv4.conf.all.route_localnet=1 \
    --stop-signal SIGRTMIN+3 --tty \
    "$image" >/dev/null
}

# Ansible needs systemd up before it manages services.
wait_systemd() {
  local name=$1 state
  for _ in $(seq 1 30); do
    state=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) return ;; esac
    sleep 1
  done
}

up() {
  local image=$1 entry
  docker network inspect "$network" >/dev/null 2>&1 || docker network create --subnet "$subnet" "$network" >/dev/null
  for entry in "${hosts[@]}"; do
    start_host "$image" "$network" "${entry%%:*}" "${entry##*:}"
  done
  for entry in "${hosts[@]}"; do
    wait_systemd "${entry%%:*}"
  done
}

down() {
  # Every lab host, the extra ones an earlier `up` made included (older ones by name).
  local entry
  for entry in "${hosts[@]}"; do
    docker rm -f -v "${entry%%:*}" >/dev/null 2>&1 || true
  done
  docker ps -aq --filter label=kubeforge.lab=1 --filter network="$network" | xargs -r docker rm -f -v >/dev/null
  docker network rm "$network" >/dev/null 2>&1 || true
}

case "${1:-}" in
  up) up "${2:?usage: lab.sh up IMAGE}" ;;
  down) down ;;
  host)
    entry=${4:?usage: lab.sh host IMAGE NETWORK NAME:ADDRESS}
    start_host "${2:?}" "${3:?}" "${entry%%:*}" "${entry##*:}"
    wait_systemd "${entry%%:*}"
    ;;
  remove) docker rm -f -v "${2:?usage: lab.sh remove NAME}" >/dev/null 2>&1 || true ;;
  *) echo "usage: lab.sh up IMAGE | down | host IMAGE NETWORK NAME:ADDRESS | remove NAME" >&2; exit 2 ;;
esac

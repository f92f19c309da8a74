#!/usr/bin/env bash
# Make sure a Docker engine answers: install Debian's docker.io and start dockerd if needed.
# (A fresh machine here has only the docker client; nothing starts the engine for us.)
set -euo pipefail
if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null; then
  echo "ensure-docker: installing Debian's docker.io" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >&2
fi
if ! docker info >/dev/null 2>&1; then
  echo "ensure-docker: starting dockerd (log: /var/log/kubeforge-dockerd.log)" >&2
  nohup dockerd >/var/log/kubeforge-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && exit 0
    sleep 1
  done
  echo "ensure-docker: dockerd did not answer within 60 s; see /var/log/kubeforge-dockerd.log" >&2
  exit 1
fi

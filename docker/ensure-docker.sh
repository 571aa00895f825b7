#!/usr/bin/env bash
# Make a Docker engine available on a fresh Debian machine (as root): install docker.io and debootstrap from
# Debian's packages if missing, start dockerd if it is not answering.
set -euo pipefail
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  echo "installing docker.io and debootstrap from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd"
  nohup dockerd >/tmp/diecast-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -20 /tmp/diecast-dockerd.log; exit 1; }
fi
echo "docker engine $(docker info -f '{{.ServerVersion}}') is up"

#!/usr/bin/env bash
# A minimal Debian bookworm base image built locally (no registry is reachable): debootstrap minbase + docker import.
# Usage: docker/build-base.sh IMAGE_TAG   (does nothing when the tag exists)
set -euo pipefail
tag=${1:-diecast/debian-minbase:bookworm}
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag exists"
  exit 0
fi
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$(mktemp -d /tmp/diecast-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "debootstrap --variant=minbase bookworm from $mirror (about 30 s)"
debootstrap --variant=minbase bookworm "$root" "$mirror" >/tmp/diecast-debootstrap.log 2>&1 \
  || { tail -20 /tmp/diecast-debootstrap.log; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
  "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log
find "$root"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'C.*' -exec rm -rf {} +
tar -C "$root" -c . | docker import - "$tag" >/dev/null
echo "imported $tag: $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"

#!/usr/bin/env bash
# Debian's chromium for the operator UI's browser test (tests/test_ui_browser.py), installed when it is missing, as
# docker/ensure-docker.sh installs docker. Playwright drives this executable; it never downloads a browser itself.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "ui/ensure-chromium.sh: chromium is missing; install it as root: apt-get install -y chromium" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends chromium fonts-liberation >/dev/null
command -v chromium

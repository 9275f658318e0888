#!/usr/bin/env bash
# The browser tests drive Debian's Chromium with Playwright (which cannot download a browser of its
# own here). Installs the chromium package when /usr/bin/chromium is missing; safe to run again.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
        echo "Chromium is missing and this user cannot install it: run 'apt-get install chromium' as root" >&2
        exit 1
    fi
    SUDO=sudo
fi
echo "== installing Chromium (Debian package) for the browser tests"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null

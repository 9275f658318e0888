#!/usr/bin/env bash
# The Debian packages the test suite's real parts need, installed when missing; safe to run again.
#   chromium                    the browser tests (driven by Playwright; it cannot download one here)
#   ffmpeg                      command-line clip tools for tests and `bench ingest` clips
#   redis-server                the Redis queue and shared rate limits (scale-out tests)
#   nginx                       the reverse-proxy tests (HTTPS in front of the app)
#   mosquitto                   a real MQTT broker for the Frigate bridge tests
#   python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-{good,bad}, gstreamer1.0-libav
#                               a real RTSP camera (gst-rtsp-server, run by /usr/bin/python3)
set -euo pipefail
PACKAGES=(chromium ffmpeg redis-server nginx mosquitto python3-gi gir1.2-gst-rtsp-server-1.0
          gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav)
missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
        echo "missing Debian packages and this user cannot install them: run 'apt-get install ${missing[*]}' as root" >&2
        exit 1
    fi
    SUDO=sudo
fi
echo "== installing Debian packages for the tests: ${missing[*]}"
# The tests start each server themselves on a free port: keep the packages' own services
# (nginx on port 80, redis, mosquitto) from starting at install time.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null

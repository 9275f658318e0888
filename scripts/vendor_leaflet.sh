#!/usr/bin/env bash
# Refreshes the map library served from web/static/vendor/leaflet (no CDN: the site loads no
# third-party script).  The files are committed, so a clone works offline; run this only to move
# to another Leaflet version (change LEAFLET_VERSION), then commit the result.
# Source: the npm registry's leaflet package (BSD-2-Clause), checked against its integrity hash.
set -euo pipefail
cd "$(dirname "$0")/.."

LEAFLET_VERSION="${LEAFLET_VERSION:-1.9.4}"
DEST=web/static/vendor/leaflet
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

( cd "$work" && npm pack --silent "leaflet@${LEAFLET_VERSION}" >/dev/null )
tarball="$(ls "$work"/leaflet-*.tgz)"
expected="$(npm view "leaflet@${LEAFLET_VERSION}" dist.integrity)"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$expected" != "$actual" ]; then
    echo "leaflet ${LEAFLET_VERSION}: integrity mismatch (registry $expected, file $actual)" >&2
    exit 1
fi
tar -xzf "$tarball" -C "$work"
rm -rf "$DEST"
mkdir -p "$DEST/images"
cp "$work/package/dist/leaflet.js" "$work/package/dist/leaflet.css" "$DEST/"
cp "$work"/package/dist/images/*.png "$DEST/images/"
cp "$work/package/LICENSE" "$DEST/LICENSE"
echo "$LEAFLET_VERSION" > "$DEST/VERSION"
echo "leaflet ${LEAFLET_VERSION} vendored into $DEST"

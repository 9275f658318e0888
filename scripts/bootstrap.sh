#!/usr/bin/env bash
# Sets up everything a fresh clone needs: virtual environment, dependencies (from the package
# registries only), model verification and ONNX export, and the database. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
fi
echo "== installing Search Party and its dependencies (the versions pinned in requirements.lock)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[train,test]"
if [ ! -f web/static/vendor/leaflet/leaflet.js ]; then
    echo "== fetching the map library (Leaflet) from the npm registry"
    bash scripts/vendor_leaflet.sh
fi
echo "== verifying models, exporting ONNX graphs, preparing the database"
.venv/bin/search-party setup

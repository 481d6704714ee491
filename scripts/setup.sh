#!/usr/bin/env bash
# Prepare a fresh clone: the Python virtual environment with CityOS and its dev tools.
# Idempotent and quick when nothing changed (a stamp file remembers the pyproject it installed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.cityos-installed
if [ ! -f "$stamp" ] || ! cmp -s pyproject.toml "$stamp"; then
  echo "==> installing CityOS and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  cp pyproject.toml "$stamp"
fi
# The NGSI v2 end-to-end test drives an Orion application on npm's ngsijs (tests/e2e/v2client).
# npm ci only when package-lock.json changed since the last install (same stamp idea as above).
client=tests/e2e/v2client
if command -v npm >/dev/null 2>&1; then
  if [ ! -d "$client/node_modules" ] || ! cmp -s "$client/package-lock.json" "$client/node_modules/.cityos-installed"; then
    echo "==> installing the NGSI v2 test client (npm ci in $client)"
    (cd "$client" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$client/package-lock.json" "$client/node_modules/.cityos-installed"
  fi
else
  echo "==> npm not found: tests/e2e/test_v2_clients.py needs Node.js 18+ and npm" >&2
fi

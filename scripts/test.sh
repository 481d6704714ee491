#!/usr/bin/env bash
# The whole test suite, on SQLite and PostgreSQL: `make test` (and CI) run exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/services.sh
exec .venv/bin/python -m pytest "$@"

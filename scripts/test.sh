#!/usr/bin/env bash
# Set everything up, then run every check CI runs: lint, format, types, the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "== ruff check";  .venv/bin/ruff check .
echo "== ruff format"; .venv/bin/ruff format --check .
echo "== mypy";        .venv/bin/mypy
echo "== pytest"
# pytest exits 5 when it collected nothing; set -e turns that into a failure, never a pass.
.venv/bin/python -m pytest "$@"

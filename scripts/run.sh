#!/usr/bin/env bash
# Set everything up, then run the daemon in the foreground with its defaults
# (API on 127.0.0.1:4610, state in the user's data directory). Extra arguments go to `rocd serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
command -v rocd >/dev/null 2>&1 || echo "run: to use rocd from your shell: source .venv/bin/activate (this shell) or ./scripts/install-user.sh (for good)"
exec .venv/bin/rocd serve "$@"

#!/usr/bin/env bash
# Put `rocd` on your PATH for good: a link in ~/.local/bin (or $PREFIX/bin) to this
# checkout's .venv/bin/rocd (which runs with the virtual environment's Python, wherever it
# is called from). Runs scripts/setup.sh first when the environment is not there yet.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/rocd ] || ./scripts/setup.sh
bin="${PREFIX:-$HOME/.local}/bin"
mkdir -p "$bin"
ln -sfn "$PWD/.venv/bin/rocd" "$bin/rocd"
echo "install: $bin/rocd -> $PWD/.venv/bin/rocd"
case ":$PATH:" in
    *":$bin:"*) ;;
    *) echo "install: $bin is not on your PATH; add it (e.g. in ~/.profile): export PATH=\"$bin:\$PATH\"" ;;
esac

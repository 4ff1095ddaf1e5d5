#!/usr/bin/env bash
# Set up everything rocd needs on a fresh Debian/Ubuntu machine: system packages (a headless
# sound server, PortAudio, libsndfile, network tools for the multi-host tests) and a virtual
# environment in .venv with rocd and its development tools installed. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3 python3-venv python3-pip pulseaudio pulseaudio-utils libpulse0 libportaudio2
              libasound2-plugins libsndfile1 libsamplerate0 iproute2 iptables gcc libc6-dev
              chromium)  # chromium: the web console's browser tests (Playwright drives it)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing system packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
# The compiled LDPC decoder core (optional: numpy decodes without it).
.venv/bin/python -c "from rocd.net.roc import _ldpc_native as n; print('setup: built', n.build())" \
    || echo "setup: no C compiler: the numpy LDPC decoder will be used"
# The compiled send loop of paced senders (optional: a Python thread sends without it).
.venv/bin/python -c "from rocd.net.roc import _send_native as n; print('setup: built', n.build())" \
    || echo "setup: no C compiler: paced senders will send from a Python thread"
# The compiled drift-compensation resampler (optional: libsamplerate resamples without it).
.venv/bin/python -c "from rocd.net.roc import _resample_native as n; print('setup: built', n.build())" \
    || echo "setup: no C compiler: receivers will resample with libsamplerate"
echo "setup: ready (.venv/bin/rocd; source .venv/bin/activate or ./scripts/install-user.sh to have rocd on your PATH)"

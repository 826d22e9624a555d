#!/usr/bin/env bash
# Set up fewshot on a fresh Debian/Ubuntu machine: system packages, then a
# virtual environment in .venv with the package and every extra (train, eval,
# live, web, data, test).
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium and chromium-driver: the web page's browser tests
APT_PACKAGES=(ffmpeg libportaudio2 espeak-ng sox pulseaudio pulseaudio-utils libasound2-plugins chromium chromium-driver)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        echo "setup: please install ${missing[*]} with your system's package manager" >&2
        exit 1
    fi
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing ${missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[train,eval,live,web,data,test]"
echo "setup: ready (.venv)"

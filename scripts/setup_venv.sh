#!/usr/bin/env bash
# Create a virtual environment and install cropray with its test tools.
# torch is installed first and explicitly: without a GPU we take the CPU build (an unpinned `torch`
# would pull a multi-GB CUDA build). pyproject.toml keeps `torch>=2.3` for users.
set -euo pipefail
VENV="${1:-.venv}"
PY="${PYTHON:-python3}"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        "$VENV/bin/python" -m pip install -q "torch>=2.3"
    else
        "$VENV/bin/python" -m pip install -q "torch==2.13.0" \
            || "$VENV/bin/python" -m pip install -q "torch>=2.3" --index-url https://download.pytorch.org/whl/cpu
    fi
fi
"$VENV/bin/python" -m pip install -q -e ".[dev]"
# The labelling page's browser test (tests/label) drives Debian's headless Chromium through selenium
# (a dev extra) and /usr/bin/chromedriver: install both when missing (CI runs as root; elsewhere sudo).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -qq
        $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
    else
        echo "warning: no apt-get; install chromium and chromedriver for tests/label" >&2
    fi
fi
echo "cropray installed in $VENV"

#!/usr/bin/env bash
# Set up the environment from scratch if needed and launch the studio on the
# built-in default model.  Extra arguments go to fastvideo-studio.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/scripts/bootstrap.sh"
venv="${FASTVIDEO_VENV:-$here/.venv}"
# The built-in default model (shipped, or made once on first launch) unless --model is given.
model="$("$venv/bin/python" -m fastvideo.builtin)"
# fastvideo-studio first checks the X11 libraries Qt's xcb plugin needs and, if any is missing, prints the
# install command (e.g. sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1) and exits 4.
exec "$venv/bin/fastvideo-studio" --model "$model" "$@"

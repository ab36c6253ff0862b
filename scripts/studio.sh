#!/usr/bin/env bash
# Set up the environment from scratch if needed and launch the studio on the
# built-in default model.  Extra arguments go to fastvideo-studio.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/scripts/bootstrap.sh"
venv="${FASTVIDEO_VENV:-$here/.venv}"
# The built-in default model (shipped, or made once on first launch) unless --model is given.
model="$("$venv/bin/python" -m fastvideo.builtin)"
exec "$venv/bin/fastvideo-studio" --model "$model" "$@"

#!/usr/bin/env bash
# Set up the environment from scratch if needed and launch the studio on the
# built-in default model.  Extra arguments go to fastvideo-studio.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/scripts/bootstrap.sh"
exec "${FASTVIDEO_VENV:-$here/.venv}/bin/fastvideo-studio" "$@"

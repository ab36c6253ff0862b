#!/usr/bin/env bash
# Create (or repair) the project's virtual environment in .venv and install the
# project with the given extras.  Used by scripts/studio.sh and scripts/test.sh.
#   usage: scripts/bootstrap.sh [extra]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${FASTVIDEO_VENV:-$here/.venv}"
extra="${1:-}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  echo "creating virtual environment in $venv" >&2
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
# torch first, pinned: a bare "torch" requirement can pull a multi-GB build.
# FASTVIDEO_TORCH overrides the requirement (e.g. a CUDA build's index).
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  "${pip[@]}" install ${FASTVIDEO_TORCH:-torch==2.13.0}
fi
if [ -n "$extra" ]; then
  "${pip[@]}" install -e "$here[$extra]"
else
  "${pip[@]}" install -e "$here"
fi

#!/usr/bin/env bash
# Set up the environment from scratch if needed and run the whole test suite.
#   usage: scripts/test.sh [pytest args...]
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/scripts/bootstrap.sh" test || exit 1
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
cd "$here"
"${FASTVIDEO_VENV:-$here/.venv}/bin/python" -m pytest "$@"
rc=$?
# pytest exits 5 when no test was collected: that is a failure here, not a pass.
if [ $rc -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi
exit $rc

"""The studio window opened, used and closed again and again: never an abort at close or at interpreter exit.

Each cycle is its own process (tests/app/soak_studio.py with one window): the real main window on a studio with
the fake inference engine, a job generated through the Generate panel, its video looping in the player, then the
window closed, the studio's shutdown (app.main.shutdown) and normal interpreter finalization, where PySide6 6.12.0
on Python 3.11 aborted with ``bool_dealloc`` / ``none_dealloc``.  A crash shows as a non-zero exit of that cycle.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CYCLES = 20


def _cycle(i: int, data: Path, model: Path) -> tuple[int, int, str, str]:
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "app" / "soak_studio.py"), str(data), str(model),
                           str(ROOT / "tests" / "serve"), "--windows", "1", "--jobs", "1", "--frames", "200"],
                          capture_output=True, text=True, cwd=ROOT, timeout=180,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"})
    return i, proc.returncode, proc.stdout, proc.stderr


@pytest.mark.timeout(600)
def test_twenty_open_generate_close_cycles_never_abort(tmp_path, fake_model):
    # Two at a time, each with its own data folder (one studio per data folder is the rule).
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda i: _cycle(i, tmp_path / f"data{i}", fake_model), range(CYCLES)))
    failed = [(i, rc, (out + err)[-2000:]) for i, rc, out, err in results if rc != 0 or "Fatal Python error" in err]
    assert not failed, f"{len(failed)} of {CYCLES} cycles crashed; first: {failed[0]}"
    for i, _rc, out, _err in results:
        counts = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
        assert min(counts["none"], counts["true"], counts["false"]) > -200, (i, counts)
    # Every cycle's job finished and its studio released the data folder (no lock left behind by a crash).
    assert all(not (tmp_path / f"data{i}" / "studio.lock").exists() for i in range(CYCLES))

"""PySide6 builds that drop references on every Qt call (6.12.0 on CPython 3.10/3.11) must never be what the
studio runs on: a fast reference-count probe, a soak of the real window, and the studio's own refusal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOAK = ROOT / "tests" / "app" / "soak_studio.py"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}


def test_installed_pyside_keeps_reference_counts():
    """``python -m app.qtcheck`` makes 200 void / bool Qt calls; an affected build loses ~600 references to None."""
    out = subprocess.run([sys.executable, "-m", "app.qtcheck"], capture_output=True, text=True, env=_env(),
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "-> ok" in out.stdout


def run_soak(tmp_path: Path, fake_model: Path, *, windows: int, jobs: int, frames: int,
             timeout: float = 240) -> dict:
    proc = subprocess.run([sys.executable, str(SOAK), str(tmp_path / "data"), str(fake_model),
                           str(ROOT / "tests" / "serve"), "--windows", str(windows), "--jobs", str(jobs),
                           "--frames", str(frames)], capture_output=True, text=True, env=_env(), cwd=ROOT,
                          timeout=timeout)
    tail = (proc.stdout + proc.stderr)[-3000:]
    assert proc.returncode == 0, f"the studio process ended with {proc.returncode}:\n{tail}"
    assert "Fatal Python error" not in proc.stderr, tail
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_soak_looping_player_previews_and_repeated_closes(tmp_path, fake_model):
    """Three windows in one process, two jobs each through the Generate panel, 3000 frames of the finished video
    looping in the real player beside an animating preview, each window closed, then the studio's shutdown and
    interpreter finalization.  On PySide6 6.12.0 / Python 3.11 this aborts (none_dealloc) within the first
    window; a build that leaks more slowly still fails on the counts."""
    counts = run_soak(tmp_path, fake_model, windows=3, jobs=2, frames=3000)
    for name in ("none", "true", "false"):
        assert counts[name] > -500, f"the reference count of {name.capitalize()} fell by {-counts[name]}: {counts}"


def test_studio_refuses_an_affected_pyside(monkeypatch, capsys, tmp_path):
    from app import main as studio_main
    from app import qtcheck

    monkeypatch.delenv("FASTVIDEO_STUDIO_SKIP_QT_CHECK", raising=False)
    monkeypatch.setattr(qtcheck, "probe", lambda calls=200: qtcheck.ProbeResult("6.12.0", "3.11.7", 200, -600, -400, 0))
    assert studio_main.main(["--data-dir", str(tmp_path / "data")]) == 3
    err = capsys.readouterr().err
    assert "PySide6 6.12.0 on Python 3.11.7" in err and "pyside6>=6.6,<6.12" in err
    assert not (tmp_path / "data").exists()  # refused before the studio touched its data folder
    assert studio_main.main(["--check-qt"]) == 1


def test_probe_flags_leaks_not_noise():
    from app.qtcheck import ProbeResult

    assert ProbeResult("6.12.0", "3.11.7", 200, -599, -400, 0).affected
    assert not ProbeResult("6.11.3", "3.11.7", 200, -8, 0, 0).affected
    assert not ProbeResult("6.11.3", "3.11.7", 200, 508, 500, 2).affected

"""Fixtures for the studio's GUI tests (pytest-qt, offscreen)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[2]
FAKE_ENGINE_DIR = ROOT / "tests" / "serve"


@pytest.fixture(scope="session")
def tiny_model(tiny_t2v) -> Path:
    """A tiny random-weight Wan T2V folder (tests/conftest.py; the real engine runs it on the CPU in well
    under a second)."""
    return Path(tiny_t2v)


@pytest.fixture
def make_studio(tmp_path, qtbot):
    """``make_studio(engine="real"|"fake"|None, data_dir=None, **kw)`` -> Studio; closed at teardown."""
    from app.services.studio import Studio

    made = []

    def make(engine: str | None = "real", data_dir: Path | None = None, **kw):
        args: list[str] = []
        env: dict[str, str] = {}
        if engine == "fake":
            args = ["--engine", "fake_engine", "--test-hooks"]
            env = {"PYTHONPATH": str(FAKE_ENGINE_DIR), **kw.pop("env", {})}
        elif engine == "real":
            args = ["--test-hooks"]
        studio = Studio(data_dir or tmp_path / "data", worker_args=args, worker_env=env,
                        worker_enabled=engine is not None, heartbeat_interval=kw.pop("heartbeat_interval", 0.25),
                        **kw)
        made.append(studio)
        return studio

    yield make
    for s in made:
        try:
            s.close(timeout=5)
        except Exception:
            pass


@pytest.fixture
def make_window(qtbot):
    from app.window import MainWindow

    windows = []

    def make(studio):
        w = MainWindow(studio)
        qtbot.addWidget(w)
        w.resize(1280, 820)
        w.show()
        windows.append(w)
        return w

    yield make
    for w in windows:
        if not w._closed:
            w.close()



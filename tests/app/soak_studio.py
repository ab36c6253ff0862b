"""Soak the studio in one process, then let the interpreter finalize (run as a subprocess by
tests/app/test_qt_safety.py, so an abort fails a test instead of killing pytest).

    python tests/app/soak_studio.py DATA_DIR MODEL_DIR FAKE_ENGINE_DIR [--windows N] [--jobs N] [--frames N]

Each of ``--windows`` cycles opens the real main window on a studio whose inference process is the
torch-free fake engine, generates ``--jobs`` videos through the Generate panel (progress and live previews
arrive from the engine), plays the last video looping in the real player for ``--frames`` frames (its
timer at 1 ms) while the preview player animates too, and closes the window (the inference process stops).
The last window goes through the studio's own shutdown (``app.main.shutdown``).  It prints one JSON line
with the reference-count changes of None/True/False, and exits through normal interpreter finalization.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def wait(app, pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"soak: timed out after {timeout} s waiting for {what}")
        app.processEvents()
        time.sleep(0.001)


def cycle(app, args, index: int):
    import numpy as np

    from app.services.studio import Studio
    from app.window import MainWindow

    studio = Studio(args.data, worker_args=["--engine", "fake_engine"], heartbeat_interval=0.25,
                    worker_env={"PYTHONPATH": args.fake_engine_dir, "FAKE_ENGINE_STEP_DELAY": "0.02"})
    window = MainWindow(studio)
    window.resize(1280, 820)
    window.show()
    g = window.generate
    g.set_model(args.model)
    wait(app, g.generate_button.isEnabled, 60, "the model's defaults")
    done = []
    studio.runner.job_state.connect(lambda job_id, state: done.append(job_id) if state in ("done", "failed") else None)
    for j in range(args.jobs):
        g.prompt.setPlainText(f"soak window {index} job {j}")
        job_id = g.generate()
        if job_id is None:
            raise SystemExit(f"soak: the Generate panel refused the job: {g.rows}")
        wait(app, lambda job_id=job_id: job_id in done, 120, f"job {job_id}")
        state = studio.db.get(job_id).state
        if state != "done":
            raise SystemExit(f"soak: job {job_id} ended {state}: {studio.db.get(job_id).error}")
    # The finished video loops in the real player; the preview player animates beside it.
    player = g.player
    wait(app, lambda: len(player.frames) > 1, 60, "the video to load")
    player._timer.setInterval(1)
    g.preview.set_frames(np.zeros((5, 32, 48, 3), np.uint8), 1, 2, 8)
    g.preview._timer.setInterval(1)
    g.preview._timer.start()
    ticks = [0]
    player._timer.timeout.connect(lambda: ticks.__setitem__(0, ticks[0] + 1))
    player.play()
    wait(app, lambda: ticks[0] >= args.frames, 600, f"{args.frames} frames")
    return window


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("model")
    p.add_argument("fake_engine_dir")
    p.add_argument("--windows", type=int, default=3)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--frames", type=int, default=3000)
    args = p.parse_args()

    from app.main import create_app, shutdown

    app = create_app()
    before = sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)
    window = None
    for i in range(args.windows):
        window = cycle(app, args, i)
        if i < args.windows - 1:
            window.close()
            app.processEvents()
    after = sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)
    shutdown(app, window)
    print(json.dumps({"none": after[0] - before[0], "true": after[1] - before[1], "false": after[2] - before[2],
                      "windows": args.windows, "jobs": args.jobs, "frames": args.frames}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Hidden test hook: drive the real studio window through one generation, then close it.

``FASTVIDEO_STUDIO_AUTODRIVE='{"prompt": ..., "seed": 7, "screenshot": "shot.png", "report": "r.json"}'``
makes ``fastvideo-studio`` (the real entry point, on whatever Qt platform it runs: xcb under Xvfb in
``tests/app/test_xcb_launch.py``), once its window is shown, wait for the model's defaults, type the
prompt, press Generate, wait for the job to finish and the video to load in the player, save a
screenshot of the window, write a JSON report (with the menu titles and the devices the GPUs row shows)
and quit through File → Quit (the studio then exits as if the user had closed it).  Nothing happens without the variable.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

ENV = "FASTVIDEO_STUDIO_AUTODRIVE"


def requested() -> bool:
    return bool(os.environ.get(ENV))


def install(window) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QGuiApplication

    spec = json.loads(os.environ[ENV])
    g, studio = window.generate, window.studio
    deadline = time.monotonic() + float(spec.get("timeout", 240))
    state: dict = {"phase": "model", "job_id": None, "since": time.monotonic()}
    report: dict = {"platform": QGuiApplication.platformName(), "phases": []}

    def finish(error: str | None = None) -> None:
        timer.stop()
        report["error"] = error
        report["menus"] = [a.text().replace("&", "") for a in window.menuBar().actions()]
        report["devices"] = g.gpus_hint.text()
        shot = spec.get("screenshot")
        if shot:
            Path(shot).parent.mkdir(parents=True, exist_ok=True)
            report["screenshot_saved"] = bool(window.grab().save(str(shot), "PNG"))
        if spec.get("report"):
            Path(spec["report"]).write_text(json.dumps(report, indent=2) + "\n")
        quit_action = getattr(window, "actions_by_name", {}).get("Quit")
        if quit_action is not None:
            quit_action.trigger()  # File → Quit (Ctrl+Q), as a user closes it
        else:
            window.close()

    def tick() -> None:
        try:
            step()
        except Exception as exc:  # report, never hang the test
            finish(f"{type(exc).__name__}: {exc}")

    def step() -> None:
        if time.monotonic() > deadline:
            finish(f"timed out in phase {state['phase']}")
            return
        phase = state["phase"]
        if phase == "model":
            if g.model_path() in g.model_info and g.generate_button.isEnabled():
                g.prompt.setPlainText(spec.get("prompt", "a red circle moves to the right on a blue background"))
                if spec.get("seed") is not None:
                    g.seed.setValue(int(spec["seed"]))
                g.generate_button.click()  # the real button
                state.update(phase="job", job_id=g.follow_id)
                report["phases"].append("clicked")
                if state["job_id"] is None:
                    finish("Generate did not submit a job")
        elif phase == "job":
            job = studio.db.get(state["job_id"])
            if job is not None and job.is_finished:
                report.update(job_id=job.id, state=job.state, output_path=job.output_path, seed=job.seed,
                              job_error=job.error)
                report["phases"].append("finished")
                if job.state != "done":
                    finish(None)
                    return
                state.update(phase="player", since=time.monotonic())
        elif phase == "player":
            frames = getattr(getattr(g, "player", None), "frames", None)
            if frames or time.monotonic() - state["since"] > 20:
                report["player_frames"] = len(frames or [])
                report["phases"].append("shown")
                finish(None)

    timer = QTimer(window)
    timer.setInterval(100)
    timer.timeout.connect(tick)
    timer.start()

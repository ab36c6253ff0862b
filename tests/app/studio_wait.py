"""Waiting in the studio's GUI tests: the Qt event loop keeps running while a condition is awaited."""

from __future__ import annotations

import time


def wait_until(qtbot, pred, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        qtbot.wait(20)


def small_job(qtbot, studio, generate, prompt: str, timeout: float = 180.0):
    """Queue a small job from the Generate panel as set up (48x48, 5 frames, 2 steps), wait for it to end and
    return it (state asserted ``done``)."""
    generate.prompt.setPlainText(prompt)
    generate.width_spin.setValue(48)
    generate.height_spin.setValue(48)
    generate.frames.setValue(5)
    generate.steps.setValue(2)
    job_id = generate.generate()
    assert job_id is not None
    wait_until(qtbot, lambda: studio.db.get(job_id).state not in ("queued", "running"), timeout, "the job")
    job = studio.db.get(job_id)
    assert job.state == "done", job.error
    return job

"""A first launch of the studio opens on the shipped shapes model, takes its sampling defaults from the
inference process and, with nothing but a prompt typed in, makes a video that shows what the prompt says."""

from __future__ import annotations

import pytest

from fastvideo.builtin import shipped_model

pytestmark = pytest.mark.skipif(shipped_model() is None, reason="no shipped model in resources/models")


def test_first_launch_generates_the_prompt_with_the_default_model(make_studio, make_window, qtbot):
    from fastvideo.training.judge import judge_clip

    studio = make_studio("real")
    win = make_window(studio)
    g = win.generate
    model = str(shipped_model())
    assert g.model_path() == model  # no settings, no recent models: the built-in model
    qtbot.waitUntil(lambda: model in g.model_info, timeout=60000)
    qtbot.waitUntil(lambda: g.width_spin.value() == 128, timeout=5000)  # defaults applied from the worker
    assert (g.width_spin.value(), g.height_spin.value(), g.frames.value()) == (128, 128, 17)
    assert (g.steps.value(), g.guidance.value()) == (20, 3.0)
    g.prompt.setPlainText("a red circle moves to the right on a blue background")
    g.seed.setValue(7)
    job_id = g.generate()
    assert job_id is not None
    qtbot.waitUntil(lambda: studio.db.get(job_id).state not in ("queued", "running"), timeout=120000)
    job = studio.db.get(job_id)
    assert job.state == "done", job.error
    judged = judge_clip(job.output_path)
    assert (judged.colour, judged.direction) == ("red", "right"), judged
    qtbot.waitUntil(lambda: len(g.player.frames) == 17, timeout=20000)  # and it plays in the app

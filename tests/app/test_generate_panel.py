"""The Generate panel's form: inline validation before anything is queued, presets,
seed randomise/lock, restoring settings.  No inference process needed."""

from __future__ import annotations

import numpy as np

from app.panels.generate import resolution_presets
from fastvideo.utils.media import write_video


def test_inline_errors_before_queueing(make_studio, make_window, fake_model, tmp_path):
    studio = make_studio(engine=None)
    win = make_window(studio)
    g = win.generate
    g.set_model(str(tmp_path / "missing-model"))
    assert "No such folder" in g.field_error("model")
    g.set_model(str(fake_model))
    assert g.field_error("model") == ""
    g.prompt.setPlainText("   ")
    g.frames.setValue(80)
    g.set_size(500, 480)
    assert g.res_combo.currentText() == "Custom…"
    assert g.generate() is None
    assert "prompt is empty" in g.field_error("prompt")
    assert "4n+1" in g.field_error("num_frames") and "77 or 81" in g.field_error("num_frames")
    assert "multiple of 16" in g.field_error("resolution")
    assert studio.db.counts()["queued"] == 0  # nothing was queued
    # Image-to-video needs an image; the error sits next to the picker.
    g.task_combo.setCurrentIndex(1)
    assert g.rows["image"].isVisibleTo(g) and not g.rows["video"].isVisibleTo(g)
    g.prompt.setPlainText("a cat")
    g.frames.setValue(81)
    g.set_size(832, 480)
    assert g.generate() is None
    assert "needs an input image" in g.field_error("image")
    assert g.field_error("prompt") == "" and g.field_error("num_frames") == ""
    g.image_picker.set_path(str(tmp_path / "nope.png"))
    assert g.generate() is None and "not found" in g.field_error("image")
    # Editing a field clears its error.
    g.prompt.setPlainText("")
    g.generate()
    g.prompt.setPlainText("x")
    assert g.field_error("prompt") == ""


def test_queue_a_valid_job_and_seed_lock(make_studio, make_window, fake_model):
    studio = make_studio(engine=None)
    studio.db.paused = True  # keep it queued: no worker in this test
    win = make_window(studio)
    g = win.generate
    g.set_model(str(fake_model))
    g.prompt.setPlainText("a lighthouse at dusk")
    g.seed.setValue(1234)
    g.seed_lock.setChecked(True)
    job_id = g.generate()
    assert job_id is not None
    job = studio.db.get(job_id)
    assert job.state == "queued" and job.prompt == "a lighthouse at dusk" and job.params["seed"] == 1234
    assert job.model_path == str(fake_model) and job.params["output_path"] == studio.settings.output_dir
    assert g.seed.value() == 1234  # locked: unchanged
    g.seed_lock.setChecked(False)
    g.generate()
    assert g.seed.value() != 1234 or g.generate() is not None  # unlocked: a new random seed
    assert studio.settings.recent_models[0] == str(fake_model)
    assert "2 waiting" in g.queue_summary.text() or "3 waiting" in g.queue_summary.text()


def test_presets_and_restore(make_studio, make_window, fake_model):
    assert resolution_presets(832, 480) == [("832×480 default", 832, 480), ("480×832 portrait", 480, 832),
                                            ("624×624 square", 624, 624), ("416×240 draft", 416, 240)]
    studio = make_studio(engine=None)
    win = make_window(studio)
    g = win.generate
    g._apply_model_info({"defaults": {"width": 64, "height": 48, "num_frames": 9, "num_inference_steps": 6,
                                      "guidance_scale": 4.0, "fps": 8}, "tasks": ["t2v", "i2v"]}, True)
    assert (g.width_spin.value(), g.height_spin.value()) == (64, 48) and g.frames.value() == 9
    assert not g.task_combo.model().item(2).isEnabled()  # this model has no V2V
    g.res_combo.setCurrentIndex(1)
    assert (g.width_spin.value(), g.height_spin.value()) == (48, 64)
    g.apply_job_settings({"model_path": str(fake_model), "task": "t2v", "num_gpus": 1, "params": {
        "prompt": "restored prompt", "negative_prompt": "blur", "width": 96, "height": 64, "num_frames": 13,
        "num_inference_steps": 7, "guidance_scale": 2.5, "seed": 99}})
    assert g.prompt.toPlainText() == "restored prompt" and g.negative.toPlainText() == "blur"
    assert (g.width_spin.value(), g.height_spin.value(), g.frames.value(), g.steps.value()) == (96, 64, 13, 7)
    assert g.guidance.value() == 2.5 and g.seed.value() == 99 and g.seed_lock.isChecked()
    assert g.model_path() == str(fake_model)


def test_drop_mp4_restores_embedded_settings(make_studio, make_window, fake_model, tmp_path, qtbot):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    frames = np.zeros((5, 48, 64, 3), np.uint8)
    md = {"prompt": "from the file", "seed": 4321, "width": 64, "height": 48, "num_frames": 5,
          "num_inference_steps": 3, "guidance_scale": 1.5, "model": str(fake_model), "task": "t2v"}
    mp4 = write_video(frames, tmp_path / "clip.mp4", fps=8, metadata=md, sidecar=False)
    studio = make_studio(engine=None)
    win = make_window(studio)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(mp4))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    win.show_panel("history")
    win.dropEvent(event)
    qtbot.waitUntil(lambda: win.generate.prompt.toPlainText() == "from the file", timeout=10000)
    g = win.generate
    assert win.current_panel() == "generate"
    assert g.seed.value() == 4321 and g.steps.value() == 3 and g.model_path() == str(fake_model)
    assert "restored" in win.banner.text()
    # A video without settings is reported, not silently ignored.
    plain = write_video(frames, tmp_path / "plain.mp4", fps=8, metadata=None)
    win.restore_from_file(str(plain))
    qtbot.waitUntil(lambda: "no FastVideo settings" in win.banner.text(), timeout=10000)


def test_queue_drag_and_drop_reorders(make_studio, make_window, fake_model):
    from PySide6.QtCore import QModelIndex, Qt

    studio = make_studio(engine=None)
    studio.db.paused = True
    win = make_window(studio)
    ids = [studio.runner.submit(prompt=p, model_path=str(fake_model), params={}) for p in ("a", "b", "c")]
    model = win.queue.model
    mime = model.mimeData([model.index(2, 0)])  # drag "c"
    model.dropMimeData(mime, Qt.DropAction.MoveAction, 0, 0, QModelIndex())  # drop above the first row
    assert [j.prompt for j in model.jobs] == ["c", "a", "b"]
    mime = model.mimeData([model.index(0, 0)])
    model.dropMimeData(mime, Qt.DropAction.MoveAction, -1, -1, QModelIndex())  # onto empty space: the end
    assert [j.id for j in model.jobs] == [ids[0], ids[1], ids[2]]
    win.queue.select_job(ids[2])
    win.queue.top_button.click()
    assert [j.prompt for j in model.jobs] == ["c", "a", "b"]
    win.queue.select_job(ids[2])
    win.queue.down_button.click()
    assert [j.prompt for j in model.jobs] == ["a", "c", "b"]


def test_gpu_count_is_checked_against_the_visible_gpus(make_studio, make_window, fake_model):
    studio = make_studio(engine=None)
    studio.db.paused = True
    win = make_window(studio)
    g = win.generate
    g.set_model(str(fake_model))
    g.prompt.setPlainText("x")
    g.model_info[str(fake_model)] = {"defaults": {}, "tasks": ["t2v"], "gpu_count": 2}
    g.gpus.setValue(4)
    assert g.generate() is None and "Only 2 GPUs are visible" in g.field_error("num_gpus")
    g.gpus.setValue(2)
    job_id = g.generate()
    assert job_id is not None and studio.db.get(job_id).num_gpus == 2


def test_prompt_outside_the_builtin_models_vocabulary_gets_a_note(make_studio, make_window):
    from fastvideo.builtin import shipped_model

    model = shipped_model()
    if model is None:
        import pytest

        pytest.skip("no trained built-in model in this checkout")
    studio = make_studio(engine=None)
    g = make_window(studio).generate
    g.set_model(str(model))
    g.prompt.setPlainText("a cat playing the piano")
    note = g.rows["prompt"].note
    assert not note.isHidden() and "coloured shapes" in note.text()
    g.prompt.setPlainText("a red circle moves to the right on a blue background")
    assert note.isHidden()
    g.prompt.setPlainText("a cat playing the piano")
    g.validate()  # a note is advice: validation never turns it into an error
    assert g.field_error("prompt") == "" and not note.isHidden()

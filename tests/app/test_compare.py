"""Compare (issue 24): 2-4 History results played side by side in sync, with their settings diffed."""

from __future__ import annotations

import numpy as np

from fastvideo.utils.media import write_video


def _done_job(studio, tmp_path, name, frames, fps, seed, steps, loras=None):
    video = np.zeros((frames, 32, 32, 3), np.uint8)
    video[:, :, :, 0] = np.arange(frames, dtype=np.uint8)[:, None, None] * 20  # frame i: red = 20 * i
    path = write_video(video, tmp_path / f"{name}.mp4", fps=fps, metadata=None, lossless=True)
    params = {"seed": seed, "num_inference_steps": steps, "width": 32, "height": 32, "num_frames": frames,
              "fps": fps, "guidance_scale": 3.0}
    if loras:
        params["loras"] = loras
    job = studio.db.add(prompt=f"a {name}", model_path="/models/m", params=params)
    studio.db.start(job)
    studio.db.finish_done(job, {"video_path": str(path), "seed": seed, "generation_time": 1.0})
    return job


def test_compare_in_sync_with_settings_diffed(make_studio, make_window, tmp_path, qtbot):
    from PySide6.QtCore import QItemSelectionModel

    studio = make_studio(engine=None)
    a = _done_job(studio, tmp_path, "circle", 9, 8, 1, 4)
    b = _done_job(studio, tmp_path, "square", 5, 4, 2, 4, loras=[["/l/style.safetensors", 0.5]])
    c = _done_job(studio, tmp_path, "star", 9, 8, 1, 8)
    failed = studio.db.add(prompt="broken", model_path="/models/m", params={})
    studio.db.start(failed)
    studio.db.finish_failed(failed, "boom")
    win = make_window(studio)
    h = win.history
    h.model.set_filter("", ("done", "failed", "cancelled", "interrupted"))
    sm = h.gallery.selectionModel()

    def select(*ids):
        sm.clearSelection()
        for i, job in enumerate(h.model.jobs):
            if job.id in ids:
                sm.select(h.model.index(i), QItemSelectionModel.SelectionFlag.Select)

    select(a)
    assert not h.compare_button.isEnabled() and h.compare() is None
    select(a, failed)
    assert not h.compare_button.isEnabled() and "finished" in h.compare_button.toolTip()
    select(a, b, c)
    assert h.compare_button.isEnabled() and h.compare_button.text() == "Compare (3)"
    view = h.compare()
    qtbot.waitUntil(view.loaded, timeout=20000)
    assert [j.id for j in view.jobs] == sorted([a, b, c], key=lambda j: [x.id for x in h.model.jobs].index(j))
    assert view.is_playing()
    assert abs(view.duration - 5 / 4) < 1e-6  # the longest: 5 frames at 4 fps (the others: 9 at 8 fps)
    # One clock: at 0.5 s the 8 fps videos show frame 4, the 4 fps one frame 2.
    view.stop()
    view.seek(0.5)
    by_id = dict(zip((j.id for j in view.jobs), view.frame_indices()))
    assert by_id == {a: 4, b: 2, c: 4}
    red = view.views[[j.id for j in view.jobs].index(b)].image().pixelColor(16, 16).red()
    assert abs(red - 40) <= 3  # frame 2 of the square's video is on screen
    view.seek(1.2)
    assert dict(zip((j.id for j in view.jobs), view.frame_indices()))[a] == 8  # ended: its last frame
    view.slider.setValue(250)
    assert abs(view.t - 0.25) < 1e-6
    # Settings diffed: what differs is marked; "Only differences" hides the rest.
    assert set(view.differing()) >= {"Prompt", "Seed", "Steps", "Frames", "fps", "LoRAs"}
    assert "Guidance" not in view.differing() and "Model" not in view.differing()
    rows = view.table.rowCount()
    view.only_diff.setChecked(True)
    labels = [view.table.verticalHeaderItem(r).text() for r in range(view.table.rowCount())]
    assert view.table.rowCount() < rows and labels == [n for n in view.differing()]
    lora_row = labels.index("LoRAs")
    assert "style.safetensors × 0.5" in [view.table.item(lora_row, col).text() for col in range(3)]
    assert view.table.item(labels.index("Seed"), 0).font().bold()
    view.crisp_box.setChecked(False)
    assert not any(v.crisp for v in view.views)
    view.play()
    qtbot.wait(300)
    assert view.t > 0
    view.close()
    assert not view.is_playing()

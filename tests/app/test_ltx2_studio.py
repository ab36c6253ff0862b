"""The studio generates a tiny LTX-2 video with sound end to end (real engine, offscreen): the model's own
defaults fill the form (9 frames at 32x32: LTX-2's 8n+1 frames), the job finishes, the MP4 has an AAC track."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def tiny_ltx2(tmp_path_factory):
    from fastvideo.testing.tiny_ltx2 import make_tiny_ltx2

    return make_tiny_ltx2(tmp_path_factory.mktemp("ltx2") / "tiny-ltx2", seed=0)


def test_studio_generates_ltx2_with_audio(make_studio, make_window, tiny_ltx2, qtbot):
    from fastvideo.utils.media import audio_stream, read_video

    studio = make_studio("real")
    win = make_window(studio)
    g = win.generate
    g.set_model(str(tiny_ltx2), apply_defaults=True)
    qtbot.waitUntil(lambda: g.frames.value() == 9, timeout=120000)  # the tiny LTX-2 preset, read from the folder
    g.prompt.setPlainText("a red circle moving right")
    job_id = g.generate()
    assert job_id is not None
    qtbot.waitUntil(lambda: studio.db.get(job_id).state not in ("queued", "running"), timeout=180000)
    job = studio.db.get(job_id)
    assert job.state == "done", job.error
    assert audio_stream(job.output_path) == {"codec": "aac", "sample_rate": 24000, "channels": 2}
    frames, fps = read_video(job.output_path)
    assert frames.shape == (9, 32, 32, 3) and fps == 24

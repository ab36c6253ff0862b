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
    # the result player found the sound: its Sound box shows (enabled where a sound server runs, else saying why)
    player = g.result.player
    qtbot.waitUntil(lambda: player.path == job.output_path and player.audio is not None, timeout=60000)
    assert player.audio["codec"] == "aac" and player.sound_box.isVisibleTo(player)
    assert player.sound_box.isEnabled() == player.sound.available


def test_studio_lists_come_from_the_engine_for_ltx2(make_studio, make_window, tiny_ltx2, tmp_path, qtbot):
    """No Wan-only lists: the Models panel recognises LTX-2's official single file, the inspector offers the
    components its conversion writes, and the Parity panel and the "Loads" check cover every LTX-2 weight
    component (audio_vae, vocoder, connectors too): the registry's and the converter's answers, torch-free."""
    import shutil

    from studio_wait import wait_until

    from fastvideo.conversion import ltx2
    from fastvideo.conversion.official import LTX2_COMPONENTS
    from fastvideo.testing.tiny_ltx2 import make_tiny_ltx2

    assert tuple(ltx2.COMPONENTS) == LTX2_COMPONENTS  # the studio's answer is the converter's
    root = tmp_path / "models"
    make_tiny_ltx2(root / "official_weights" / "LTX-2-tiny", layout="official", seed=0)
    shutil.copytree(tiny_ltx2, root / "converted_weights" / "tiny-ltx2")
    studio = make_studio("real")
    win = make_window(studio)
    models = win.models
    models.set_models_root(root, scan=True)
    wait_until(qtbot, lambda: len(models.entries()) == 2, 60, "scan")
    official = models.entry("LTX-2-tiny")
    assert (official.layout, official.family, official.task) == ("official", "ltx2", "t2v/i2v")
    converted = models.entry("tiny-ltx2")
    assert converted.layout == "Diffusers" and converted.loads, converted.problem
    # the "Loads" check asks the engine about every weight component, LTX-2's own included
    fit = models.model.fit[str(converted.path)]
    wait_until(qtbot, lambda: not fit["waiting"], 120, "fit replies")
    assert fit["state"] == "ok", fit
    # the inspector previews the conversion of each component of the single file
    m = win.mapping
    m.set_model(str(official.path))
    assert [m.component_combo.itemText(i) for i in range(m.component_combo.count())] == list(LTX2_COMPONENTS)
    m.load(str(official.path), "vocoder")
    wait_until(qtbot, lambda: m.inputs is not None or m.load_error, 120, "inspect reply")
    assert not m.load_error and m.official and m.report.ok, m.load_error
    # the converted folder: every weight component, DiT first, and (Parity) the scheduler
    m.set_model(str(converted.path))
    comps = [m.component_combo.itemText(i) for i in range(m.component_combo.count())]
    assert comps[0] == "transformer" and set(comps) == {"transformer", "vae", "audio_vae", "vocoder", "connectors",
                                                       "text_encoder"}
    p = win.parity
    p.set_model(str(converted.path), "audio_vae")
    listed = [p.component_combo.itemText(i) for i in range(p.component_combo.count())]
    assert set(listed) == set(comps) | {"scheduler"} and p.component_combo.currentText() == "audio_vae"

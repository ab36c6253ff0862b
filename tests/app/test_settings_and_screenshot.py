"""The Settings panel (inline errors, persistence) and ``--screenshot``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_settings_panel_validates_and_persists(make_studio, make_window, tmp_path, fake_model):
    studio = make_studio(engine=None)
    win = make_window(studio)
    sp = win.settings
    a_file = tmp_path / "not-a-folder.txt"
    a_file.write_text("x")
    sp.output_dir.setText(str(a_file / "sub"))
    sp.default_model.setEditText(str(tmp_path / "missing"))
    assert not sp.save()
    assert "not a folder" in sp.rows["output_dir"].error.text()
    assert "No such folder" in sp.rows["default_model"].error.text()
    assert not studio.paths.settings_file.exists() or json.loads(studio.paths.settings_file.read_text()).get(
        "default_model") != str(tmp_path / "missing")
    sp.output_dir.setText(str(tmp_path / "videos"))
    sp.default_model.setEditText(str(fake_model))
    sp.num_gpus.setValue(2)
    sp.attention.setCurrentIndex(sp.attention.findData("TORCH_SDPA"))
    sp.vae_tiling.setChecked(True)
    sp.te_offload.setChecked(True)
    sp.preview.setChecked(False)
    assert sp.save()
    saved = json.loads(studio.paths.settings_file.read_text())
    assert saved["output_dir"] == str(tmp_path / "videos") and saved["num_gpus"] == 2 and saved["preview"] is False
    assert studio.settings.pipeline_options()["attention_backend"] == "TORCH_SDPA"
    assert win.generate.gpus.value() == 2
    # While this studio runs, a second one on the same folder is refused (it would mark our jobs interrupted).
    from app.services.studio import StudioBusyError

    with pytest.raises(StudioBusyError, match="another FastVideo Studio"):
        make_studio(engine=None, data_dir=studio.paths.data_dir)
    # After closing, a new studio on the same folder reads the settings back.
    win.close()
    again = make_studio(engine=None, data_dir=studio.paths.data_dir)
    assert again.settings.vae_tiling and again.settings.text_encoder_cpu_offload
    assert again.settings.default_model == str(fake_model)


def test_screenshot_cli(tmp_path):
    out = tmp_path / "shot.png"
    env = {"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "app.main", "--data-dir", str(tmp_path / "data"), "--screenshot",
                           str(out), "--panel", "queue", "--size", "1024x700"], capture_output=True, text=True,
                          env=env, cwd=str(ROOT), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PySide6.QtGui import QImage

    img = QImage(str(out))
    # never narrower than the layout allows (1131 px with the player's whole control row unclipped), and that
    # still fits a 1280-pixel-wide laptop screen with room for the window frame
    assert img.height() == 700 and 1024 <= img.width() <= 1160
    bad = subprocess.run([sys.executable, "-m", "app.main", "--data-dir", str(tmp_path / "data"), "--screenshot",
                          str(tmp_path / "x.png"), "--panel", "nope"], capture_output=True, text=True, env=env,
                         cwd=str(ROOT), timeout=60)
    assert bad.returncode == 2 and "unknown panel 'nope'" in bad.stderr and not (tmp_path / "x.png").exists()


def test_choosing_gpus_reaches_the_inference_process(make_studio, make_window, tiny_model, qtbot):
    """Settings → Use GPUs: checked (format, and against what the engine sees), saved, and given to a restarted
    inference process as CUDA_VISIBLE_DEVICES; cleared again, the variable is taken out."""
    from studio_wait import wait_until

    from app.services.settings import parse_gpu_ids

    assert parse_gpu_ids(" 0, 2 ") == "0,2" and parse_gpu_ids("") == "" and parse_gpu_ids("1 3") == "1,3"
    for bad, why in (("a,1", "whole numbers"), ("-1", "whole numbers"), ("0,0", "once")):
        with pytest.raises(ValueError, match=why):
            parse_gpu_ids(bad)
    studio = make_studio("real")
    win = make_window(studio)
    runner, sp = studio.runner, win.settings
    runner.describe(str(tiny_model))
    wait_until(qtbot, lambda: runner.gpu_count is not None, 120, "the engine's device report")
    assert runner.gpu_count == 0  # this machine: CPU only
    first_pid = studio.client.pid()
    sp.gpu_ids.setText("0,x")
    assert not sp.save() and "whole numbers" in sp.rows["gpu_ids"].error.text()
    sp.gpu_ids.setText("1")
    assert not sp.save() and "No GPU 1" in sp.rows["gpu_ids"].error.text()
    assert "no GPU (CPU only)" in sp.rows["gpu_ids"].error.text()
    # a choice the engine cannot check yet (told nothing) is saved and applied
    runner.gpu_count = None
    sp.gpu_ids.setText("1, 0")
    assert sp.save() and studio.settings.gpu_ids == "1,0"
    assert studio.client.extra_env["CUDA_VISIBLE_DEVICES"] == "1,0"
    wait_until(qtbot, lambda: not studio.client.is_running(), 30, "the idle engine to stop")
    runner.describe(str(tiny_model))
    wait_until(qtbot, lambda: studio.client.pid() not in (None, first_pid), 60, "a new inference process")
    environ = open(f"/proc/{studio.client.pid()}/environ", "rb").read().split(b"\0")
    assert b"CUDA_VISIBLE_DEVICES=1,0" in environ
    sp.gpu_ids.setText("")
    assert sp.save() and "CUDA_VISIBLE_DEVICES" not in studio.client.extra_env


def test_memory_mode_and_dit_weights_reach_the_job(make_studio, make_window, tiny_model, tmp_path, qtbot):
    """Settings → Memory mode / DiT weights: the engine's modes, checked (a GGUF must be a .gguf file that
    exists), saved, sent with the next job; the job's result says which mode ran and that it was asked for."""
    from studio_wait import small_job, wait_until

    from app.panels.settings import MEMORY_MODE_TEXT
    from fastvideo.configs.pipelines.base import MEMORY_MODES

    assert tuple(MEMORY_MODE_TEXT) == MEMORY_MODES
    studio = make_studio("real")
    win = make_window(studio)
    sp = win.settings
    assert sp.memory_mode.currentData() == "auto" and sp.weights.currentData() == "bf16"
    assert not sp.gguf_path.isVisibleTo(sp)
    sp.weights.setCurrentIndex(sp.weights.findData("gguf"))
    assert sp.gguf_path.isVisibleTo(sp)
    sp.gguf_path.setText(str(tmp_path / "missing.gguf"))
    assert not sp.save() and "No such file" in sp.rows["weight_storage"].error.text()
    sp.gguf_path.setText(str(tmp_path / "model.safetensors"))
    assert not sp.save() and ".gguf" in sp.rows["weight_storage"].error.text()
    sp.weights.setCurrentIndex(sp.weights.findData("fp8"))
    sp.memory_mode.setCurrentIndex(sp.memory_mode.findData("block_stream"))
    assert sp.save()
    opts = studio.settings.pipeline_options()
    assert opts["memory_mode"] == "block_stream" and opts["weight_storage"] == "fp8"
    sp.weights.setCurrentIndex(sp.weights.findData("bf16"))
    sp.memory_mode.setCurrentIndex(sp.memory_mode.findData("model_offload"))
    assert sp.save() and "weight_storage" not in studio.settings.pipeline_options()
    g = win.generate
    g.set_model(str(tiny_model), apply_defaults=True)
    wait_until(qtbot, lambda: g.frames.value() > 1, 120, "the model's defaults")
    job = small_job(qtbot, studio, g, "a red circle moves to the right")
    assert job.result["memory_mode"] == "model_offload" and job.result["memory_plan"]["requested"] == "model_offload"
    assert job.pipeline_options["memory_mode"] == "model_offload"

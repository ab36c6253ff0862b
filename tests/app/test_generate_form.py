"""The Generate form model without widgets (app.panels.generate_form): the model's defaults, validation,
the job spec and restoring settings.  Plain pytest: no QApplication, no PySide6."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.panels.generate_form import (
    FALLBACK_DEFAULTS,
    GENERAL,
    SEED_MAX,
    GenerateForm,
    error_row,
    format_timings,
    model_path_problem,
    resolution_presets,
    settings_from_metadata,
)

INFO = {"defaults": {"width": 64, "height": 48, "num_frames": 9, "num_inference_steps": 6, "guidance_scale": 4.0,
                     "fps": 8, "negative_prompt": "blurry"}, "tasks": ["t2v", "i2v"], "gpu_count": 2}


def valid_form(model: str) -> GenerateForm:
    f = GenerateForm(model=model, prompt="  a red fox  ", seed=7)
    f.apply_model_info(INFO, apply_defaults=True)
    return f


def test_module_imports_no_qt():
    code = ("import sys, app.panels.generate_form; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'torch')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_defaults_merge_tasks_presets_and_hints():
    f = GenerateForm(task="v2v")
    assert f.defaults == FALLBACK_DEFAULTS and f.task_allowed("v2v")
    f.apply_model_info(INFO, apply_defaults=True)
    assert (f.width, f.height, f.num_frames, f.steps, f.guidance) == (64, 48, 9, 6, 4.0)
    assert f.defaults["seed"] == FALLBACK_DEFAULTS["seed"] and f.defaults["fps"] == 8  # merged over the fallback
    assert f.task == "t2v" and not f.task_allowed("v2v")  # the model has no V2V: its first task instead
    assert f.negative_prompt == "blurry"  # an empty negative prompt takes the model's
    assert f.presets() == resolution_presets(64, 48)
    assert f.frames_hint() == "≈ 1.1 s at 8 fps"
    assert f.model_summary("/models/tiny") == "tiny: text-to-video, image-to-video · default 64×48, 9 frames, " \
                                              "6 steps, 8 fps"
    assert GenerateForm.gpus_hint(INFO) == "2 GPUs visible"
    assert GenerateForm.gpus_hint({"gpu_count": 0}) == "CPU only: no GPU visible"
    assert GenerateForm.gpus_hint(None) == ""
    # Without apply_defaults only the defaults and tasks change; the values stay.
    f.negative_prompt, f.width = "mine", 128
    f.apply_model_info({"defaults": {"width": 256, "negative_prompt": "other"}}, apply_defaults=False)
    assert f.width == 128 and f.negative_prompt == "mine" and f.defaults["width"] == 256 and f.tasks == []
    f.apply_model_info({"defaults": {"negative_prompt": "other"}}, apply_defaults=True)
    assert f.negative_prompt == "mine"  # a typed negative prompt is kept
    assert resolution_presets(832, 480)[-1] == ("416×240 draft", 416, 240)
    assert format_timings({"decoding": 10.23, "denoising": 2.6, "tiny": 0.01, "x": "n/a"}) == \
        "decoding 10.2 s, denoising 2.6 s"


def test_model_status_and_describe_bookkeeping(fake_model, tmp_path):
    f = GenerateForm()
    assert f.model_status("") == ("empty", None)
    kind, msg = f.model_status(str(tmp_path / "missing"))
    assert kind == "problem" and "No such folder" in msg
    (tmp_path / "file.bin").write_text("x")
    assert "is a file" in model_path_problem(str(tmp_path / "file.bin"))
    assert model_path_problem("Wan-AI/Wan2.1-T2V-1.3B-Diffusers") is None  # a repo id
    path = str(fake_model)
    assert f.model_status(path) == ("unknown", None)
    assert f.request_describe(path) and not f.request_describe(path)  # asked once
    f.describe_failed(path, "the inference process exited")  # not the model's fault: not remembered
    assert f.model_status(path) == ("unknown", None) and f.request_describe(path)
    f.describe_failed(path, "no model_index.json")
    assert f.model_status(path) == ("error", "no model_index.json")
    f.described(path, INFO)
    assert f.model_status(path) == ("known", INFO) and path not in f.model_errors


def test_validate_gives_errors_per_row(fake_model, tmp_path):
    f = GenerateForm()
    errors, spec = f.validate()
    assert spec is None and "Choose a model folder" in errors["model"] and "prompt is empty" in errors["prompt"]
    assert "no output folder" in errors[GENERAL]  # no row for it: shown under the form
    f = valid_form(str(tmp_path / "missing"))
    f.num_frames, f.width = 80, 500
    errors, spec = f.validate("/out")
    assert spec is None and set(errors) == {"model", "num_frames", "resolution"}
    assert "No such folder" in errors["model"] and "4n+1" in errors["num_frames"]
    assert "multiple of 16" in errors["resolution"]
    f = valid_form(str(fake_model))
    f.task = "i2v"
    errors, _ = f.validate("/out")
    assert "needs an input image" in errors["image"]
    f.image_path = str(tmp_path / "nope.png")
    assert "not found" in f.validate("/out")[0]["image"]
    # A model that could not be described is an error on the model row.
    f = valid_form(str(fake_model))
    f.model_errors[str(fake_model)] = "not a diffusers folder"
    assert f.validate("/out")[0] == {"model": "not a diffusers folder"}
    # GPUs: checked against what the inference process sees.
    f = valid_form(str(fake_model))
    f.model_info[str(fake_model)] = INFO
    f.num_gpus = 4
    assert f.validate("/out")[0] == {"num_gpus": "Only 2 GPUs are visible to the inference process"}
    f.model_info[str(fake_model)] = {**INFO, "gpu_count": 1}
    assert f.validate("/out")[0]["num_gpus"] == "Only 1 GPU is visible to the inference process"
    f.model_info[str(fake_model)] = {**INFO, "gpu_count": 0}  # no GPU: one job runs on the CPU, never "4 GPUs"
    assert f.validate("/out")[0]["num_gpus"].startswith("No GPU is visible to the inference process")
    f.num_gpus = 1
    assert f.validate("/out")[0] == {}
    assert error_row("height") == "resolution" and error_row("nonsense") == GENERAL and error_row(None) == GENERAL


def test_params_and_job_spec(fake_model, tmp_path):
    f = valid_form(str(fake_model))
    f.guidance = 4.123456
    f.image_path, f.video_path = "/in.png", "/in.mp4"
    p = f.params(output_dir="/out", preview=False)
    assert p == {"prompt": "a red fox", "negative_prompt": "blurry", "width": 64, "height": 48, "num_frames": 9,
                 "num_inference_steps": 6, "guidance_scale": 4.1235, "seed": 7, "fps": 8, "output_path": "/out",
                 "save_video": True, "preview": False}
    f.task = "v2v"
    f.strength = 0.55
    assert f.params()["video_path"] == "/in.mp4" and f.params()["strength"] == 0.55 and "image_path" not in f.params()
    f.task = "i2v"
    f.image_path = str(tmp_path / "in.png")
    (tmp_path / "in.png").write_bytes(b"\x89PNG")
    errors, spec = f.validate("/out", True, {"vae_tiling": True})
    assert errors == {} and spec["prompt"] == "a red fox" and "prompt" not in spec["params"]
    assert spec["model_path"] == str(fake_model) and spec["task"] == "i2v" and spec["num_gpus"] == 1
    assert spec["pipeline_options"] == {"vae_tiling": True} and spec["params"]["image_path"] == str(tmp_path / "in.png")


def test_seed_lock():
    f = GenerateForm(seed=1234, seed_locked=True)
    f.after_submit()
    assert f.seed == 1234
    f.seed_locked = False
    seeds = set()
    for _ in range(5):
        f.after_submit()
        seeds.add(f.seed)
        assert 0 <= f.seed <= SEED_MAX
    assert len(seeds) > 1


def test_restore_job_settings_and_mp4_metadata():
    f = GenerateForm(model="/models/a", prompt="old", negative_prompt="old neg", image_path="/x.png", num_gpus=2)
    f.apply_job_settings({"model_path": "/models/b", "task": "t2v", "num_gpus": 1, "params": {
        "prompt": "restored prompt", "width": 96, "height": 64, "num_frames": 13, "num_inference_steps": 7,
        "guidance_scale": 2.5, "seed": SEED_MAX + 100}})
    assert (f.model, f.task, f.prompt, f.negative_prompt) == ("/models/b", "t2v", "restored prompt", "old neg")
    assert (f.width, f.height, f.num_frames, f.steps, f.guidance, f.num_gpus) == (96, 64, 13, 7, 2.5, 1)
    assert f.seed == 99 and f.seed_locked and f.image_path == "" and f.video_path == ""
    # No task given: guessed from the inputs; no model given: the current one stays.
    f.apply_job_settings({"params": {"video_path": "/in.mp4", "strength": 0.3, "negative_prompt": None}})
    assert f.task == "v2v" and f.model == "/models/b" and f.video_path == "/in.mp4" and f.strength == 0.3
    assert f.negative_prompt == "" and f.width == 96  # sizes only when both are given
    md = {"prompt": "from the file", "seed": 4321, "width": 64, "height": 48, "num_frames": 5,
          "num_inference_steps": 3, "guidance_scale": 1.5, "model": "/models/c", "task": "i2v",
          "image_path": "/in.png", "fastvideo_version": "0.1.0"}
    assert settings_from_metadata(md)["params"].get("fastvideo_version") is None
    f.apply_metadata(md)
    assert (f.model, f.task, f.prompt, f.seed, f.steps, f.image_path) == ("/models/c", "i2v", "from the file", 4321,
                                                                           3, "/in.png")


@pytest.mark.parametrize("task", ["t2v", "x2y"])
def test_unknown_task_in_settings_is_ignored(task):
    f = GenerateForm(task="i2v")
    f.apply_job_settings({"task": task, "params": {}})
    assert f.task == ("t2v" if task == "t2v" else "i2v")

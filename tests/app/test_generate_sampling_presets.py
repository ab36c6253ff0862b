"""Generate panel: few-step sampling presets offered when the model or a LoRA calls for them, and the
step cache field; both reach the job's SamplingParam fields (issue 27)."""

from __future__ import annotations

import json

from app.panels.generate_form import GenerateForm


def _folder(tmp_path, name, class_name):
    d = tmp_path / name
    d.mkdir()
    (d / "model_index.json").write_text(json.dumps({"_class_name": class_name}))
    return d


def test_panel_offers_the_models_preset_and_sends_it(make_studio, make_window, tmp_path):
    studio = make_studio(engine=None)
    studio.db.paused = True  # keep it queued: no worker in this test
    g = make_window(studio).generate
    plain = _folder(tmp_path, "wan", "WanPipeline")
    g.set_model(str(plain))
    assert not g.preset_combo.isVisibleTo(g) and g.rows["speed"].note.isHidden()
    fastwan = _folder(tmp_path, "FastWan", "WanDMDPipeline")
    g.set_model(str(fastwan))
    assert g.preset_combo.isVisibleTo(g) and g.preset_combo.itemData(1) == "fastwan-dmd-3step"
    assert "few-step" in g.rows["speed"].note.text()
    g.preset_combo.setCurrentIndex(1)
    g.preset_combo.activated.emit(1)
    assert (g.steps.value(), g.guidance.value()) == (3, 1.0)
    g.step_cache_spin.setValue(0.2)
    g.prompt.setPlainText("a fox in the snow")
    job = studio.db.get(g.generate())
    p = job.params
    assert p["sampler"] == "dmd" and p["dmd_denoising_steps"] == [1000, 757, 522]
    assert p["num_inference_steps"] == 3 and p["step_cache_threshold"] == 0.2
    # a step count that does not fit the preset's timesteps: said at the Speed / Steps rows before queueing
    g.steps.setValue(4)
    assert g.generate() is None and "3 steps" in g.field_error("steps")


def test_form_lora_presets_and_restore(tmp_path):
    lora = tmp_path / "Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"
    lora.write_bytes(b"")
    f = GenerateForm(model=str(_folder(tmp_path, "wan", "WanPipeline")), loras=[(str(lora), 1.0)])
    assert [p.name for p in f.offered_presets()] == ["step-distill-4step", "step-distill-8step"]
    f.apply_preset("step-distill-4step")
    f.step_cache = 0.1
    p = f.params()
    assert (p["dmd_warp_timesteps"], p["flow_shift"], p["num_inference_steps"]) == (True, 5.0, 4)
    g = GenerateForm()
    g.apply_job_settings({"params": p, "model_path": f.model})
    assert g.sampling_preset == "step-distill-4step" and g.step_cache == 0.1
    assert "step_cache_threshold" not in GenerateForm(prompt="x").params()  # off by default

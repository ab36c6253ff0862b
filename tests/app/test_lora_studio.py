"""LoRAs in the Generate panel (issue 23): picked from the LoRA folder or by browsing, a strength each; stored
in the job, the history and the MP4, restored by Reuse settings and an MP4 drop; the engine's strict
mismatch shown next to the picker."""

from __future__ import annotations

import dataclasses

import numpy as np

from app.services.loras import job_loras_text, list_lora_files, lora_specs, loras_text, summarize_reports
from fastvideo.utils.media import write_video


def _lora_folder(tmp_path):
    d = tmp_path / "loras"
    (d / "styles").mkdir(parents=True)
    for name in ("speed.safetensors", "styles/ink.safetensors", "notes.txt", ".hidden.safetensors"):
        (d / name).write_bytes(b"x")
    return d


def test_lora_files_and_specs(tmp_path):
    d = _lora_folder(tmp_path)
    assert [p.relative_to(d).as_posix() for p in list_lora_files(d)] == ["speed.safetensors", "styles/ink.safetensors"]
    assert list_lora_files(tmp_path / "nope") == [] and list_lora_files("") == []
    assert lora_specs([["a.safetensors", 0.5], "b.safetensors:2", {"path": "c.pt"}, ["bad"], 7]) == [
        ("a.safetensors", 0.5), ("b.safetensors", 2.0), ("c.pt", 1.0)]
    assert loras_text([["/x/a.safetensors", 0.5]]) == "a.safetensors × 0.5" and loras_text(None) == ""
    big = {"loras": [{"path": "a", "format": "diffusers", "strength": 1.0, "ok": True, "counts": {"applied": 4},
                      "component": "transformer_2", "rows": [{"key": "k"}] * 4}], "seed": 1}
    assert summarize_reports(big) == {"seed": 1, "loras": [{"path": "a", "format": "diffusers", "strength": 1.0,
                                                            "strict": None, "ok": True, "counts": {"applied": 4},
                                                            "component": "transformer_2"}]}
    assert job_loras_text({"loras": [["/x/a.safetensors", 1]], "loras_2": [["/x/b.pt", 0.5]]}) == (
        "a.safetensors × 1 (high noise); b.pt × 0.5 (low noise)")
    assert job_loras_text({"loras": [["/x/a.safetensors", 1]]}) == "a.safetensors × 1"


def test_pick_from_folder_and_browse_job_history_reuse(make_studio, make_window, fake_model, tmp_path, monkeypatch):
    d = _lora_folder(tmp_path)
    studio = make_studio(engine=None)
    studio.db.paused = True
    win = make_window(studio)
    g = win.generate
    pick = g.lora_picker
    assert not pick.folder_combo.isEnabled() and "Settings" in pick.folder_combo.currentText()
    # The LoRA folder comes from Settings (and follows it when it changes).
    win.settings.lora_dir.setText(str(d))
    assert win.settings.save()
    assert studio.settings.lora_dir == str(d)
    assert pick.folder_files() == [str(d / "speed.safetensors"), str(d / "styles" / "ink.safetensors")]
    assert pick.folder_combo.itemText(2) == "styles/ink.safetensors"
    pick._folder_chosen(2)  # choosing an entry adds it; the combo goes back to its prompt
    assert pick.folder_combo.currentIndex() == 0 and [r.path for r in pick.rows] == [str(d / "styles/ink.safetensors")]
    # Browse… adds any file.
    elsewhere = tmp_path / "other.safetensors"
    elsewhere.write_bytes(b"x")
    monkeypatch.setattr("app.widgets.lora_picker.QFileDialog.getOpenFileName", lambda *a, **k: (str(elsewhere), ""))
    pick.browse_button.click()
    pick.rows[1].strength.setValue(0.5)
    pick._folder_chosen(1)
    pick.rows[2].remove_button.click()  # removed again
    assert pick.loras() == [(str(d / "styles/ink.safetensors"), 1.0), (str(elsewhere), 0.5)]
    pick.strict.setChecked(False)
    g.set_model(str(fake_model))
    g.prompt.setPlainText("a lighthouse")
    job_id = g.generate()
    job = studio.db.get(job_id)
    assert job.params["loras"] == [[str(d / "styles/ink.safetensors"), 1.0], [str(elsewhere), 0.5]]
    assert job.params["lora_strict"] is False
    # History shows them; Reuse settings puts them back.
    assert "ink.safetensors × 1, other.safetensors × 0.5" in win.history._details_html(job)
    pick.clear()
    pick.strict.setChecked(True)
    g.apply_job_settings(job.settings())
    assert pick.loras() == [(str(d / "styles/ink.safetensors"), 1.0), (str(elsewhere), 0.5)]
    assert not pick.strict.isChecked()
    # A job without LoRAs restores to none.
    g.apply_job_settings({"model_path": str(fake_model), "params": {"prompt": "plain"}})
    assert pick.loras() == [] and pick.strict.isChecked()
    # A LoRA file that went away: an inline error next to the picker, nothing queued.
    gone = tmp_path / "gone.safetensors"
    pick.add(str(gone), 1.0)
    before = studio.db.counts()["queued"]
    assert g.generate() is None
    assert "LoRA file not found" in g.field_error("loras") and studio.db.counts()["queued"] == before
    pick.rows[0].remove_button.click()
    assert g.field_error("loras") == ""
    # The settings dataclass keeps the folder across a restart.
    assert dataclasses.asdict(studio.settings_store.load())["lora_dir"] == str(d)


def test_mp4_drop_restores_loras(make_studio, make_window, fake_model, tmp_path, qtbot):
    lora = tmp_path / "style.safetensors"
    lora.write_bytes(b"x")
    md = {"prompt": "with a lora", "seed": 5, "width": 64, "height": 48, "num_frames": 5, "num_inference_steps": 3,
          "guidance_scale": 1.5, "model": str(fake_model), "task": "t2v", "loras": [[str(lora), 0.75]],
          "lora_strict": True}
    mp4 = write_video(np.zeros((5, 48, 64, 3), np.uint8), tmp_path / "clip.mp4", fps=8, metadata=md, sidecar=False)
    studio = make_studio(engine=None)
    win = make_window(studio)
    win.restore_from_file(str(mp4))
    qtbot.waitUntil(lambda: win.generate.prompt.toPlainText() == "with a lora", timeout=10000)
    assert win.generate.lora_picker.loras() == [(str(lora), 0.75)]
    assert win.generate.lora_picker.rows[0].name.text() == "style.safetensors"


def _tiny_lora(path, keys_dim: int, bad: bool = False):
    import torch

    from fastvideo.models.loader.checkpoint import save_safetensors

    g = torch.Generator().manual_seed(0)
    sd = {"transformer.blocks.0.attn1.to_q.lora_A.weight": torch.randn(2, keys_dim, generator=g) * 0.01,
          "transformer.blocks.0.attn1.to_q.lora_B.weight": torch.randn(keys_dim, 2, generator=g) * 0.01}
    if bad:  # a key our model has no parameter for (a typo'd module name)
        sd["transformer.blocks.0.attn1.to_qq.lora_A.weight"] = torch.zeros(2, keys_dim)
        sd["transformer.blocks.0.attn1.to_qq.lora_B.weight"] = torch.zeros(keys_dim, 2)
    save_safetensors(path, sd)
    return path


def test_real_engine_applies_a_lora_and_shows_a_strict_mismatch(make_studio, make_window, tiny_model, qtbot,
                                                               tmp_path):
    import json

    from fastvideo.utils.media import read_metadata

    cfg = json.loads((tiny_model / "transformer" / "config.json").read_text())
    dim = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    good = _tiny_lora(tmp_path / "good.safetensors", dim)
    bad = _tiny_lora(tmp_path / "bad.safetensors", dim, bad=True)
    studio = make_studio("real")
    win = make_window(studio)
    g = win.generate
    g.set_model(str(tiny_model), apply_defaults=False)
    g.prompt.setPlainText("a red circle moving right")
    g.set_size(64, 64)
    g.frames.setValue(5)
    g.steps.setValue(2)
    g.lora_picker.add(str(good), 0.5)
    job_id = g.generate()
    qtbot.waitUntil(lambda: studio.db.get(job_id).state not in ("queued", "running"), timeout=120000)
    job = studio.db.get(job_id)
    assert job.state == "done", job.error
    assert job.result["loras"][0]["counts"] == {"applied": 2} and "rows" not in job.result["loras"][0]
    assert read_metadata(job.output_path)["loras"] == [[str(good), 0.5]]
    # Strict: a key that maps to nothing fails the job before any work; the message sits at the picker.
    g.lora_picker.clear()
    g.lora_picker.add(str(bad), 1.0)
    job_id = g.generate()
    qtbot.waitUntil(lambda: studio.db.get(job_id).state not in ("queued", "running"), timeout=120000)
    job = studio.db.get(job_id)
    assert job.state == "failed" and job.error_field == "loras"
    text = g.field_error("loras")
    assert "blocks.0.attn1.to_qq" in text and "did you mean" in text and "strict" in text
    assert g.rows["loras"].error.isVisible()

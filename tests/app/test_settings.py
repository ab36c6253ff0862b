from __future__ import annotations

import json

from app.services.paths import resolve_paths
from app.services.settings import Settings, SettingsStore


def test_round_trip_atomic_and_tolerant(tmp_path):
    store = SettingsStore(tmp_path / "cfg" / "settings.json", tmp_path / "out")
    s = store.load()
    assert s.output_dir == str(tmp_path / "out") and s.preview is True
    s.num_gpus, s.attention_backend, s.vae_tiling, s.preview = 2, "TORCH_SDPA", True, False
    s.remember_model("/m/a")
    s.remember_model("/m/b")
    s.remember_model("/m/a")
    store.save(s)
    assert not list((tmp_path / "cfg").glob("*.tmp"))
    again = SettingsStore(store.path, tmp_path / "out").load()
    assert again == s and again.recent_models == ["/m/a", "/m/b"]
    assert again.pipeline_options() == {"vae_tiling": True, "text_encoder_cpu_offload": False,
                                        "dit_cpu_offload": False, "vae_cpu_offload": False,
                                        "attention_backend": "TORCH_SDPA"}
    # Wrong types and unknown keys are ignored, a broken file falls back to defaults with a note.
    store.path.write_text(json.dumps({"num_gpus": "two", "preview": 0, "attention_backend": "NOPE", "x": 1}))
    s2 = store.load()
    assert s2.num_gpus == 1 and s2.preview is True and s2.attention_backend == "auto"
    store.path.write_text("{broken")
    bad = SettingsStore(store.path, tmp_path / "out")
    assert bad.load() == Settings(output_dir=str(tmp_path / "out")) and "could not read" in bad.error


def test_data_dir_override(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTVIDEO_STUDIO_DATA", str(tmp_path / "env"))
    p = resolve_paths()
    assert p.data_dir == tmp_path / "env" and p.settings_file.parent == tmp_path / "env"
    assert resolve_paths(tmp_path / "flag").jobs_db == tmp_path / "flag" / "jobs.sqlite3"

"""The studio with Wan2.2 models: the model's geometry (from ``describe``) sets the size rules and presets,
official A14B folders are recognised, and the transformer_2 expert is offered where weights are chosen."""

from __future__ import annotations

from app.panels.generate_form import GenerateForm
from app.services.catalogue import describe_local

TI2V_INFO = {"defaults": {"width": 1280, "height": 704, "num_frames": 121, "num_inference_steps": 50,
                          "guidance_scale": 5.0, "fps": 24}, "tasks": ["t2v", "i2v"],
             "geometry": {"temporal_compression": 4, "spatial_compression": 16, "latent_channels": 48,
                          "patch_size": [1, 2, 2]}}


def test_ti2v_geometry_sets_presets_and_size_rules(tmp_path):
    model = str(tmp_path)
    f = GenerateForm(model=model, prompt="a fox", seed=1)
    f.model_info[model] = TI2V_INFO
    f.apply_model_info(TI2V_INFO, apply_defaults=True)
    assert (f.width, f.height, f.num_frames, f.fps) == (1280, 704, 121, 24)
    presets = f.presets()
    assert presets[:2] == [("1280×704 default", 1280, 704), ("704×1280 portrait", 704, 1280)]
    assert all(w % 32 == 0 and h % 32 == 0 for _, w, h in presets)
    f.width = 1264  # a multiple of 16 but not of 32: fine for Wan2.1, not for TI2V
    errors, spec = f.validate(str(tmp_path / "out"))
    assert spec is None and "multiple of 32" in errors["resolution"]
    f.width, f.num_frames = 1280, 120
    errors, _ = f.validate(str(tmp_path / "out"))
    assert "4n+1" in errors["num_frames"] and "117 or 121" in errors["num_frames"]


def test_official_a14b_folder_is_recognised(tmp_path):
    from fastvideo.testing.tiny_wan22 import make_tiny_wan22

    official = make_tiny_wan22(tmp_path / "off", "t2v-moe", layout="official")
    local = describe_local(official)
    assert local["layout"] == "official" and local["config"]["model_type"] == "t2v"
    converted = make_tiny_wan22(tmp_path / "conv", "ti2v")
    assert "transformer_2" not in describe_local(converted)["components"]  # [None, None]: no component
    moe = make_tiny_wan22(tmp_path / "moe", "i2v-moe")
    assert {"transformer", "transformer_2"} <= set(describe_local(moe)["components"])

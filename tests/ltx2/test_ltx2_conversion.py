"""Official LTX-2 single file -> Diffusers layout: the converter's output equals the Diffusers-layout tiny model
made with the same seed, tensor for tensor, and loads; bad sources fail before anything is written."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

import fastvideo.configs.families.ltx2  # noqa: F401  (registers the family)
from fastvideo.conversion.base import ConversionError
from fastvideo.conversion.ltx2 import convert_official_to_diffusers, is_official_ltx2, plan_conversion
from fastvideo.testing.tiny_ltx2 import OFFICIAL_FILE, make_tiny_ltx2

COMPONENTS = ("transformer", "connectors", "vae", "audio_vae", "vocoder")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair")
    return make_tiny_ltx2(root / "off", layout="official", seed=4), make_tiny_ltx2(root / "twin", seed=4)


def test_convert_equals_diffusers_twin(pair, tmp_path):
    off, twin = pair
    assert is_official_ltx2(off) and not is_official_ltx2(twin)
    events = []
    out = convert_official_to_diffusers(off, tmp_path / "conv", progress=events.append)
    assert events[-1]["file"] == "model_index.json" and events[-1]["done"] == events[-1]["total"]
    for comp in COMPONENTS:
        a = load_file(out / comp / "diffusion_pytorch_model.safetensors")
        b = load_file(twin / comp / "diffusion_pytorch_model.safetensors")
        assert sorted(a) == sorted(b), comp
        assert all((a[k] == b[k]).all() for k in a), comp
        assert json.loads((out / comp / "config.json").read_text()) == json.loads((twin / comp / "config.json")
                                                                                  .read_text())
    # The same preview factors, fitted from the same VAE (up to the least-squares solver's last bits).
    import numpy as np

    ours, twins = (json.loads((d / "vae" / "latent_rgb.json").read_text()) for d in (out, twin))
    np.testing.assert_allclose(ours["factors"], twins["factors"], atol=1e-9)
    np.testing.assert_allclose(ours["bias"], twins["bias"], atol=1e-9)
    from fastvideo.configs.registry import resolve_model
    from fastvideo.models.loader.component_loader import load_component

    assert resolve_model(str(out)).family == "ltx2"
    for comp in (*COMPONENTS, "text_encoder", "tokenizer"):
        assert load_component(str(out), comp) is not None


def test_official_names_are_the_releases(pair):
    """A few names exactly as the official file has them (the rules are inverted to make the tiny file)."""
    off, _ = pair
    keys = set(load_file(off / OFFICIAL_FILE))
    for key in ("model.diffusion_model.patchify_proj.weight", "model.diffusion_model.adaln_single.linear.weight",
                "model.diffusion_model.transformer_blocks.0.attn1.q_norm.weight",
                "model.diffusion_model.transformer_blocks.0.scale_shift_table_a2v_ca_video",
                "model.diffusion_model.video_embeddings_connector.transformer_1d_blocks.0.attn1.k_norm.weight",
                "text_embedding_projection.aggregate_embed.weight", "vae.per_channel_statistics.mean-of-means",
                "vae.encoder.down_blocks.1.conv.conv.weight", "vae.decoder.up_blocks.0.res_blocks.0.conv1.conv.weight",
                "audio_vae.per_channel_statistics.std-of-means", "vocoder.conv_pre.weight", "vocoder.ups.0.weight"):
        assert key in keys, key


def test_missing_gemma_and_broken_file_fail_before_writing(pair, tmp_path):
    import shutil

    off, _ = pair
    src = tmp_path / "src"
    shutil.copytree(off, src)
    shutil.rmtree(src / "gemma")
    with pytest.raises(ConversionError, match="gemma-3-12b-it"):
        convert_official_to_diffusers(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    plan_conversion(src, text_encoder_from=off / "gemma")  # an explicit Gemma folder works
    (src / OFFICIAL_FILE).write_bytes((src / OFFICIAL_FILE).read_bytes()[:100])
    with pytest.raises(ConversionError):
        convert_official_to_diffusers(src, tmp_path / "out", text_encoder_from=off / "gemma")
    assert not (tmp_path / "out").exists()


def test_conversion_preview_for_the_inspector(pair):
    """The studio's inspector previews each component of the single file through the converter's rules; turning a
    rule off shows the keys that would no longer map."""
    from fastvideo.conversion.preview import inspect_mapping, is_official_folder, mapping_inputs

    off, twin = pair
    assert is_official_folder(off) and not is_official_folder(twin)
    for comp in COMPONENTS:
        assert inspect_mapping(str(off), comp).ok, comp
    _, _, rules = mapping_inputs(str(off), "transformer")
    without = [(p, r) for p, r in rules if "q_norm" not in p]
    report = inspect_mapping(str(off), "transformer", without)
    bad = {row.status for row in report.rows if row.source and "q_norm" in row.source}
    assert not report.ok and bad == {"unexpected"}

"""Wan2.2 official layouts -> Diffusers layout: TI2V-5B (Wan2.2_VAE.pth), A14B T2V / I2V (high_noise_model/ +
low_noise_model/ shards).  Every size comes from the checkpoint (config.json + tensor shapes, no sidecar file);
the converted folder loads in Diffusers and equals the Diffusers-layout twin made with the same seed, bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fastvideo.conversion.wan import convert_official_to_diffusers
from fastvideo.testing.tiny_wan22 import make_tiny_wan22

diffusers = pytest.importorskip("diffusers")
SEED = 4
PIPELINE = {"ti2v": "WanPipeline", "t2v-moe": "WanPipeline", "i2v-moe": "WanImageToVideoPipeline"}


def _config(folder: Path, sub: str) -> dict:
    data = json.loads((folder / sub).read_text())
    return {k: v for k, v in data.items() if k not in ("_diffusers_version", "transformers_version")}


@pytest.fixture(scope="module", params=["ti2v", "t2v-moe", "i2v-moe"])
def pair(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    official = make_tiny_wan22(root / "official", request.param, layout="official", seed=SEED)
    twin = make_tiny_wan22(root / "twin", request.param, layout="diffusers", seed=SEED)
    return request.param, official, convert_official_to_diffusers(official, root / "converted"), twin


def test_official_layout_has_no_sidecar(pair):
    task, official, _, _ = pair
    names = {p.name for p in official.iterdir()}
    assert "fastvideo_tiny.json" not in names
    if task == "ti2v":
        assert {"config.json", "Wan2.2_VAE.pth"} <= names
    else:
        assert {"high_noise_model", "low_noise_model", "Wan2.1_VAE.pth"} <= names
        assert len(list((official / "low_noise_model").glob("*.safetensors"))) == 2  # sharded, with an index


def test_configs_equal_the_twin(pair):
    task, _, converted, twin = pair
    subs = ["model_index.json", "transformer/config.json", "vae/config.json", "scheduler/scheduler_config.json"]
    if task != "ti2v":
        subs.append("transformer_2/config.json")
    for sub in subs:
        assert _config(converted, sub) == _config(twin, sub), sub
    index = _config(converted, "model_index.json")
    assert index["boundary_ratio"] == {"ti2v": None, "t2v-moe": 0.875, "i2v-moe": 0.9}[task]
    assert bool(index.get("expand_timesteps")) == (task == "ti2v")


def test_loads_in_diffusers_and_matches_bit_for_bit(pair):
    task, _, converted, twin = pair
    cls = getattr(diffusers, PIPELINE[task])
    ours, theirs = cls.from_pretrained(str(converted)), cls.from_pretrained(str(twin))
    for comp in ("transformer", "transformer_2", "vae", "text_encoder"):
        a, b = getattr(ours, comp, None), getattr(theirs, comp, None)
        assert (a is None) == (b is None) == (comp == "transformer_2" and task == "ti2v"), comp
        if a is None:
            continue
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys(), comp
        for k in sa:
            # The official T5 is bf16 (kept); the twin's fp32 T5 rounds to the same bf16 values.
            want = sb[k].to(sa[k].dtype) if comp == "text_encoder" else sb[k]
            assert torch.equal(sa[k], want), (comp, k)


def test_fastvideo_describes_the_converted_folder(pair):
    from fastvideo.configs.registry import resolve_model

    task, _, converted, _ = pair
    info = resolve_model(str(converted))
    assert info.family == "wan2.2"
    assert info.experts == (("transformer",) if task == "ti2v" else ("transformer", "transformer_2"))

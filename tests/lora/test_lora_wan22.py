"""Per-expert LoRAs on a Wan2.2 two-expert model (tiny A14B T2V): ``loras`` merge into ``transformer`` (the
high-noise expert), ``loras_2`` into ``transformer_2`` (the low-noise expert), as Diffusers'
``load_lora_weights(..., load_into_transformer_2=True)``; the video matches Diffusers' WanPipeline, each expert
gets only its own LoRAs, and unloading restores both experts bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fastvideo import InvalidRequest, SamplingParam, VideoGenerator
from fastvideo.models.loader.checkpoint import save_safetensors
from fastvideo.pipelines.forward_batch import ForwardBatch
from fastvideo.testing.tiny_wan22 import make_tiny_wan22

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("peft")

SMALL = dict(height=64, width=96, num_frames=9, num_inference_steps=4, guidance_scale=5.0, guidance_scale_2=2.0,
             negative_prompt="blurry", seed=7)
PROMPT = "a green triangle spins"
MODULES = ("attn1.to_q", "attn1.to_v", "attn2.to_out.0", "ffn.net.0.proj")


def _lora(seed: int, dim: int, ffn: int, layers: int, rank: int = 4):
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for n in range(layers):
        for mod in MODULES:
            out = ffn if mod.startswith("ffn.net.0") else dim
            sd[f"transformer.blocks.{n}.{mod}.lora_A.weight"] = torch.randn(rank, dim, generator=g) * 0.3
            sd[f"transformer.blocks.{n}.{mod}.lora_B.weight"] = torch.randn(out, rank, generator=g) * 0.3
    return sd


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("wan22_lora")
    folder = make_tiny_wan22(root / "a14b", "t2v-moe", seed=3)
    cfg = json.loads((folder / "transformer" / "config.json").read_text())
    dim = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    files = {"high": root / "high.safetensors", "low": root / "low.safetensors"}
    save_safetensors(files["high"], _lora(21, dim, cfg["ffn_dim"], cfg["num_layers"]))
    save_safetensors(files["low"], _lora(22, dim, cfg["ffn_dim"], cfg["num_layers"]))
    return folder, files


@pytest.fixture(scope="module")
def gen(model):
    g = VideoGenerator.from_pretrained(str(model[0]))
    yield g
    g.shutdown()


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before, module):
    return sorted(k for k, v in module.state_dict().items() if not torch.equal(v, before[k]))


def test_per_expert_loras_match_diffusers_and_unload_exactly(model, gen):
    folder, files = model
    pipe = diffusers.WanPipeline.from_pretrained(str(folder), torch_dtype=torch.float32)
    pipe.load_lora_weights(str(files["high"]), adapter_name="high")
    pipe.load_lora_weights(str(files["low"]), adapter_name="low", load_into_transformer_2=True)
    kw = {k: v for k, v in SMALL.items() if k != "seed"}
    ref = pipe(prompt=PROMPT, **kw, generator=torch.Generator("cpu").manual_seed(SMALL["seed"]),
               output_type="np").frames[0]

    runner = gen.executor.runner
    high, low = runner.loaded["transformer"], runner.loaded["transformer_2"]
    high0, low0 = _state(high), _state(low)
    sp = SamplingParam.from_pretrained(str(folder)).update(prompt=PROMPT, **SMALL, save_video=False)
    base = runner.pipeline("t2v").forward(ForwardBatch(sampling=sp, task="t2v")).video_out.numpy()

    # Only the low-noise expert's LoRA: transformer untouched, transformer_2 changed.
    reports = runner.apply_loras(sp.update(loras=[], loras_2=[(str(files["low"]), 1.0)]))
    assert [r.component for r in reports] == ["transformer_2"] and reports[0].ok
    assert _changed(high0, high) == [] and _changed(low0, low)

    reports = runner.apply_loras(sp.update(loras=[(str(files["high"]), 1.0)], loras_2=[(str(files["low"]), 1.0)]))
    assert [r.component for r in reports] == ["transformer", "transformer_2"]
    ours = runner.pipeline("t2v").forward(ForwardBatch(sampling=sp, task="t2v")).video_out.numpy()
    effect = float(np.abs(ours - base).max())
    diff = float(np.abs(ours - ref).max())
    print(f"\nWan2.2 A14B, LoRA per expert: max |ours - diffusers| = {diff:.2e} (LoRA effect {effect:.2e})")
    assert effect > 1e-2 and diff < 1e-3

    runner.apply_loras(sp.update(loras=[], loras_2=[]))
    assert _changed(high0, high) == [] and _changed(low0, low) == []  # both experts back, bit for bit


def test_generate_video_reports_the_expert_and_refuses_loras_2_without_a_second_expert(model, gen, tiny_t2v):
    folder, files = model
    out = gen.generate_video(PROMPT, **SMALL, save_video=False, loras_2=[(files["low"], 0.5)])
    assert [(r["component"], r["strength"], r["ok"]) for r in out["loras"]] == [("transformer_2", 0.5, True)]
    with pytest.raises(InvalidRequest, match="LoRA file not found") as exc:
        gen.generate_video(PROMPT, **SMALL, save_video=False, loras_2=[(folder / "missing.safetensors", 1.0)])
    assert exc.value.field == "loras_2"
    single = VideoGenerator.from_pretrained(str(tiny_t2v))
    try:
        with pytest.raises(InvalidRequest, match="no second expert") as exc:
            single.generate_video(PROMPT, height=64, width=96, num_frames=9, num_inference_steps=1,
                                  save_video=False, loras_2=[(files["low"], 1.0)])
        assert exc.value.field == "loras_2"
    finally:
        single.shutdown()


def test_a_bad_second_expert_lora_leaves_the_first_expert_untouched(model, gen, tmp_path):
    folder, files = model
    runner = gen.executor.runner
    high = runner.loaded["transformer"]
    runner.apply_loras(SamplingParam(loras=[], loras_2=[]))
    high0 = _state(high)
    bad = tmp_path / "bad.safetensors"
    save_safetensors(bad, {"transformer.blocks.9.attn1.to_q.lora_A.weight": torch.zeros(4, 8),
                           "transformer.blocks.9.attn1.to_q.lora_B.weight": torch.zeros(8, 4)})
    with pytest.raises(InvalidRequest) as exc:
        runner.apply_loras(SamplingParam(loras=[(str(files["high"]), 1.0)], loras_2=[(str(bad), 1.0)]))
    assert exc.value.field == "loras_2"
    assert _changed(high0, high) == []


def test_cli_lora_2_argument():
    import argparse

    from fastvideo.entrypoints.cli.generate import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["generate", "--prompt", "p", "--lora", "hi.safetensors", "--lora-2", "lo.pt:0.5"])
    assert args.loras == [("hi.safetensors", 1.0)] and args.loras_2 == [("lo.pt", 0.5)]

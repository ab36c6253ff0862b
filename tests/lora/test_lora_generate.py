"""LoRAs through VideoGenerator: a 2-step tiny generation vs Diffusers' WanPipeline + load_lora_weights, and
switching LoRAs between requests without reading the model from disk."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastvideo import InvalidRequest, SamplingParam, VideoGenerator
from fastvideo.models.loader.checkpoint import save_safetensors
from fastvideo.pipelines.forward_batch import ForwardBatch

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("peft")

SMALL = dict(height=64, width=96, num_frames=9, num_inference_steps=2, guidance_scale=5.0,
             negative_prompt="blurry", seed=7)
PROMPT = "a red circle moves to the right"
MODULES = {"attn1.to_q": "self_attn.q", "attn1.to_v": "self_attn.v", "attn2.to_out.0": "cross_attn.o",
           "ffn.net.0.proj": "ffn.0"}


def _lora(seed: int, rank: int = 4, d: int = 32, ffn: int = 64):
    """Random lora_A / lora_B under the exact Diffusers names (no alpha: scale 1)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for n in range(2):
        for mod in MODULES:
            out = ffn if mod.startswith("ffn.net.0") else d
            sd[f"transformer.blocks.{n}.{mod}.lora_A.weight"] = torch.randn(rank, d, generator=g) * 0.3
            sd[f"transformer.blocks.{n}.{mod}.lora_B.weight"] = torch.randn(out, rank, generator=g) * 0.3
    return sd


def _official(sd):
    """The same kind of LoRA under official names with lora_down / lora_up and alpha = rank (scale 1); not
    kohya: Diffusers' kohya (musubi) reader needs every block's q/k/v/o and ffn."""
    out = {}
    for key, t in sd.items():
        n = key.split(".")[2]
        mod = next(m for m in MODULES if f".{m}.lora_" in key)
        base = f"diffusion_model.blocks.{n}.{MODULES[mod]}"
        if key.endswith("lora_A.weight"):
            out[f"{base}.lora_down.weight"] = t
            out[f"{base}.alpha"] = torch.tensor(float(t.shape[0]))
        else:
            out[f"{base}.lora_up.weight"] = t
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("gen_loras")
    paths = {"a": d / "a.safetensors", "b": d / "b_official.safetensors"}
    save_safetensors(paths["a"], _lora(11))
    save_safetensors(paths["b"], _official(_lora(12)))
    return paths


@pytest.fixture(scope="module")
def gen(tiny_t2v):
    g = VideoGenerator.from_pretrained(str(tiny_t2v))
    yield g
    g.shutdown()


def test_two_step_video_matches_diffusers(tiny_t2v, gen, files):
    loras = [(files["a"], 0.7), (files["b"], 1.0)]
    pipe = diffusers.WanPipeline.from_pretrained(str(tiny_t2v), torch_dtype=torch.float32)
    pipe.load_lora_weights(str(files["a"]), adapter_name="a")
    pipe.load_lora_weights(str(files["b"]), adapter_name="b")
    pipe.set_adapters(["a", "b"], [0.7, 1.0])
    kw = {k: v for k, v in SMALL.items() if k != "seed"}
    ref = pipe(prompt=PROMPT, **kw, generator=torch.Generator("cpu").manual_seed(SMALL["seed"]),
               output_type="np").frames[0]
    pipe.disable_lora()
    base = pipe(prompt=PROMPT, **kw, generator=torch.Generator("cpu").manual_seed(SMALL["seed"]),
                output_type="np").frames[0]
    runner = gen.executor.runner
    sp = SamplingParam.from_pretrained(str(tiny_t2v)).update(prompt=PROMPT, **SMALL, save_video=False,
                                                             loras=[(str(p), s) for p, s in loras])
    runner.apply_loras(sp)
    ours = runner.pipeline("t2v").forward(ForwardBatch(sampling=sp, task="t2v")).video_out.numpy()
    runner.apply_loras(sp.update(loras=[]))
    diff = float(np.abs(ours - ref).max())
    print(f"\n2-step decoded video, a@0.7 + b_official@1.0: max |ours - diffusers| = {diff:.2e} "
          f"(LoRA effect {float(np.abs(ref - base).max()):.2e})")
    assert float(np.abs(ref - base).max()) > 1e-2
    assert diff < 1e-3


def test_switching_loras_never_reads_the_model(tiny_t2v, gen, files, monkeypatch):
    from fastvideo.models.loader import checkpoint, component_loader
    from fastvideo.pipelines import composed

    kw = dict(prompt=PROMPT, **SMALL, save_video=False, return_frames=True)
    plain = gen.generate_video(**kw)["frames"]
    reads: list[str] = []
    model_dir = str(tiny_t2v)

    def spy(module, name):
        real = getattr(module, name)

        def wrapper(*args, **kwargs):
            reads.append(f"{name}({args[0] if args else ''})")
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    for module, name in ((checkpoint, "read_safetensors_header"), (checkpoint, "_torch_load"),
                         (checkpoint, "iter_tensors"), (component_loader, "load_module"),
                         (composed, "load_modules")):
        spy(module, name)
    a = gen.generate_video(**kw, loras=[(files["a"], 1.0)])
    b = gen.generate_video(**kw, loras=[f"{files['b']}:0.5"])
    again = gen.generate_video(**kw)
    model_reads = [r for r in reads if model_dir in r or "load_module" in r]
    assert model_reads == [], model_reads
    assert reads and all("loras" in r for r in reads)  # only the LoRA files were read
    assert a["loras"][0]["format"] == "diffusers" and b["loras"][0]["format"] == "official"
    assert b["loras"][0]["strength"] == 0.5 and b["loras"][0]["ok"] and again["loras"] == []
    assert not np.array_equal(a["frames"], plain) and not np.array_equal(a["frames"], b["frames"])
    assert np.array_equal(again["frames"], plain)  # LoRAs off: the loaded weights, bit for bit


def test_bad_lora_is_an_invalid_request(gen, tmp_path, files):
    with pytest.raises(InvalidRequest, match="LoRA file not found") as exc:
        gen.generate_video(PROMPT, **SMALL, save_video=False, loras=[(tmp_path / "missing.safetensors", 1.0)])
    assert exc.value.field == "loras"
    bad = tmp_path / "bad.safetensors"
    sd = _lora(3)
    sd["transformer.blocks.7.attn1.to_q.lora_A.weight"] = torch.zeros(4, 32)
    sd["transformer.blocks.7.attn1.to_q.lora_B.weight"] = torch.zeros(32, 4)
    save_safetensors(bad, sd)
    with pytest.raises(InvalidRequest, match="blocks 0-1|8 blocks|another model size") as exc:
        gen.generate_video(PROMPT, **SMALL, save_video=False, loras=[(bad, 1.0)])
    assert exc.value.field == "loras"


def test_cli_lora_argument():
    import argparse

    from fastvideo.entrypoints.cli.generate import lora_arg, register

    assert lora_arg("style.safetensors") == ("style.safetensors", 1.0)
    assert lora_arg("C:/loras/x.safetensors:0.5") == ("C:/loras/x.safetensors", 0.5)
    with pytest.raises(argparse.ArgumentTypeError):
        lora_arg("x.safetensors:nan")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["generate", "--prompt", "p", "--lora", "a.safetensors", "--lora", "b.pt:0.25"])
    assert args.loras == [("a.safetensors", 1.0), ("b.pt", 0.25)] and not args.lora_no_strict

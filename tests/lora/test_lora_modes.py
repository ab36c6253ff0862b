"""LoRAs with the ways a model can run: CFG-parallel and sequence-parallel ranks (CPU, gloo), the DiT offloaded
to the CPU between uses, and the compiled DiT (merging changes parameter values in place: nothing recompiles).
Each against the single-process, resident, eager run with the same LoRA; each LoRA visibly changes the video
and switching it off gives the LoRA-free frames back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastvideo import VideoGenerator
from fastvideo.models.loader.checkpoint import save_safetensors

pytestmark = pytest.mark.timeout(300)

ODD = dict(height=48, width=48, num_frames=9, num_inference_steps=2, guidance_scale=5.0, return_frames=True,
           save_video=False)
PROMPT = "a red fox in the snow"


def _max_diff(a, b) -> int:
    assert a.shape == b.shape
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


@pytest.fixture(scope="module")
def lora(tmp_path_factory):
    g = torch.Generator().manual_seed(5)
    sd = {}
    for n in range(2):
        for mod, out in (("attn1.to_q", 32), ("attn1.to_v", 32), ("attn2.to_out.0", 32), ("ffn.net.0.proj", 64)):
            sd[f"transformer.blocks.{n}.{mod}.lora_A.weight"] = torch.randn(4, 32, generator=g) * 0.3
            sd[f"transformer.blocks.{n}.{mod}.lora_B.weight"] = torch.randn(out, 4, generator=g) * 0.3
    path = tmp_path_factory.mktemp("lora_modes") / "style.safetensors"
    save_safetensors(path, sd)
    return [(str(path), 0.8)]


@pytest.fixture(scope="module")
def expected(tiny_t2v, lora):
    """Single process, eager, resident: with and without the LoRA, batched CFG and two batch-1 passes."""
    out = {}
    for batch_cfg in (True, False):
        gen = VideoGenerator.from_pretrained(str(tiny_t2v), batch_cfg=batch_cfg)
        try:
            out[batch_cfg, "lora"] = gen.generate_video(PROMPT, **ODD, loras=lora)["frames"]
            out[batch_cfg, None] = gen.generate_video(PROMPT, **ODD)["frames"]
        finally:
            gen.shutdown()
    assert _max_diff(out[True, "lora"], out[True, None]) > 10  # the LoRA matters
    return out


def _check(gen, lora, want_lora, want_plain, tol=0):
    got = gen.generate_video(PROMPT, **ODD, loras=lora)
    assert [r["ok"] for r in got["loras"]] == [True]
    assert _max_diff(got["frames"], want_lora) <= tol
    assert _max_diff(gen.generate_video(PROMPT, **ODD)["frames"], want_plain) <= tol  # unloaded on every rank


@pytest.mark.parametrize("layout", [dict(num_gpus=2), dict(num_gpus=2, cfg_parallel=False)],
                         ids=["cfg_parallel", "sp2"])
def test_loras_on_ranks(tiny_t2v, lora, expected, layout):
    gen = VideoGenerator.from_pretrained(str(tiny_t2v), **layout)
    try:
        batch_cfg = gen.executor.cfg_degree == 1  # CFG-parallel ranks compute cond and uncond as batch-1 passes
        _check(gen, lora, expected[batch_cfg, "lora"], expected[batch_cfg, None])
    finally:
        gen.shutdown()


def test_loras_with_the_dit_offloaded(tiny_t2v, lora, expected):
    gen = VideoGenerator.from_pretrained(str(tiny_t2v), dit_cpu_offload=True)
    try:
        _check(gen, lora, expected[True, "lora"], expected[True, None])
        assert next(gen.executor.runner.loaded["transformer"].parameters()).device.type == "cpu"
    finally:
        gen.shutdown()


def test_loras_with_the_compiled_dit_do_not_recompile(tiny_t2v, lora, expected):
    from torch._dynamo.utils import counters

    gen = VideoGenerator.from_pretrained(str(tiny_t2v), compile_dit=True)
    try:
        plain = gen.generate_video(PROMPT, **ODD)["frames"]  # compiles, once per block shape
        compiled = dict(counters["stats"])
        assert compiled.get("unique_graphs", 0) > 0  # really compiled
        with_lora = gen.generate_video(PROMPT, **ODD, loras=lora)["frames"]
        again = gen.generate_video(PROMPT, **ODD)["frames"]
        assert dict(counters["stats"]) == compiled, "merging or removing a LoRA recompiled the DiT"
        # Inductor fuses the elementwise work: a level or two of rounding against the eager run.
        assert _max_diff(with_lora, expected[True, "lora"]) <= 2 and _max_diff(plain, expected[True, None]) <= 2
        assert np.array_equal(again, plain)  # unloaded: the compiled run's LoRA-free frames, bit for bit
    finally:
        gen.shutdown()

"""Wan2.2 on 2 CPU ranks (gloo) gives the 1-rank video: TI2V with an image under sequence parallelism (per-token
timesteps sharded with the tokens, an odd token count so the padding path runs) and the two-expert A14B T2V
under CFG parallelism (both experts, the boundary crossed)."""

from __future__ import annotations

import numpy as np
import pytest

from fastvideo import VideoGenerator
from fastvideo.testing.tiny_wan22 import make_tiny_wan22

pytestmark = pytest.mark.timeout(300)

# 96x96, 9 frames on the 16x16x4 VAE -> latent 3 x 6 x 6 -> 27 tokens: odd, SP pads.
TI2V = dict(height=96, width=96, num_frames=9, num_inference_steps=2, guidance_scale=5.0, return_frames=True,
            save_video=False, negative_prompt="")
MOE = dict(TI2V, height=48, width=64, num_inference_steps=4, guidance_scale_2=2.0)


def _frames(folder, num_gpus, **kw):
    gen = VideoGenerator.from_pretrained(str(folder), num_gpus=num_gpus, **kw.pop("load", {}))
    try:
        events = []
        out = gen.generate_video("a red fox in the snow", callback=events.append, **kw)
        return out["frames"].astype(int), [e.get("expert") for e in events if e["type"] == "progress"]
    finally:
        gen.shutdown()


def test_ti2v_image_sp2_matches_one_rank(tmp_path):
    from PIL import Image

    folder = make_tiny_wan22(tmp_path / "ti2v", "ti2v", seed=5)
    image = tmp_path / "first.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(image)
    one, _ = _frames(folder, 1, image_path=str(image), **TI2V)
    two, _ = _frames(folder, 2, image_path=str(image), load={"cfg_parallel": False}, **TI2V)
    assert np.abs(one - two).max() == 0


def test_a14b_cfg2_matches_one_rank(tmp_path):
    folder = make_tiny_wan22(tmp_path / "moe", "t2v-moe", seed=6)
    # CFG-parallel ranks run cond and uncond as batch-1 passes: the 1-rank reference does too.
    one, experts = _frames(folder, 1, load={"batch_cfg": False}, **MOE)
    two, experts2 = _frames(folder, 2, **MOE)
    assert experts == experts2 == ["transformer", "transformer", "transformer_2", "transformer_2"]
    assert np.abs(one - two).max() == 0

"""The shipped built-in model (resources/models/fastvideo-shapes-t2v): size, loading, speed, accuracy."""

import json
import time

import numpy as np
import pytest

from fastvideo.builtin import SHIPPED, resolve_model_arg, shipped_model

pytestmark = pytest.mark.skipif(shipped_model() is None, reason="no shipped model in resources/models")


@pytest.fixture(scope="module")
def generator():
    from fastvideo import VideoGenerator

    gen = VideoGenerator.from_pretrained(str(SHIPPED))
    yield gen
    gen.shutdown()


def test_layout_size_and_precision():
    files = [p for p in SHIPPED.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 25 * 1000 * 1000
    index = json.loads((SHIPPED / "model_index.json").read_text())
    assert index["_class_name"] == "WanPipeline"
    for comp in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (SHIPPED / comp).is_dir()
    from safetensors import safe_open

    for path in SHIPPED.rglob("*.safetensors"):
        with safe_open(str(path), "pt") as f:
            assert all(str(f.get_slice(k).get_dtype()) in ("F16", "BF16") for k in f.keys())
    rgb = json.loads((SHIPPED / "vae" / "latent_rgb.json").read_text())
    assert len(rgb["factors"]) == 16 and len(rgb["bias"]) == 3


def test_default_model_and_sampling_defaults():
    from fastvideo import SamplingParam

    assert resolve_model_arg(None) == str(SHIPPED)
    sp = SamplingParam.from_pretrained(str(SHIPPED))
    assert (sp.height, sp.width, sp.num_frames) == (128, 128, 17)
    assert sp.num_inference_steps <= 30


def test_generates_fast_and_right_on_heldout_prompts(generator):
    """17x128x128 at the default steps in < 30 s on a CPU; a few held-out prompts mostly right."""
    from fastvideo import SamplingParam
    from fastvideo.training.data import heldout_prompts
    from fastvideo.training.judge import judge_clip

    assert generator.config.preview_factors is not None  # loaded from vae/latent_rgb.json
    sp = SamplingParam.from_pretrained(str(SHIPPED)).update(save_video=False, return_frames=True)
    items = heldout_prompts(50, seed=0)[::10]  # 5 of the 50 (one per direction, different colours)
    ok, times = 0, []
    for prompt, label, seed in items:
        t0 = time.time()
        frames = np.asarray(generator.generate_video(prompt, sampling_param=sp, seed=seed)["frames"])
        times.append(time.time() - t0)
        assert frames.shape == (17, 128, 128, 3)
        j = judge_clip(frames)
        ok += j.colour == label.colour and j.direction == label.direction
    assert min(times) < 30.0, times
    assert ok >= 4, f"{ok}/5 held-out prompts right"


def test_loads_in_diffusers():
    diffusers = pytest.importorskip("diffusers")
    import torch

    pipe = diffusers.WanPipeline.from_pretrained(str(SHIPPED), torch_dtype=torch.float32)
    out = pipe("a red circle moves to the right on a blue background", height=128, width=128, num_frames=17,
               num_inference_steps=2, output_type="np")
    assert out.frames[0].shape == (17, 128, 128, 3)

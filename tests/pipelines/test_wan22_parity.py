"""End-to-end parity with Diffusers' Wan2.2 pipelines on tiny models (fp32, same seed): decoded frames within 1e-3.

* TI2V (``expand_timesteps``): ``WanPipeline`` text-only, and ``WanImageToVideoPipeline`` with an image (the
  image latent replaces the first latent frame; its tokens get timestep 0);
* A14B T2V: ``WanPipeline`` with ``transformer`` / ``transformer_2`` switched at ``boundary_ratio`` 0.875, a
  guidance scale per expert;
* A14B I2V: ``WanImageToVideoPipeline`` (36 input channels, no CLIP) at boundary 0.9.

Each test also checks from our progress events that both experts ran (A14B), so the boundary is exercised.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastvideo import SamplingParam, VideoGenerator
from fastvideo.pipelines.forward_batch import ForwardBatch
from fastvideo.testing.tiny_wan22 import make_tiny_wan22

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("accelerate")

COMMON = dict(negative_prompt="blurry, static, low quality", height=64, width=96, num_frames=9,
              num_inference_steps=4, guidance_scale=5.0)
SEED = 7
TOL = 1e-3
MEASURED: dict[str, float] = {}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("wan22")
    return {task: make_tiny_wan22(root / task, task, seed=i) for i, task in enumerate(("ti2v", "t2v-moe", "i2v-moe"))}


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    from PIL import Image

    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    path = tmp_path_factory.mktemp("img") / "first.png"
    img.save(path)
    return img, path


def _ours(folder, task, **fields):
    gen = VideoGenerator.from_pretrained(str(folder))
    try:
        sp = SamplingParam.from_pretrained(str(folder)).update(**COMMON, seed=SEED, save_video=False, **fields)
        events = []
        batch = gen.executor.runner.pipeline(task).forward(ForwardBatch(sampling=sp, task=task,
                                                                        callback=events.append))
        experts = [e["expert"] for e in events if e["type"] == "progress"]
        return batch.video_out.numpy(), experts
    finally:
        gen.shutdown()


def _check(name, ours, ref):
    assert ours.shape == ref.shape
    err = float(np.abs(ours - ref).max())
    MEASURED[name] = err
    print(f"{name}: max |ours - diffusers| = {err:.2e}")
    assert err < TOL, (name, err)


def _gen():
    return torch.Generator("cpu").manual_seed(SEED)


def test_ti2v_text_only_matches_wan_pipeline(folders):
    pipe = diffusers.WanPipeline.from_pretrained(str(folders["ti2v"]), torch_dtype=torch.float32)
    prompt = "a red circle moves to the right"
    ref = pipe(prompt=prompt, **COMMON, generator=_gen(), output_type="np").frames[0]
    ours, experts = _ours(folders["ti2v"], "t2v", prompt=prompt)
    assert set(experts) == {"transformer"}
    _check("ti2v t2v", ours, ref)


def test_ti2v_with_image_matches_image_to_video_pipeline(folders, image):
    img, path = image
    pipe = diffusers.WanImageToVideoPipeline.from_pretrained(str(folders["ti2v"]), torch_dtype=torch.float32)
    assert pipe.config.expand_timesteps
    prompt = "the square slides up"
    ref = pipe(image=img, prompt=prompt, **COMMON, generator=_gen(), output_type="np").frames[0]
    ours, _ = _ours(folders["ti2v"], "i2v", prompt=prompt, image_path=str(path))
    _check("ti2v i2v", ours, ref)


def test_a14b_t2v_matches_wan_pipeline(folders):
    pipe = diffusers.WanPipeline.from_pretrained(str(folders["t2v-moe"]), torch_dtype=torch.float32)
    prompt = "a green triangle spins"
    ref = pipe(prompt=prompt, **COMMON, guidance_scale_2=2.0, generator=_gen(), output_type="np").frames[0]
    ours, experts = _ours(folders["t2v-moe"], "t2v", prompt=prompt, guidance_scale_2=2.0)
    assert experts == ["transformer", "transformer", "transformer_2", "transformer_2"]
    _check("a14b t2v", ours, ref)


def test_a14b_i2v_matches_image_to_video_pipeline(folders, image):
    img, path = image
    pipe = diffusers.WanImageToVideoPipeline.from_pretrained(str(folders["i2v-moe"]), torch_dtype=torch.float32)
    prompt = "the square slides up"
    ref = pipe(image=img, prompt=prompt, **COMMON, guidance_scale_2=3.5, generator=_gen(), output_type="np").frames[0]
    ours, experts = _ours(folders["i2v-moe"], "i2v", prompt=prompt, image_path=str(path), guidance_scale_2=3.5)
    assert experts[0] == "transformer" and experts[-1] == "transformer_2"
    _check("a14b i2v", ours, ref)

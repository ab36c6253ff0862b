"""End-to-end parity with Diffusers' Wan pipelines on tiny models (fp32, same seed)."""

import numpy as np
import pytest
import torch

from fastvideo import SamplingParam, VideoGenerator
from fastvideo.pipelines.forward_batch import ForwardBatch
from fastvideo.utils.media import write_video

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("accelerate")

COMMON = dict(negative_prompt="blurry, static, low quality", height=64, width=96, num_frames=9,
              num_inference_steps=4, guidance_scale=5.0)
SEED = 7


def _ours(generator, task, **fields):
    sp = SamplingParam.from_pretrained(str(generator.info.path)).update(**COMMON, seed=SEED, save_video=False,
                                                                        **fields)
    runner = generator.executor.runner
    batch = runner.pipeline(task).forward(ForwardBatch(sampling=sp, task=task))
    return batch.video_out.numpy()


def _max_diff(ours, ref):
    assert ours.shape == ref.shape
    return float(np.abs(ours - ref).max())


def test_t2v_matches_diffusers(tiny_t2v, t2v_generator):
    pipe = diffusers.WanPipeline.from_pretrained(str(tiny_t2v), torch_dtype=torch.float32)
    prompt = "a red circle moves to the right on a blue background"
    ref = pipe(prompt=prompt, **COMMON, generator=torch.Generator("cpu").manual_seed(SEED), output_type="np").frames[0]
    ours = _ours(t2v_generator, "t2v", prompt=prompt)
    assert _max_diff(ours, ref) < 1e-3


def test_i2v_matches_diffusers(tiny_i2v, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    image.save(tmp_path / "first.png")
    pipe = diffusers.WanImageToVideoPipeline.from_pretrained(str(tiny_i2v), torch_dtype=torch.float32)
    prompt = "the square slides up"
    ref = pipe(image=image, prompt=prompt, **COMMON, generator=torch.Generator("cpu").manual_seed(SEED),
               output_type="np").frames[0]
    gen = VideoGenerator.from_pretrained(str(tiny_i2v))
    ours = _ours(gen, "i2v", prompt=prompt, image_path=str(tmp_path / "first.png"))
    assert _max_diff(ours, ref) < 1e-3


def test_v2v_matches_diffusers(tiny_t2v, t2v_generator, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (1, 64, 96, 3), dtype=np.uint8)
    frames = np.clip(base + np.arange(9)[:, None, None, None] * 8, 0, 255).astype(np.uint8)
    # Lossless input: the frames Diffusers sees are the frames we decode from the file.
    path = write_video(frames, tmp_path / "in.mp4", fps=16)
    from fastvideo.utils.media import read_video

    decoded, _ = read_video(path)
    pipe = diffusers.WanVideoToVideoPipeline.from_pretrained(str(tiny_t2v), torch_dtype=torch.float32)
    prompt = "a green triangle spins"
    kw = {k: v for k, v in COMMON.items() if k != "num_frames"}
    ref = pipe(video=[Image.fromarray(f) for f in decoded], prompt=prompt, strength=0.7, **kw,
               generator=torch.Generator("cpu").manual_seed(SEED), output_type="np").frames[0]
    ours = _ours(t2v_generator, "v2v", prompt=prompt, video_path=str(path), strength=0.7)
    assert _max_diff(ours, ref) < 1e-3

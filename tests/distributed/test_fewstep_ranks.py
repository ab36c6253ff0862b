"""Step caching and the DMD sampler on 2 CPU ranks (gloo, sequence parallel): the ranks skip the same steps and
give the single-process video (issue 27)."""

from __future__ import annotations

import numpy as np
import pytest

from fastvideo import VideoGenerator

pytestmark = pytest.mark.timeout(240)

KW = dict(height=64, width=64, num_frames=5, guidance_scale=5.0, return_frames=True, save_video=False)


@pytest.fixture(scope="module")
def sp2(tiny_t2v):
    gen = VideoGenerator.from_pretrained(str(tiny_t2v), num_gpus=2, cfg_parallel=False)
    yield gen
    gen.shutdown()


def test_step_cache_and_dmd_on_two_ranks_match_one(sp2, t2v_generator):
    cached = dict(KW, num_inference_steps=8, step_cache_threshold=0.5)
    got = sp2.generate_video("a red fox in the snow", **cached)
    want = t2v_generator.generate_video("a red fox in the snow", **cached)
    assert got["step_cache"]["skipped_steps"] == want["step_cache"]["skipped_steps"] != []
    assert np.array_equal(got["frames"], want["frames"])
    dmd = dict(KW, sampler="dmd", dmd_denoising_steps=[1000, 757, 522], num_inference_steps=3, guidance_scale=1.0)
    got = sp2.generate_video("a red fox in the snow", **dmd)["frames"]
    assert np.array_equal(got, t2v_generator.generate_video("a red fox in the snow", **dmd)["frames"])

"""Step caching: exact at threshold 0, skips steps above it, ranks agree, quality metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastvideo import SamplingParam


def _request(path, **kw):
    return SamplingParam.from_pretrained(str(path)).update(
        prompt="a red circle moves", height=32, width=32, num_frames=5, seed=3, num_inference_steps=12,
        save_video=False, return_frames=True, **kw)


class CountingDiT:
    def __init__(self, dit):
        self.dit, self.calls = dit, 0

    def __enter__(self):
        self.orig = self.dit.forward

        def counted(*a, **k):
            self.calls += 1
            return self.orig(*a, **k)

        self.dit.forward = counted
        return self

    def __exit__(self, *exc):
        del self.dit.forward


def test_threshold_zero_is_bit_identical_and_larger_thresholds_skip(t2v_generator, tiny_t2v):
    dit = t2v_generator.executor.runner.loaded["transformer"]
    with CountingDiT(dit) as count:
        base = t2v_generator.generate_video(sampling_param=_request(tiny_t2v))
    base_calls = count.calls
    with CountingDiT(dit) as count:
        zero = t2v_generator.generate_video(sampling_param=_request(tiny_t2v, step_cache_threshold=0.0))
    assert count.calls == base_calls
    assert np.array_equal(zero["frames"], base["frames"])
    assert zero["step_cache"]["skipped_steps"] == [] and zero["step_cache"]["computed_steps"] == 12

    with CountingDiT(dit) as count:
        cached = t2v_generator.generate_video(sampling_param=_request(tiny_t2v, step_cache_threshold=0.5))
    stats = cached["step_cache"]
    assert stats["skipped_steps"], stats
    assert 0 not in stats["skipped_steps"] and 11 not in stats["skipped_steps"]  # first and last always run
    assert stats["computed_steps"] + len(stats["skipped_steps"]) == 12
    assert count.calls == base_calls * stats["computed_steps"] // 12  # skipped steps cost no DiT call
    assert not np.array_equal(cached["frames"], base["frames"])


def test_cache_decision_rule():
    from fastvideo.pipelines.step_cache import StepCache

    calls = []

    def predictor(x, *args):
        calls.append(float(x.mean()))
        return x * 2

    cache = StepCache(0.15, total_steps=6)
    x = torch.ones(1, 4)
    outs = []
    for i, scale in enumerate([1.0, 1.1, 1.2, 1.3, 2.0, 2.1]):  # steps of 10%: accumulate to the threshold
        outs.append(cache.predict(predictor, 0, i, x * scale))
    # step 0 runs (warm-up); 1 (0.10 < 0.15) skipped; 2 (0.10 + 0.09 >= 0.15) runs; 3 skipped; 4 (big jump) runs;
    # 5 is the last step: always runs
    assert cache.skipped == [1, 3] and cache.computed == 4
    assert torch.equal(outs[1], outs[0]) and torch.equal(outs[3], outs[2])
    # a new expert always runs
    c2 = StepCache(10.0, total_steps=4)
    for i, k in enumerate([0, 0, 1, 1]):
        c2.predict(predictor, k, i, x)
    assert c2.skipped == [1]


def test_psnr_ssim_against_a_direct_implementation():
    from fastvideo.perf.quality import gaussian_window, psnr, ssim

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, a) == pytest.approx(1.0) and psnr(a, a) == float("inf")
    mse = np.mean((a.astype(float) - b) ** 2)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / mse))

    # SSIM (Wang et al. 2004) written out window by window: 11x11 Gaussian (sigma 1.5), K1 0.01, K2 0.03, L 255
    w = gaussian_window()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for f in range(a.shape[0]):
        for c in range(3):
            x, y = a[f, :, :, c].astype(float), b[f, :, :, c].astype(float)
            for i in range(16 - 10):
                for j in range(16 - 10):
                    px, py = x[i:i + 11, j:j + 11], y[i:i + 11, j:j + 11]
                    mx, my = (w * px).sum(), (w * py).sum()
                    vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
                    cxy = (w * (px - mx) * (py - my)).sum()
                    vals.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    assert ssim(a, b) == pytest.approx(float(np.mean(vals)), abs=1e-9)
    assert ssim(a, b) < 0.999


def test_compare_video_files(tmp_path, capsys):
    from fastvideo.perf.quality import main
    from fastvideo.utils.media import write_video

    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    a = write_video(frames, tmp_path / "a.mp4", lossless=True, sidecar=False)
    b = write_video(frames[:, ::-1].copy(), tmp_path / "b.mp4", lossless=True, sidecar=False)
    c = write_video(frames[:2], tmp_path / "c.mp4", lossless=True, sidecar=False)
    assert main([str(a), str(a)]) == 0 and '"ssim": 1.0' in capsys.readouterr().out
    assert main([str(a), str(b)]) == 0 and '"psnr_db": ' in capsys.readouterr().out
    assert main([str(a), str(c)]) == 2 and "error" in capsys.readouterr().out

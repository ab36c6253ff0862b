"""The automatic judge on rendered ground-truth clips (clean, noisy, blurred, via MP4)."""

import numpy as np
import pytest
import torch.nn.functional as F

from fastvideo.training.data import render_clips, sample_labels, to_uint8
from fastvideo.training.judge import judge_clip, nearest_colour


@pytest.fixture(scope="module")
def clips():
    labels = sample_labels(60, 11)
    return labels, render_clips(labels, num_frames=17, size=128)


def _score(labels, frames):
    ok = 0
    for label, f in zip(labels, frames):
        j = judge_clip(f)
        ok += j.colour == label.colour and j.direction == label.direction
    return ok / len(labels)


def test_clean_clips_all_right(clips):
    labels, x = clips
    assert _score(labels, [to_uint8(c).numpy() for c in x]) == 1.0


def test_robust_to_noise_and_blur(clips):
    labels, x = clips
    rng = np.random.default_rng(0)
    noisy = [np.clip(to_uint8(c).numpy() + rng.normal(0, 30, (17, 128, 128, 3)), 0, 255).astype(np.uint8)
             for c in x]
    assert _score(labels, noisy) >= 0.95
    blurred = F.avg_pool3d(x, (1, 7, 7), stride=1, padding=(0, 3, 3), count_include_pad=False)
    assert _score(labels, [to_uint8(c).numpy() for c in blurred]) >= 0.95


def test_reads_mp4(tmp_path, clips):
    pytest.importorskip("imageio_ffmpeg")
    from fastvideo.utils.media import write_video

    labels, x = clips
    path = tmp_path / "clip.mp4"
    write_video(to_uint8(x[0]).numpy(), path, fps=8, sidecar=False)
    j = judge_clip(path)
    assert (j.colour, j.direction) == (labels[0].colour, labels[0].direction)


def test_empty_clip_and_palette():
    j = judge_clip(np.full((17, 64, 64, 3), 128, np.uint8))
    assert j.colour is None and j.direction is None
    assert nearest_colour((250, 10, 10)) == "red" and nearest_colour((10, 10, 240)) == "blue"
    with pytest.raises(ValueError):
        judge_clip(np.zeros((4, 4, 3), np.uint8))

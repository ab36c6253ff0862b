"""MP4 output with an optional AAC audio track (any family), and the H.264 round trip of a conditioning image."""

from __future__ import annotations

import numpy as np
import pytest

from fastvideo.utils.media import MediaError, audio_stream, h264_roundtrip, read_video, write_generation, write_video


def _frames(t=9, h=32, w=32):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (t, h, w, 3), dtype=np.uint8)


def test_mp4_with_stereo_audio(tmp_path):
    sr = 24000
    tt = np.arange(int(sr * 9 / 24)) / sr
    wave = np.stack([np.sin(2 * np.pi * 440 * tt), 0.5 * np.sin(2 * np.pi * 660 * tt)]).astype(np.float32)
    path = write_generation(_frames(), tmp_path, "a cat", fps=24, metadata={"seed": 1}, audio=wave, sample_rate=sr)
    info = audio_stream(path)
    assert info == {"codec": "aac", "sample_rate": sr, "channels": 2}
    frames, fps = read_video(path)
    assert frames.shape == (9, 32, 32, 3) and fps == 24
    assert not list(tmp_path.glob(".*part"))  # no temporary WAV or video left behind


def test_mp4_without_audio_has_no_audio_stream(tmp_path):
    path = write_video(_frames(), tmp_path / "v.mp4", fps=24)
    assert audio_stream(path) is None


@pytest.mark.parametrize("audio, rate, match", [
    (np.zeros((2, 3, 4), np.float32), 24000, "channels, samples"),
    (np.zeros((2, 100), np.float32), None, "sample rate"),
    (np.full((1, 100), np.nan, np.float32), 16000, "NaN"),
])
def test_bad_audio_is_refused_before_writing(tmp_path, audio, rate, match):
    with pytest.raises(MediaError, match=match):
        write_generation(_frames(), tmp_path / "out", "x", audio=audio, sample_rate=rate)
    assert not (tmp_path / "out").exists()


def test_h264_roundtrip_keeps_size_and_changes_pixels():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (33, 30, 3), dtype=np.uint8)
    out = h264_roundtrip(image, 33)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert 0 < np.abs(out.astype(int) - image).mean() < 80

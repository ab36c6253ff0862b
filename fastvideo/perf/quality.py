"""Video quality against a reference video: PSNR and SSIM (numpy, no extra dependency).

Both take uint8 (or float in [0, 255]) frames ``[T, H, W, C]`` of the same shape.  SSIM is Wang et al.
(2004) as in their reference code: an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, dynamic
range 255, statistics over the windows that fit inside the frame ("valid"), averaged over every window,
channel and frame.
"""

from __future__ import annotations

import math

import numpy as np


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"videos differ in shape: {a.shape} vs {b.shape}")
    if a.ndim == 3:
        a, b = a[..., None], b[..., None]
    if a.ndim != 4:
        raise ValueError(f"expected frames [T, H, W, C], got shape {a.shape}")
    return a, b


def psnr(a, b, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over the whole video (inf when identical)."""
    a, b = _pair(a, b)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    return np.outer(g, g)


def _filter_valid(img: np.ndarray, g1: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of ``[N, H, W]`` with the 1-D kernel ``g1`` along H then W."""
    k = len(g1)
    h = sum(g1[i] * img[:, i:img.shape[1] - k + 1 + i, :] for i in range(k))
    return sum(g1[i] * h[:, :, i:h.shape[2] - k + 1 + i] for i in range(k))


def ssim(a, b, data_range: float = 255.0, size: int = 11, sigma: float = 1.5) -> float:
    """Mean structural similarity of two videos (1 when identical)."""
    a, b = _pair(a, b)
    if a.shape[1] < size or a.shape[2] < size:
        raise ValueError(f"frames must be at least {size}x{size} for SSIM, got {a.shape[1]}x{a.shape[2]}")
    x = a.transpose(0, 3, 1, 2).reshape(-1, a.shape[1], a.shape[2])
    y = b.transpose(0, 3, 1, 2).reshape(-1, b.shape[1], b.shape[2])
    g = np.exp(-((np.arange(size) - (size - 1) / 2) ** 2) / (2 * sigma**2))
    g /= g.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = _filter_valid(x, g), _filter_valid(y, g)
    vx = _filter_valid(x * x, g) - mx * mx
    vy = _filter_valid(y * y, g) - my * my
    cxy = _filter_valid(x * y, g) - mx * my
    s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def compare_videos(path_a, path_b) -> dict[str, float]:
    """PSNR and SSIM of two video files (decoded with ffmpeg; same frame count and size needed)."""
    from fastvideo.utils.media import read_video

    a, _ = read_video(path_a)
    b, _ = read_video(path_b)
    if a.shape != b.shape:
        raise ValueError(f"{path_a} is {list(a.shape)} but {path_b} is {list(b.shape)} (frames, height, width, 3)")
    return {"psnr_db": psnr(a, b), "ssim": ssim(a, b), "frames": int(a.shape[0])}


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m fastvideo.perf.quality",
                                description="PSNR and SSIM of a video against a reference video")
    p.add_argument("video")
    p.add_argument("reference")
    args = p.parse_args(argv)
    try:
        print(json.dumps(compare_videos(args.video, args.reference)))
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Image/video similarity metrics (numpy only)."""

from __future__ import annotations

import numpy as np


def _gaussian_kernel(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    k = np.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def _filter(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering over the two spatial axes of ``[..., H, W]``."""
    from numpy.lib.stride_tricks import sliding_window_view

    out = (sliding_window_view(img, len(k), axis=-1) * k).sum(-1)
    return (sliding_window_view(out, len(k), axis=-2) * k).sum(-1)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004, 11x11 Gaussian window, sigma 1.5) of two videos or images.

    Inputs ``[T, H, W, C]`` or ``[H, W, C]``; channels and frames are averaged.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    x = np.moveaxis(a, -1, -3)  # [..., C, H, W]
    y = np.moveaxis(b, -1, -3)
    k = _gaussian_kernel()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = _filter(x, k), _filter(y, k)
    sxx = _filter(x * x, k) - mu_x**2
    syy = _filter(y * y, k) - mu_y**2
    sxy = _filter(x * y, k) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return float(s.mean())

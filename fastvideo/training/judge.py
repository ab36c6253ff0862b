"""An automatic judge for shape clips: dominant shape colour and motion direction.

``judge_clip(frames)`` takes a clip (uint8 ``[T, H, W, 3]``, or a path to a video
file read with :func:`fastvideo.utils.media.read_video`) and returns a
:class:`Judgement` with the shape's colour (nearest colour of
:data:`fastvideo.training.data.COLOURS`) and the direction its centroid moves
(``left``/``right``/``up``/``down``/``still``).

Method (robust to noise, blur and imperfect generations):

1. background colour = per-channel median of a border ring of every frame;
2. per-pixel distance from the background, box-blurred 5x5, thresholded
   (adaptively: at least ``min_diff``, and half of the frame's strongest
   difference) -> the shape mask of each frame;
3. colour = median colour of the mask's most confident pixels over all frames;
4. motion = least-squares line through the mask centroids over time; its
   displacement over the clip, if larger than ``still_fraction`` of the frame
   size, gives the direction along the dominant axis (image y grows downwards).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from fastvideo.training.data import COLOURS


@dataclass
class Judgement:
    colour: str | None
    direction: str | None
    displacement: tuple[float, float]  # (dx, dy) in pixels over the clip
    rgb: tuple[float, float, float] | None  # measured shape colour
    background: tuple[float, float, float]
    coverage: float  # mean fraction of the frame covered by the shape


def _box_blur(x: np.ndarray, k: int) -> np.ndarray:
    """Mean filter over the last two axes (edge padded)."""
    pad = k // 2
    x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(pad, pad), (pad, pad)], mode="edge")
    c = x.cumsum(-1).cumsum(-2)
    c = np.pad(c, [(0, 0)] * (x.ndim - 2) + [(1, 0), (1, 0)])
    return (c[..., k:, k:] - c[..., :-k, k:] - c[..., k:, :-k] + c[..., :-k, :-k]) / (k * k)


def nearest_colour(rgb) -> str:
    rgb = np.asarray(rgb, dtype=np.float64)
    names = list(COLOURS)
    ref = np.array([COLOURS[n] for n in names], dtype=np.float64)
    return names[int(np.argmin(((ref - rgb) ** 2).sum(1)))]


def judge_clip(frames, min_diff: float = 60.0, still_fraction: float = 0.09) -> Judgement:
    if isinstance(frames, (str, os.PathLike)):
        from fastvideo.utils.media import read_video

        frames = read_video(str(frames))
        frames = frames[0] if isinstance(frames, tuple) else frames
    x = np.asarray(frames).astype(np.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected a clip [T, H, W, 3], got shape {x.shape}")
    t, h, w, _ = x.shape
    ring = max(2, min(h, w) // 32)
    border = np.concatenate([x[:, :ring].reshape(-1, 3), x[:, -ring:].reshape(-1, 3),
                             x[:, :, :ring].reshape(-1, 3), x[:, :, -ring:].reshape(-1, 3)])
    bg = np.median(border, axis=0)
    diff = np.sqrt(((x - bg) ** 2).sum(-1))  # [T, H, W]
    diff = _box_blur(diff, 5)
    peak = np.percentile(diff.reshape(t, -1), 99.5, axis=1)  # [T]
    thresh = np.maximum(min_diff, 0.5 * peak)[:, None, None]
    mask = diff > thresh
    areas = mask.reshape(t, -1).sum(1)
    coverage = float(areas.mean() / (h * w))
    min_area = max(4, (h * w) // 2000)
    good = areas >= min_area
    if good.sum() == 0:
        return Judgement(None, None, (0.0, 0.0), None, tuple(bg.tolist()), coverage)
    # Colour: the confident core (strongest differences) of the masks of all frames.
    strong = mask & (diff >= np.percentile(diff[mask], 50))
    rgb = np.median(x[strong], axis=0)
    colour = nearest_colour(rgb)
    # Motion: centroid line fit over frames with a mask.
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    weights = mask.astype(np.float64)
    cx = (weights * xs).reshape(t, -1).sum(1) / np.maximum(areas, 1)
    cy = (weights * ys).reshape(t, -1).sum(1) / np.maximum(areas, 1)
    idx = np.arange(t, dtype=np.float64)[good]
    if good.sum() >= 2:
        span = t - 1
        dx = float(np.polyfit(idx, cx[good], 1)[0] * span)
        dy = float(np.polyfit(idx, cy[good], 1)[0] * span)
    else:
        dx = dy = 0.0
    if max(abs(dx), abs(dy)) < still_fraction * min(h, w):
        direction = "still"
    elif abs(dx) >= abs(dy):
        direction = "right" if dx > 0 else "left"
    else:
        direction = "down" if dy > 0 else "up"
    return Judgement(colour, direction, (dx, dy), tuple(float(v) for v in rgb), tuple(bg.tolist()), coverage)

"""Wan2.2 sampling defaults (official ``wan/configs``: sizes, frames, fps, steps, guidance per expert)."""

from __future__ import annotations

from dataclasses import dataclass

from fastvideo.configs.sample.base import SamplingParam
from fastvideo.configs.sample.wan import WAN_NEGATIVE_PROMPT


@dataclass
class Wan22TI2V5BSamplingParam(SamplingParam):
    """TI2V-5B: 704x1280 (or 1280x704), 121 frames at 24 fps, 50 steps, guidance 5."""

    negative_prompt: str | None = WAN_NEGATIVE_PROMPT
    height: int = 704
    width: int = 1280
    num_frames: int = 121
    fps: int = 24
    num_inference_steps: int = 50
    guidance_scale: float = 5.0


@dataclass
class Wan22T2VA14BSamplingParam(SamplingParam):
    """T2V-A14B: 720x1280, 81 frames at 16 fps, 40 steps; guidance 4 (high-noise expert) / 3 (low-noise)."""

    negative_prompt: str | None = WAN_NEGATIVE_PROMPT
    height: int = 720
    width: int = 1280
    num_frames: int = 81
    fps: int = 16
    num_inference_steps: int = 40
    guidance_scale: float = 4.0
    guidance_scale_2: float | None = 3.0


@dataclass
class Wan22I2VA14BSamplingParam(Wan22T2VA14BSamplingParam):
    """I2V-A14B: as T2V-A14B with guidance 3.5 for both experts."""

    guidance_scale: float = 3.5
    guidance_scale_2: float | None = 3.5


"""LTX-2 sampling defaults (Diffusers' LTX2Pipeline 0.42.1: 121 frames at 24 fps, 512x768, 30 steps).

Guidance follows the reference: in x0 space, text CFG per modality (video ``guidance_scale``, audio
``audio_guidance_scale``), modality-isolation guidance (``modality_scale``: a pass with the audio<->video
attention off) and CFG rescale.  The distilled model runs 8 fixed sigmas without guidance
(:class:`LTX2DistilledSamplingParam`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastvideo.configs.sample.base import SamplingParam


@dataclass
class LTX2T2VSamplingParam(SamplingParam):
    num_frames: int = 121
    height: int = 512
    width: int = 768
    fps: int = 24
    num_inference_steps: int = 30
    guidance_scale: float = 3.0
    audio_guidance_scale: float | None = 7.0  # None: guidance_scale
    modality_scale: float = 3.0
    audio_modality_scale: float | None = 3.0  # None: modality_scale
    guidance_rescale: float = 0.7
    audio_guidance_rescale: float | None = 0.7  # None: guidance_rescale
    # Explicit sigmas (N values, first 1.0): replaces the linspace schedule (the distilled preset's 8 values).
    sigmas: list[float] | None = None
    motion_speed: float = 1.0  # the RoPE time base is fps / motion_speed


@dataclass
class LTX2I2VSamplingParam(LTX2T2VSamplingParam):
    pass


@dataclass
class LTX2DistilledSamplingParam(LTX2T2VSamplingParam):
    num_inference_steps: int = 8
    guidance_scale: float = 1.0
    audio_guidance_scale: float | None = 1.0
    modality_scale: float = 1.0
    audio_modality_scale: float | None = 1.0
    guidance_rescale: float = 0.0
    audio_guidance_rescale: float | None = 0.0
    sigmas: list[float] | None = field(
        default_factory=lambda: [1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875])


@dataclass
class LTX2TinySamplingParam(LTX2T2VSamplingParam):
    num_frames: int = 9
    height: int = 32
    width: int = 32
    num_inference_steps: int = 4

"""Wan2.1 sampling defaults (see shared reference: 81 frames, 16 fps, 50 steps)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastvideo.configs.sample.base import SamplingParam

WAN_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
    "丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，"
    "杂乱的背景，三条腿，背景人很多，倒着走"
)


@dataclass
class WanT2V480PSamplingParam(SamplingParam):
    negative_prompt: str | None = WAN_NEGATIVE_PROMPT
    height: int = 480
    width: int = 832
    num_frames: int = 81
    fps: int = 16
    num_inference_steps: int = 50
    guidance_scale: float = 3.0  # FastVideo's 1.3B preset


@dataclass
class WanT2V720PSamplingParam(WanT2V480PSamplingParam):
    height: int = 720
    width: int = 1280
    guidance_scale: float = 5.0


@dataclass
class WanI2V480PSamplingParam(WanT2V480PSamplingParam):
    num_inference_steps: int = 40
    guidance_scale: float = 5.0


@dataclass
class WanI2V720PSamplingParam(WanI2V480PSamplingParam):
    height: int = 720
    width: int = 1280


@dataclass
class WanV2VSamplingParam(WanT2V480PSamplingParam):
    strength: float = 0.8


@dataclass
class ShapesT2VSamplingParam(SamplingParam):
    """The built-in shapes model (``resources/models/fastvideo-shapes-t2v``): 128x128, 17 frames."""

    negative_prompt: str | None = ""
    height: int = 128
    width: int = 128
    num_frames: int = 17
    fps: int = 8
    num_inference_steps: int = 20
    guidance_scale: float = 3.0  # held-out accuracy 96% at 3.0, 86% at 5.0 (docs/default-model-eval.md)


@dataclass
class TinyT2VSamplingParam(ShapesT2VSamplingParam):
    """The tiny random-weight fallback model (``<models>/builtin/tiny-wan-t2v``): small and quick on a CPU."""

    num_inference_steps: int = 10


@dataclass
class FastWanT2VSamplingParam(WanT2V480PSamplingParam):
    """FastVideo's DMD-distilled FastWan2.1 T2V (``WanDMDPipeline`` folders): 3 fixed steps, no CFG.

    Size and frames from FastVideo's ``fast_wan_t2v_480p`` preset; the sampler from its ``DmdDenoisingStage``.
    """

    height: int = 448
    width: int = 832
    num_frames: int = 61
    num_inference_steps: int = 3
    guidance_scale: float = 1.0  # FastVideo's DMD stage never runs the unconditional branch
    sampler: str | None = "dmd"
    dmd_denoising_steps: list[int] | None = field(default_factory=lambda: [1000, 757, 522])

"""Wan2.2 pipeline presets (official configs: ``../shared/reference/wan22.md``).

The flow shift of a folder's ``scheduler/scheduler_config.json`` wins over these defaults (it is what the
published repos sample with); ``SamplingParam.flow_shift`` overrides both per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastvideo.configs.pipelines.base import PipelineConfig
from fastvideo.configs.pipelines.wan import WAN21_PREVIEW_BIAS, WAN21_PREVIEW_FACTORS


@dataclass
class Wan22TI2V5BConfig(PipelineConfig):
    """TI2V-5B: one DiT over the Wan2.2 VAE's 48-channel latents; per-token timesteps."""

    flow_shift: float = 5.0


@dataclass
class Wan22T2VA14BConfig(PipelineConfig):
    """T2V-A14B: two experts on the Wan2.1 VAE (so Wan2.1's preview factors apply)."""

    flow_shift: float = 12.0  # official sample_shift; the Diffusers repo's scheduler_config.json says 3.0 and wins
    preview_factors: list[list[float]] | None = field(default_factory=lambda: [r[:] for r in WAN21_PREVIEW_FACTORS])
    preview_bias: list[float] | None = field(default_factory=lambda: WAN21_PREVIEW_BIAS[:])


@dataclass
class Wan22I2VA14BConfig(Wan22T2VA14BConfig):
    flow_shift: float = 5.0

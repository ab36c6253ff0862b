"""The Wan2.2 family: TI2V-5B (one DiT, Wan2.2 VAE, per-token timesteps) and the two-expert A14B models.

Same Diffusers class names as Wan2.1 (``WanPipeline``, ``WanImageToVideoPipeline``, ``WanTransformer3DModel``,
``AutoencoderKLWan``); ``model_index.json`` tells them apart: ``expand_timesteps: true`` (TI2V) or a
``boundary_ratio`` (A14B, with ``transformer_2``).  The component classes are Wan2.1's (registered by
``families/wan.py``); the VAE config picks the Wan2.2 VAE (``is_residual``).
"""

from __future__ import annotations

from typing import Any

from fastvideo.configs.families.wan import WAN_REQUIRED, wan_latent_geometry
from fastvideo.configs.pipelines.wan22 import Wan22I2VA14BConfig, Wan22T2VA14BConfig, Wan22TI2V5BConfig
from fastvideo.configs.registry import Family, PipelineEntry, register_family
from fastvideo.configs.sample.wan22 import (
    Wan22I2VA14BSamplingParam,
    Wan22T2VA14BSamplingParam,
    Wan22TI2V5BSamplingParam,
)

WAN22_PIPELINES = "fastvideo.pipelines.basic.wan22:PIPELINES_BY_TASK"
EXPERTS = ("transformer", "transformer_2")  # high noise, low noise


def is_ti2v(index: dict[str, Any]) -> bool:
    return bool(index.get("expand_timesteps"))


def is_moe(index: dict[str, Any]) -> bool:
    return index.get("boundary_ratio") is not None and not index.get("expand_timesteps")


_TI2V = dict(pipeline_config_cls=Wan22TI2V5BConfig, sampling_param_cls=Wan22TI2V5BSamplingParam,
             required=WAN_REQUIRED, pipelines=WAN22_PIPELINES, match=is_ti2v)
_MOE_REQUIRED = (*WAN_REQUIRED, "transformer_2")

register_family(Family(
    name="wan2.2",
    latent_geometry=wan_latent_geometry,
    pipelines={
        "WanPipeline": (
            PipelineEntry("wan2.2", ("t2v", "i2v"), **_TI2V),
            PipelineEntry("wan2.2", ("t2v",), Wan22T2VA14BConfig, Wan22T2VA14BSamplingParam, _MOE_REQUIRED,
                          WAN22_PIPELINES, match=is_moe, experts=EXPERTS),
        ),
        "WanImageToVideoPipeline": (
            PipelineEntry("wan2.2", ("i2v", "t2v"), **_TI2V),
            PipelineEntry("wan2.2", ("i2v",), Wan22I2VA14BConfig, Wan22I2VA14BSamplingParam, _MOE_REQUIRED,
                          WAN22_PIPELINES, match=is_moe, experts=EXPERTS),
        ),
    },
    known_repos={
        "Wan-AI/Wan2.2-TI2V-5B-Diffusers": (Wan22TI2V5BConfig, Wan22TI2V5BSamplingParam),
        "Wan-AI/Wan2.2-T2V-A14B-Diffusers": (Wan22T2VA14BConfig, Wan22T2VA14BSamplingParam),
        "Wan-AI/Wan2.2-I2V-A14B-Diffusers": (Wan22I2VA14BConfig, Wan22I2VA14BSamplingParam),
    },
))

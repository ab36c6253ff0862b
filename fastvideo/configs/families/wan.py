"""The Wan2.1 family (T2V 1.3B / 14B, I2V 14B, V2V): registration and latent geometry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastvideo.configs.geometry import LatentGeometry
from fastvideo.configs.pipelines.wan import (
    ShapesT2VConfig,
    WanI2V480PConfig,
    WanI2V720PConfig,
    WanT2V480PConfig,
    WanT2V720PConfig,
)
from fastvideo.configs.registry import ComponentClass, Family, PipelineEntry, register_family
from fastvideo.configs.sample.wan import (
    FastWanT2VSamplingParam,
    ShapesT2VSamplingParam,
    TinyT2VSamplingParam,
    WanI2V480PSamplingParam,
    WanI2V720PSamplingParam,
    WanT2V480PSamplingParam,
    WanT2V720PSamplingParam,
)
from fastvideo.errors import ModelNotFoundError

WAN_PIPELINES = "fastvideo.pipelines.basic.wan:PIPELINES_BY_TASK"
WAN_REQUIRED = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")

WAN_COMPONENT_CLASSES = {
    "WanTransformer3DModel": ComponentClass(
        "fastvideo.models.dits.wan:WanTransformer3DModel", "fastvideo.configs.models.dits.wan:WanVideoConfig"
    ),
    # One Diffusers class for the Wan2.1 and Wan2.2 VAEs; WanVAEConfig.from_dict picks by vae/config.json.
    "AutoencoderKLWan": ComponentClass(
        "fastvideo.models.vaes.wan:AutoencoderKLWan", "fastvideo.configs.models.vaes.wan:WanVAEConfig"
    ),
    "UMT5EncoderModel": ComponentClass(
        "fastvideo.models.encoders.t5:UMT5TextEncoder", "fastvideo.configs.models.encoders.t5:T5EncoderArchConfig"
    ),
    "CLIPVisionModelWithProjection": ComponentClass(
        "fastvideo.models.encoders.clip:CLIPVisionEncoder",
        "fastvideo.configs.models.encoders.clip:CLIPVisionArchConfig",
    ),
    "T5TokenizerFast": ComponentClass("transformers:AutoTokenizer", kind="tokenizer"),
    "T5Tokenizer": ComponentClass("transformers:AutoTokenizer", kind="tokenizer"),
    "AutoTokenizer": ComponentClass("transformers:AutoTokenizer", kind="tokenizer"),
    "CLIPImageProcessor": ComponentClass("transformers:CLIPImageProcessor", kind="image_processor"),
    "UniPCMultistepScheduler": ComponentClass("fastvideo.models.schedulers:SCHEDULERS", kind="scheduler"),
    "FlowMatchEulerDiscreteScheduler": ComponentClass("fastvideo.models.schedulers:SCHEDULERS", kind="scheduler"),
}


def _config(folder: Path, component: str) -> dict[str, Any] | None:
    path = folder / component / "config.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"{path}: cannot read ({exc})") from None
    if not isinstance(data, dict):
        raise ModelNotFoundError(f"{path}: expected a JSON object")
    return data


def wan_latent_geometry(folder: Path) -> LatentGeometry:
    """Compression and channels from ``vae/config.json`` (Wan2.1 or Wan2.2 VAE), the patch from the DiT's config."""
    from fastvideo.configs.models.dits.wan import WanVideoConfig
    from fastvideo.configs.models.vaes.wan import WanVAEConfig

    folder = Path(folder)
    vae_json = _config(folder, "vae")
    dit_json = _config(folder, "transformer") or _config(folder, "transformer_2")
    if vae_json is None or dit_json is None:
        raise ModelNotFoundError(f"{folder}: vae/config.json and transformer/config.json are needed to size latents")
    try:
        vae = WanVAEConfig.from_dict(vae_json)
        dit = WanVideoConfig.from_dict(dit_json)
    except (TypeError, ValueError) as exc:
        raise ModelNotFoundError(f"{folder}: {exc}") from None
    return LatentGeometry(vae.temporal_compression_ratio, vae.spatial_compression_ratio, vae.z_dim,
                          tuple(dit.patch_size))


def _is_wan21(index: dict[str, Any]) -> bool:
    """A Wan2.1 folder: one expert, one timestep per sample (Wan2.2 folders set boundary_ratio or
    expand_timesteps; the Wan2.1 repos written by newer Diffusers carry them as null / false)."""
    return index.get("boundary_ratio") is None and not index.get("expand_timesteps")


register_family(Family(
    name="wan",
    latent_geometry=wan_latent_geometry,
    component_classes=WAN_COMPONENT_CLASSES,
    pipelines={
        "WanPipeline": (PipelineEntry("wan", ("t2v", "v2v"), WanT2V480PConfig, WanT2V480PSamplingParam, WAN_REQUIRED,
                                      WAN_PIPELINES, match=_is_wan21),),
        "WanVideoToVideoPipeline": (PipelineEntry("wan", ("v2v", "t2v"), WanT2V480PConfig, WanT2V480PSamplingParam,
                                                  WAN_REQUIRED, WAN_PIPELINES, match=_is_wan21),),
        "WanImageToVideoPipeline": (PipelineEntry("wan", ("i2v",), WanI2V480PConfig, WanI2V480PSamplingParam,
                                                  WAN_REQUIRED, WAN_PIPELINES, ("image_encoder", "image_processor"),
                                                  match=_is_wan21),),
        # FastVideo's DMD-distilled FastWan folders: a Wan2.1 DiT sampled in 3 fixed steps (sampler "dmd").
        "WanDMDPipeline": (PipelineEntry("wan", ("t2v",), WanT2V480PConfig, FastWanT2VSamplingParam, WAN_REQUIRED,
                                         WAN_PIPELINES, match=_is_wan21),),
    },
    known_repos={
        "Wan-AI/Wan2.1-T2V-1.3B-Diffusers": (WanT2V480PConfig, WanT2V480PSamplingParam),
        "Wan-AI/Wan2.1-T2V-14B-Diffusers": (WanT2V720PConfig, WanT2V720PSamplingParam),
        "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers": (WanI2V480PConfig, WanI2V480PSamplingParam),
        "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers": (WanI2V720PConfig, WanI2V720PSamplingParam),
        "FastVideo/FastWan2.1-T2V-1.3B-Diffusers": (WanT2V480PConfig, FastWanT2VSamplingParam),
        "FastVideo/FastWan2.1-T2V-14B-480P-Diffusers": (WanT2V480PConfig, FastWanT2VSamplingParam),
        # The built-in model (resources/models/fastvideo-shapes-t2v; matched by folder name).
        "FastVideo/fastvideo-shapes-t2v": (ShapesT2VConfig, ShapesT2VSamplingParam),
        # The tiny random-weight fallback made on first use when no trained model ships (fastvideo/builtin.py).
        "FastVideo/tiny-wan-t2v": (WanT2V480PConfig, TinyT2VSamplingParam),
    },
))

"""The LTX-2 family (joint audio-video): registration and latent geometry.

Folders are Diffusers' ``LTX2Pipeline`` / ``LTX2ImageToVideoPipeline`` layouts (the same weights do both
tasks): ``transformer``, ``vae`` (video), ``audio_vae``, ``vocoder``, ``connectors``, ``text_encoder``
(Gemma 3), ``tokenizer``, ``scheduler``.  Diffusers names the connectors' and the vocoder's library
``ltx2`` (its pipeline sub-package, where those classes live), which is accepted here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastvideo.configs.geometry import LatentGeometry
from fastvideo.configs.pipelines.ltx2 import LTX2I2VConfig, LTX2T2VConfig, LTX2TinyConfig
from fastvideo.configs.registry import ComponentClass, Family, PipelineEntry, register_family
from fastvideo.configs.sample.ltx2 import (
    LTX2DistilledSamplingParam,
    LTX2I2VSamplingParam,
    LTX2T2VSamplingParam,
    LTX2TinySamplingParam,
)
from fastvideo.errors import ModelNotFoundError
from fastvideo.hub.names import allow_pipeline_module_library

LTX2_PIPELINES = "fastvideo.pipelines.basic.ltx2:PIPELINES_BY_TASK"
LTX2_REQUIRED = ("transformer", "vae", "audio_vae", "vocoder", "connectors", "text_encoder", "tokenizer",
                 "scheduler")

LTX2_COMPONENT_CLASSES = {
    "LTX2VideoTransformer3DModel": ComponentClass(
        "fastvideo.models.dits.ltx2:LTX2VideoTransformer3DModel", "fastvideo.configs.models.dits.ltx2:LTX2VideoConfig"),
    "AutoencoderKLLTX2Video": ComponentClass(
        "fastvideo.models.vaes.ltx2_video:AutoencoderKLLTX2Video",
        "fastvideo.configs.models.vaes.ltx2_video:LTX2VideoVAEConfig"),
    "AutoencoderKLLTX2Audio": ComponentClass(
        "fastvideo.models.vaes.ltx2_audio:AutoencoderKLLTX2Audio",
        "fastvideo.configs.models.vaes.ltx2_audio:LTX2AudioVAEConfig"),
    "LTX2Vocoder": ComponentClass(
        "fastvideo.models.audio.ltx2_vocoder:LTX2Vocoder", "fastvideo.configs.models.audio.ltx2_vocoder:LTX2VocoderConfig"),
    "LTX2TextConnectors": ComponentClass(
        "fastvideo.models.encoders.ltx2_connectors:LTX2TextConnectors",
        "fastvideo.configs.models.encoders.ltx2_connectors:LTX2TextConnectorsConfig"),
    "Gemma3ForConditionalGeneration": ComponentClass(
        "fastvideo.models.encoders.gemma3:Gemma3TextEncoder",
        "fastvideo.configs.models.encoders.gemma3:Gemma3TextEncoderConfig"),
    "GemmaTokenizer": ComponentClass("transformers:AutoTokenizer", kind="tokenizer"),
    "GemmaTokenizerFast": ComponentClass("transformers:AutoTokenizer", kind="tokenizer"),
}


def _config(folder: Path, component: str) -> dict[str, Any]:
    path = folder / component / "config.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelNotFoundError(f"{folder}: {component}/config.json is needed to size LTX-2 latents") from None
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"{path}: cannot read ({exc})") from None
    if not isinstance(data, dict):
        raise ModelNotFoundError(f"{path}: expected a JSON object")
    return data


def ltx2_latent_geometry(folder: Path) -> LatentGeometry:
    """Video compression and channels from ``vae/config.json``; the DiT's patch from ``transformer/config.json``."""
    from fastvideo.configs.models.dits.ltx2 import LTX2VideoConfig
    from fastvideo.configs.models.vaes.ltx2_video import LTX2VideoVAEConfig

    folder = Path(folder)
    try:
        vae = LTX2VideoVAEConfig.from_dict(_config(folder, "vae"))
        dit = LTX2VideoConfig.from_dict(_config(folder, "transformer"))
    except (TypeError, ValueError) as exc:
        raise ModelNotFoundError(f"{folder}: LTX-2 configs not understood ({exc})") from None
    return LatentGeometry(int(vae.temporal_compression_ratio), int(vae.spatial_compression_ratio),
                          int(vae.latent_channels), (dit.patch_size_t, dit.patch_size, dit.patch_size))


allow_pipeline_module_library("ltx2")

register_family(Family(
    name="ltx2",
    latent_geometry=ltx2_latent_geometry,
    pipelines={
        "LTX2Pipeline": (PipelineEntry("ltx2", ("t2v", "i2v"), LTX2T2VConfig, LTX2T2VSamplingParam, LTX2_REQUIRED,
                                       LTX2_PIPELINES),),
        "LTX2ImageToVideoPipeline": (PipelineEntry("ltx2", ("i2v", "t2v"), LTX2I2VConfig, LTX2I2VSamplingParam,
                                                   LTX2_REQUIRED, LTX2_PIPELINES),),
    },
    component_classes=LTX2_COMPONENT_CLASSES,
    known_repos={
        "Lightricks/LTX-2": (LTX2T2VConfig, LTX2T2VSamplingParam),
        "Lightricks/LTX-2-distilled": (LTX2T2VConfig, LTX2DistilledSamplingParam),
        # The tiny random-weight model (fastvideo make-tiny --family ltx2; matched by folder name).
        "FastVideo/tiny-ltx2": (LTX2TinyConfig, LTX2TinySamplingParam),
    },
))

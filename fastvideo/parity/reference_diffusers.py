"""Reference implementations for ``fastvideo parity --reference diffusers``.

The only place in ``fastvideo/`` that uses Diffusers, and only here, lazily:
Diffusers is a test/porting dependency, never a runtime one.  Each function
builds the reference component from the *same* Diffusers-layout folder with the
Diffusers / transformers classes and runs the reference procedure (Diffusers'
own pipeline helpers where the pipeline does more than call the module).
"""

from __future__ import annotations

import importlib
import types
from pathlib import Path
from typing import Any

import torch


def require_diffusers():
    try:
        return importlib.import_module("diffusers")
    except ImportError:
        raise ImportError(
            "the Diffusers reference needs the diffusers package (a porting/test dependency of fastvideo): "
            "pip install diffusers"
        ) from None


def version() -> str | None:
    try:
        return require_diffusers().__version__
    except ImportError:
        return None


def load_transformer(folder: Path, dtype: torch.dtype):
    diffusers = require_diffusers()
    return diffusers.WanTransformer3DModel.from_pretrained(str(folder), torch_dtype=dtype).eval()


def load_vae(folder: Path, dtype: torch.dtype):
    diffusers = require_diffusers()
    return diffusers.AutoencoderKLWan.from_pretrained(str(folder), torch_dtype=dtype).eval()


def load_text_encoder(folder: Path, dtype: torch.dtype):
    from transformers import UMT5EncoderModel

    return UMT5EncoderModel.from_pretrained(str(folder), dtype=dtype, trust_remote_code=False,
                                            local_files_only=True).eval()


def load_image_encoder(folder: Path, dtype: torch.dtype):
    from transformers import CLIPVisionModelWithProjection

    return CLIPVisionModelWithProjection.from_pretrained(str(folder), dtype=dtype, trust_remote_code=False,
                                                         local_files_only=True).eval()


def load_scheduler(folder: Path, class_name: str):
    from fastvideo.configs.registry import COMPONENT_CLASSES

    diffusers = require_diffusers()
    # The name comes from the folder's model_index.json: look up only registered scheduler classes.
    known = COMPONENT_CLASSES.get(class_name) if isinstance(class_name, str) else None
    if known is None or known.kind != "scheduler":
        raise ValueError(f"scheduler class {class_name!r} is not one fastvideo knows")
    cls = getattr(diffusers, class_name, None)
    if cls is None:
        raise ValueError(f"diffusers has no scheduler class {class_name!r}")
    return cls.from_pretrained(str(folder))


@torch.no_grad()
def run_transformer(ref, inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
    out = ref(hidden_states=inputs["latents"], timestep=inputs["timestep"],
              encoder_hidden_states=inputs["text"], encoder_hidden_states_image=inputs.get("image"),
              return_dict=False)[0]
    return {"noise_pred": out}


@torch.no_grad()
def run_vae(ref, inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
    mean = ref.encode(inputs["video"]).latent_dist.mean
    decoded = ref.decode(inputs["latents"]).sample
    return {"encode.mean": mean, "decode": decoded}


def _wan_pipeline(name: str):
    require_diffusers()
    module = importlib.import_module(
        "diffusers.pipelines.wan.pipeline_wan" if name == "WanPipeline" else "diffusers.pipelines.wan.pipeline_wan_i2v"
    )
    return getattr(module, name)


@torch.no_grad()
def run_text_encoder(ref, tokenizer, prompts: list[str], max_length: int, dtype: torch.dtype):
    """Diffusers' ``WanPipeline._get_t5_prompt_embeds`` on the reference encoder."""
    pipe = types.SimpleNamespace(tokenizer=tokenizer, text_encoder=ref)
    embeds = _wan_pipeline("WanPipeline")._get_t5_prompt_embeds(
        pipe, prompts, max_sequence_length=max_length, device=torch.device("cpu"), dtype=dtype
    )
    return {"prompt_embeds": embeds}


@torch.no_grad()
def run_image_encoder(ref, image_processor, images) -> dict[str, torch.Tensor]:
    """Diffusers' ``WanImageToVideoPipeline.encode_image`` on the reference encoder."""
    pipe = types.SimpleNamespace(image_processor=image_processor, image_encoder=ref)
    embeds = _wan_pipeline("WanImageToVideoPipeline").encode_image(pipe, images, torch.device("cpu"))
    return {"image_embeds": embeds}


def run_scheduler(ref, inputs: dict[str, Any], fake_model) -> list[torch.Tensor]:
    """Samples after each step of the trajectory (the reference scheduler's own API)."""
    ref.set_timesteps(inputs["steps"], device="cpu")
    x = inputs["sample"].clone()
    out = []
    for t in ref.timesteps:
        x = ref.step(fake_model(x, t), t, x, return_dict=False)[0]
        out.append(x)
    return [ref.timesteps.to(torch.float64)] + out

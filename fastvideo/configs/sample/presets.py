"""Sampling presets for few-step models and step-distillation LoRAs, and which ones a model or LoRA calls for.

Torch-free (the studio asks without loading anything):

    from fastvideo.configs.sample.presets import presets_for
    for preset in presets_for("FastWan2.1-T2V-1.3B-Diffusers", loras=["lightx2v_4step.safetensors"]):
        print(preset.name, preset.values)
    sampling = preset.apply(SamplingParam.from_pretrained(model))

What calls for a preset:

* a model folder whose ``model_index.json`` ``_class_name`` is ``WanDMDPipeline`` (FastVideo's FastWan
  checkpoints) or that sets ``"fastvideo_sampling_preset": NAME``;
* a LoRA whose safetensors metadata sets ``fastvideo_sampling_preset`` (our own key), or whose metadata
  or file name mentions step distillation the way the public step-distillation LoRAs are named
  (``lightx2v``, ``StepDistill``, ``CausVid``, ``lightning``, ``4step`` / ``8step`` ...).  A file name is a
  hint only: the preset is offered, never applied without the user choosing it.
"""

from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastvideo.configs.sample.base import SamplingParam


@dataclass(frozen=True)
class SamplingPreset:
    name: str
    title: str
    description: str
    values: dict[str, Any] = field(default_factory=dict)  # SamplingParam fields

    def apply(self, sp: SamplingParam) -> SamplingParam:
        """``sp`` with this preset's fields set (lists copied)."""
        return sp.update(**{k: list(v) if isinstance(v, (list, tuple)) else v for k, v in self.values.items()})

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "description": self.description, "values": dict(self.values)}


PRESETS: dict[str, SamplingPreset] = {p.name: p for p in (
    SamplingPreset(
        "fastwan-dmd-3step", "FastWan DMD (3 steps)",
        "FastVideo's distilled FastWan models: timesteps 1000, 757, 522, no guidance (FastVideo's DMD sampler)",
        {"sampler": "dmd", "dmd_denoising_steps": [1000, 757, 522], "num_inference_steps": 3,
         "guidance_scale": 1.0, "dmd_warp_timesteps": False, "flow_shift": None}),
    SamplingPreset(
        "step-distill-4step", "Step-distilled LoRA (4 steps)",
        "Wan 14B step/CFG-distillation LoRAs (lightx2v, Self-Forcing style): timesteps 1000, 750, 500, 250 warped "
        "with shift 5, guidance 1",
        {"sampler": "dmd", "dmd_denoising_steps": [1000, 750, 500, 250], "num_inference_steps": 4,
         "guidance_scale": 1.0, "dmd_warp_timesteps": True, "flow_shift": 5.0}),
    SamplingPreset(
        "step-distill-8step", "Step-distilled LoRA (8 steps)",
        "The same LoRAs at 8 evenly spaced timesteps (slower, sometimes cleaner): shift 5, guidance 1",
        {"sampler": "dmd", "dmd_denoising_steps": [1000, 875, 750, 625, 500, 375, 250, 125],
         "num_inference_steps": 8, "guidance_scale": 1.0, "dmd_warp_timesteps": True, "flow_shift": 5.0}),
)}

MODEL_CLASS_PRESETS = {"WanDMDPipeline": ("fastwan-dmd-3step",)}
PRESET_KEY = "fastvideo_sampling_preset"
# Words in a LoRA's file name or metadata that the public step-distillation LoRAs carry.
_STEP_DISTILL = re.compile(r"(lightx2v|step[_-]?distill|cfg[_-]?distill|causvid|lightning|self[_-]?forcing|"
                           r"(?<![0-9])[48][_-]?steps?(?![a-z]))", re.IGNORECASE)
_MAX_HEADER = 64 * 2**20


def get_preset(name: str) -> SamplingPreset:
    if name not in PRESETS:
        raise KeyError(f"unknown sampling preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


def _named(names: Any) -> list[str]:
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)):
        return []
    return [n for n in names if isinstance(n, str) and n in PRESETS]


def presets_for_model(model_path: str | os.PathLike) -> list[str]:
    """Preset names a model folder calls for (from ``model_index.json``); [] when none or unreadable."""
    path = Path(model_path).expanduser() / "model_index.json"
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(index, dict):
        return []
    names = list(MODEL_CLASS_PRESETS.get(index.get("_class_name"), ())) if isinstance(index.get("_class_name"),
                                                                                     str) else []
    return list(dict.fromkeys(names + _named(index.get(PRESET_KEY))))


def lora_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (header only; {} for other files or bad headers)."""
    p = Path(path).expanduser()
    if p.suffix != ".safetensors":
        return {}
    try:
        with open(p, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if not 0 < size <= _MAX_HEADER:
                return {}
            header = json.loads(f.read(size))
    except (OSError, ValueError, struct.error):
        return {}
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


def presets_for_lora(path: str | os.PathLike) -> list[str]:
    """Preset names a LoRA file calls for: its ``fastvideo_sampling_preset`` metadata, else a step-distillation
    hint in its metadata or file name (4 steps; 8 too when it says 8 steps)."""
    meta = lora_metadata(path)
    named = _named([s.strip() for s in meta.get(PRESET_KEY, "").split(",")])
    if named:
        return named
    text = " ".join([Path(path).name, *(meta.get(k, "") for k in ("ss_output_name", "name", "description",
                                                                   "modelspec.title", "modelspec.description"))])
    if not _STEP_DISTILL.search(text):
        return []
    return ["step-distill-8step", "step-distill-4step"] if re.search(r"(?<![0-9])8[_-]?steps?", text, re.I) \
        else ["step-distill-4step", "step-distill-8step"]


def presets_for(model_path: str | os.PathLike | None = None, loras: list[Any] | None = None) -> list[SamplingPreset]:
    """Presets the model and its LoRAs call for, the most specific first (LoRAs, then the model).

    ``loras`` as in ``SamplingParam.loras``: paths, ``(path, strength)`` pairs or ``{"path": ...}`` dicts."""
    names: list[str] = []
    for item in loras or []:
        path = item.get("path") if isinstance(item, dict) else item[0] if isinstance(item, (list, tuple)) else item
        if isinstance(path, (str, os.PathLike)):
            text = os.fspath(path)
            head, sep, tail = text.rpartition(":")  # "PATH:STRENGTH" (as fastvideo.lora.parse_lora_arg)
            if sep and head and re.fullmatch(r"[-+]?[0-9.eE+-]+", tail):
                text = head
            names += presets_for_lora(text)
    if model_path:
        names += presets_for_model(model_path)
    return [PRESETS[n] for n in dict.fromkeys(names)]


__all__ = ["PRESETS", "SamplingPreset", "get_preset", "lora_metadata", "presets_for", "presets_for_lora",
           "presets_for_model"]

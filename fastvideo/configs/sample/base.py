"""Sampling parameters: what one generation request asks for.

``SamplingParam.from_pretrained(path_or_id)`` returns the defaults of the model's
family (resolved through the registry); callers then change fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SamplingParam:
    prompt: str | None = None
    negative_prompt: str | None = None
    num_frames: int = 81
    height: int = 480
    width: int = 832
    fps: int = 16
    num_inference_steps: int = 50
    guidance_scale: float = 5.0
    # Models with several denoising experts (Wan2.2 A14B): the guidance of the low-noise expert
    # (None: guidance_scale) and the switch point as a fraction of the 1000 training timesteps (None: the model's).
    guidance_scale_2: float | None = None
    boundary_ratio: float | None = None
    seed: int = 1024
    flow_shift: float | None = None  # None: the pipeline config's default
    image_path: str | None = None  # I2V: the first frame
    video_path: str | None = None  # V2V: the input video
    strength: float = 0.8  # V2V: how much of the input video is re-noised, in (0, 1]
    output_path: str = "outputs"
    save_video: bool = True
    return_frames: bool = False
    # Not part of FastVideo's public field list but needed by a desktop tool.
    preview: bool = True
    # LoRAs merged into the DiT for this request: [(path, strength), ...] ("PATH[:STRENGTH]" strings and
    # {"path", "strength"} dicts are accepted too). Switching sets between requests never reloads the model.
    loras: list[tuple[str, float]] = field(default_factory=list)
    # LoRAs for the second expert (transformer_2: Wan2.2 A14B's low-noise expert), as Diffusers'
    # load_lora_weights(..., load_into_transformer_2=True); a LoRA for both experts is listed in both.
    loras_2: list[tuple[str, float]] = field(default_factory=list)
    lora_strict: bool = True  # False: apply what maps, skip (and report) LoRA keys that map to nothing
    # Few-step sampling (fastvideo.models.schedulers.dmd): "dmd" runs a distilled model on fixed timesteps
    # (x0 estimate, re-noise); None runs the model folder's scheduler.
    sampler: str | None = None
    dmd_denoising_steps: list[int] | None = None  # None: evenly spaced from 1000 (num_inference_steps of them)
    dmd_warp_timesteps: bool = False  # move the listed timesteps onto the shifted grid (lightx2v / Self-Forcing)
    # Step caching (fastvideo.pipelines.step_cache): reuse the last prediction while the DiT's input has changed
    # by less than this accumulated relative L1 distance; 0 turns it off (bit-identical to no cache).
    step_cache_threshold: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_pretrained(cls, model_path: str) -> SamplingParam:
        from fastvideo.configs.registry import resolve_model

        return resolve_model(model_path).sampling_param_cls()

    def update(self, **overrides: Any) -> SamplingParam:
        """Set fields by name; an unknown name is an error naming the valid ones."""
        names = {f.name for f in dataclasses.fields(self)}
        for key, value in overrides.items():
            if key not in names:
                raise TypeError(f"SamplingParam has no field {key!r}; fields: {', '.join(sorted(names))}")
            setattr(self, key, value)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingParam:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

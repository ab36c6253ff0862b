"""Arch config of the CLIP vision encoder (``transformers.CLIPVisionModelWithProjection``).

Wan2.1 I2V uses open-clip ViT-H/14 saved as ``CLIPVisionModelWithProjection``
(hidden 1280, 32 layers, 16 heads, patch 14, image 224 -> 257 tokens); the
pipeline feeds the DiT the penultimate hidden states (``hidden_states[-2]``).
Field names are the keys of ``image_encoder/config.json``; other keys are kept
in ``extra`` and passed back to ``CLIPVisionConfig``.  Our module is the
transformers class itself, so the mapping is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from fastvideo.configs.models.base import ArchConfig


@dataclass
class CLIPVisionArchConfig(ArchConfig):
    """CLIP vision tower hyper-parameters (defaults: ViT-H/14 as in Wan2.1 I2V)."""

    checkpoint_class_names: ClassVar[tuple[str, ...]] = ("CLIPVisionModelWithProjection",)

    hidden_size: int = 1280
    intermediate_size: int = 5120
    projection_dim: int = 1024
    num_hidden_layers: int = 32
    num_attention_heads: int = 16
    num_channels: int = 3
    image_size: int = 224
    patch_size: int = 14
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-5

    param_names_mapping: dict[str, Any] = field(default_factory=dict)
    # transformers keeps nothing of CLIP in fp32.
    keep_fp32_modules: list[str] = field(default_factory=list)

    def hf_config_dict(self) -> dict[str, Any]:
        """The dict to build ``transformers.CLIPVisionConfig`` from (extra keys first, fields win)."""
        return {**self.extra, **self.to_dict()}

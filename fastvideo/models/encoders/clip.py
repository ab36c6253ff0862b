"""CLIP vision encoder (Wan2.1 I2V) and the image -> embedding procedure of the Wan I2V pipeline.

``CLIPVisionEncoder`` *is* ``transformers.CLIPVisionModelWithProjection``
(subclass, no new modules), so checkpoint names load unchanged.
``encode_image`` returns what Diffusers' ``WanImageToVideoPipeline.encode_image``
returns: the penultimate layer's hidden states (``hidden_states[-2]``,
``[B, 1 + (image_size / patch_size) ** 2, hidden]``; 257 tokens for ViT-H/14).
"""

from __future__ import annotations

import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from fastvideo.configs.models.encoders.clip import CLIPVisionArchConfig


class CLIPVisionEncoder(CLIPVisionModelWithProjection):
    """``CLIPVisionModelWithProjection`` built from our arch config."""

    @classmethod
    def from_arch_config(cls, cfg: CLIPVisionArchConfig) -> CLIPVisionEncoder:
        config = CLIPVisionConfig(**cfg.hf_config_dict())
        return cls(config).eval()


@torch.no_grad()
def encode_image(
    image_processor,
    image_encoder: torch.nn.Module,
    images,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Penultimate CLIP hidden states for ``images`` (PIL images, arrays, or a list of them).

    ``image_processor`` is a ``CLIPImageProcessor`` (resize, centre crop,
    normalise).  With ``image_processor=None``, ``images`` must already be
    ``pixel_values`` ``[B, 3, H, W]``.  The result is on ``device`` (default:
    the encoder's) in ``dtype`` (default: the encoder's).
    """
    param = next(image_encoder.parameters())
    if image_processor is None:
        pixel_values = torch.as_tensor(images)
    else:
        pixel_values = image_processor(images=images, return_tensors="pt").pixel_values
    pixel_values = pixel_values.to(device=param.device, dtype=param.dtype)
    out = image_encoder(pixel_values=pixel_values, output_hidden_states=True)
    hidden = out.hidden_states[-2]
    return hidden.to(device=device if device is not None else param.device, dtype=dtype or hidden.dtype)

"""Diffusion transformers."""

from fastvideo.models.dits.wan import WanTransformer3DModel

__all__ = ["WanTransformer3DModel"]

"""Arch configs of diffusion transformers."""

from fastvideo.configs.models.dits.wan import WanVideoConfig

__all__ = ["WanVideoConfig"]

"""FastVideo's import path for :class:`SamplingParam` (the same class object as ``fastvideo.SamplingParam``)."""

from __future__ import annotations

from fastvideo.configs.sample.base import SamplingParam

__all__ = ["SamplingParam"]

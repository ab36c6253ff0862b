"""Sampling parameters: what one generation request asks for.

``SamplingParam.from_pretrained(path_or_id)`` returns the defaults of the model's
family (resolved through the registry); callers then change fields.
``from fastvideo.configs.sample import SamplingParam`` is FastVideo's import path
(the same class as ``fastvideo.SamplingParam`` and ``fastvideo.api.sampling_param.SamplingParam``).
"""

from __future__ import annotations

from fastvideo.configs.sample.base import SamplingParam

__all__ = ["SamplingParam"]

"""FastVideo's ``fastvideo.api`` import paths.

``fastvideo.api.sampling_param.SamplingParam`` (and ``fastvideo.api.SamplingParam``) is the same class
as ``fastvideo.SamplingParam`` and ``fastvideo.configs.sample.SamplingParam``.  ``fastvideo.api.options``
translates FastVideo's ``from_pretrained`` / ``generate_video`` options onto ours (docs/fastvideo-compat.md).
Torch-free.
"""

from __future__ import annotations

from fastvideo.api.options import UnsupportedOptionError
from fastvideo.api.sampling_param import SamplingParam

__all__ = ["SamplingParam", "UnsupportedOptionError"]

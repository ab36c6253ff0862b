"""fastvideo: a video diffusion inference framework.

Public API (FastVideo's shape)::

    from fastvideo import VideoGenerator, SamplingParam
    generator = VideoGenerator.from_pretrained(model_path, num_gpus=1)
    sampling = SamplingParam.from_pretrained(model_path)
    result = generator.generate_video("a prompt", sampling_param=sampling, output_path="outputs")

Imports are lazy: ``import fastvideo`` loads neither torch nor any model code, so
torch-free consumers (the studio, the CLI's help) start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "VideoGenerator": "fastvideo.entrypoints.video_generator",
    "GenerationCancelled": "fastvideo.errors",
    "InvalidRequest": "fastvideo.errors",
    "SamplingParam": "fastvideo.configs.sample.base",
    "PipelineConfig": "fastvideo.configs.pipelines.base",
    "load_component": "fastvideo.models.loader.component_loader",
}

__all__ = sorted(_EXPORTS) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from fastvideo.configs.pipelines.base import PipelineConfig  # noqa: F401
    from fastvideo.configs.sample.base import SamplingParam  # noqa: F401
    from fastvideo.entrypoints.video_generator import VideoGenerator  # noqa: F401
    from fastvideo.errors import GenerationCancelled, InvalidRequest  # noqa: F401
    from fastvideo.models.loader.component_loader import load_component  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fastvideo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

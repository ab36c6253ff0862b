"""A stage: one small named step of a pipeline with checked inputs and outputs."""

from __future__ import annotations

import time
from typing import Any

from fastvideo.pipelines.forward_batch import ForwardBatch


class StageVerificationError(RuntimeError):
    """A stage got (or produced) something it should not have: a bug, not bad user input."""


class PipelineStage:
    """Subclasses set ``name`` and implement ``forward``; ``verify_input``/``verify_output``
    check the batch fields the stage depends on and produces (when verification is on)."""

    name = "stage"

    def verify_input(self, batch: ForwardBatch) -> None:  # pragma: no cover - default: nothing to check
        pass

    def verify_output(self, batch: ForwardBatch) -> None:  # pragma: no cover
        pass

    def forward(self, batch: ForwardBatch) -> ForwardBatch:
        raise NotImplementedError

    def __call__(self, batch: ForwardBatch, verify: bool = True) -> ForwardBatch:
        if verify:
            self.verify_input(batch)
        batch.emit({"type": "stage", "name": self.name})
        start = time.perf_counter()
        batch = self.forward(batch)
        _synchronize()
        batch.timings[self.name] = batch.timings.get(self.name, 0.0) + time.perf_counter() - start
        if verify:
            self.verify_output(batch)
        return batch


def _synchronize() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def check(condition: bool, stage: str, message: str) -> None:
    if not condition:
        raise StageVerificationError(f"{stage}: {message}")


def check_tensor(value: Any, stage: str, name: str, ndim: int | None = None, shape: tuple | None = None) -> None:
    import torch

    check(isinstance(value, torch.Tensor), stage, f"{name} must be a tensor, got {type(value).__name__}")
    if ndim is not None:
        check(value.ndim == ndim, stage, f"{name} must have {ndim} dims, got shape {list(value.shape)}")
    if shape is not None:
        for i, want in enumerate(shape):
            if want is not None:
                check(value.shape[i] == want, stage, f"{name} dim {i} must be {want}, got shape {list(value.shape)}")
    check(bool(torch.isfinite(value).all()), stage, f"{name} has NaN or Inf values")

"""Planning, merging and unmerging LoRAs on a loaded model.

A LoRA is *merged*: ``W += strength * scale * (B @ A)`` (``scale = alpha / rank`` when the LoRA
gives alpha, else 1), bias deltas ``b += strength * scale * lora_B.bias`` and full-rank patches
``W += strength * diff`` / ``b += strength * diff_b``; no per-step cost.  Several LoRAs add up (in
fp32, then one rounding to the parameter's dtype).

Unmerging never subtracts: the first time a parameter is touched its original tensor is copied to
CPU memory, and unloading copies it back, so the weights are bit-identical to the loaded ones.

Everything is checked before the first weight changes (:func:`plan_lora` reads, parses, maps and
validates; :meth:`LoraManager.set_loras` plans every LoRA of a request before restoring or merging).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fastvideo.lora.formats import LoraError, LoraFile, LoraSpec, normalize_loras
from fastvideo.lora.plan import LoraOp, LoraPlan, plan_entries
from fastvideo.lora.report import LoraReport


def read_lora_file(path: str | os.PathLike) -> LoraFile:
    """All tensors of a LoRA file (.safetensors, or a pickled .pt/.pth/.bin read with weights_only)."""
    from fastvideo.lora.formats import LoraFileNotFound
    from fastvideo.models.loader.checkpoint import CheckpointError, iter_tensors, read_safetensors_header

    p = Path(path).expanduser()
    if not p.is_file():
        raise LoraFileNotFound(f"LoRA file not found: {p}" + (" (it is a folder)" if p.is_dir() else ""))
    meta: dict[str, str] = {}
    try:
        if p.suffix == ".safetensors":
            _, meta = read_safetensors_header(p)
        tensors = dict(iter_tensors(p))
    except CheckpointError as exc:
        raise LoraError(f"{p}: cannot read the LoRA file: {exc}") from None
    except Exception as exc:  # a pickle that is not a state dict, ...
        raise LoraError(f"{p}: cannot read the LoRA file ({type(exc).__name__}: {exc})") from None
    if not tensors:
        raise LoraError(f"{p}: the file holds no tensors, not a LoRA")
    return LoraFile(p, tensors, dict(meta))


def _compute(op: LoraOp, shape: tuple[int, ...], device) -> torch.Tensor:
    """The delta of one op, in fp32, shaped ``shape`` (times its factor)."""
    if op.delta is not None:
        d = op.delta.to(device=device, dtype=torch.float32)
    else:
        up = op.up.to(device=device, dtype=torch.float32).flatten(1)
        down = op.down.to(device=device, dtype=torch.float32).flatten(1)
        d = up @ down
    return (d * op.factor).reshape(shape)


def _scalar(t: torch.Tensor) -> float | None:
    return float(t.float().reshape(-1)[0]) if t.numel() else None


def _non_finite(tensors: dict[str, Any]) -> list[str]:
    return [k for k, t in tensors.items()
            if torch.is_tensor(t) and t.is_floating_point() and not bool(torch.isfinite(t).all())]


def plan_lora(lora: LoraFile | str | os.PathLike, strength: float, params: dict[str, tuple[tuple[int, ...], Any]],
              arch_config: Any, *, strict: bool = True) -> LoraPlan:
    """Read, map and check one LoRA against parameter shapes (``name -> (shape, dtype)``); no weight changes.

    Raises :class:`LoraError` for input that is not a usable LoRA (missing file, not a LoRA, another
    architecture or size, non-finite values) and, when ``strict``, for any key that cannot be applied.
    The checks are :func:`fastvideo.lora.plan.plan_entries` (torch-free), plus the values' finiteness."""
    lf = lora if isinstance(lora, LoraFile) else read_lora_file(lora)
    return plan_entries(lf, strength, params, arch_config, strict=strict, scalar=_scalar, non_finite=_non_finite)


def _file_identity(path: str) -> tuple:
    p = Path(path).expanduser()
    try:
        st = p.stat()
        return (str(p.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        return (str(p), None, None)


class LoraManager:
    """The LoRAs merged into one model; ``set_loras`` switches sets without touching the model files."""

    def __init__(self, model: nn.Module, arch_config: Any = None):
        self.model = model
        self.arch_config = arch_config if arch_config is not None else (
            getattr(model, "arch_config", None) or getattr(model, "config", None))
        self._originals: dict[str, torch.Tensor] = {}  # parameter -> original tensor (CPU copy)
        self._identity: tuple = ()
        self.reports: list[LoraReport] = []
        self.active: list[LoraSpec] = []

    def _params(self) -> dict[str, nn.Parameter]:
        return dict(self.model.named_parameters())

    def set_loras(self, loras: Iterable[Any] | None, *, strict: bool = True) -> list[LoraReport]:
        """Make exactly these LoRAs active (an empty list unloads). Every LoRA is planned and checked
        first; on any error nothing changes (the previous set stays merged)."""
        specs = normalize_loras(loras)
        identity = (strict,) + tuple((_file_identity(p), s) for p, s in specs)
        if specs and identity == self._identity:
            return self.reports
        if not specs:
            self.unload()
            return []
        params = self._params()
        shapes = {n: (tuple(p.shape), p.dtype) for n, p in params.items()}
        plans = [plan_lora(path, strength, shapes, self.arch_config, strict=strict) for path, strength in specs]
        self._restore(params)
        by_param: dict[str, list[LoraOp]] = {}
        for plan in plans:
            for op in plan.ops:
                by_param.setdefault(op.param, []).append(op)
        with torch.no_grad():
            for name, ops in by_param.items():
                p = params[name]
                self._originals[name] = p.detach().to("cpu", copy=True)
                delta = torch.zeros(p.shape, dtype=torch.float32, device=p.device)
                for op in ops:
                    if op.rows is None:
                        delta += _compute(op, tuple(p.shape), p.device)
                    else:
                        r0, r1 = op.rows
                        delta[r0:r1] += _compute(op, (r1 - r0,) + tuple(p.shape[1:]), p.device)
                p.copy_((p.detach().float() + delta).to(p.dtype))
        self._identity = identity
        self.active = specs
        self.reports = [plan.report for plan in plans]
        return self.reports

    def check_loras(self, loras: Iterable[Any] | None, *, strict: bool = True) -> None:
        """Plan ``loras`` against this model without changing it: LoraError if :meth:`set_loras` would fail."""
        specs = normalize_loras(loras)
        shapes = {n: (tuple(p.shape), p.dtype) for n, p in self._params().items()}
        for path, strength in specs:
            plan_lora(path, strength, shapes, self.arch_config, strict=strict)

    def _restore(self, params: dict[str, nn.Parameter] | None = None) -> None:
        if not self._originals:
            return
        params = params or self._params()
        with torch.no_grad():
            for name, original in self._originals.items():
                params[name].copy_(original)
        self._originals.clear()

    def unload(self) -> None:
        """Remove every LoRA: the touched parameters get their original tensors back (bit-identical)."""
        self._restore()
        self._identity = ()
        self.active = []
        self.reports = []


def lora_manager(model: nn.Module) -> LoraManager:
    """The model's LoRA manager (made on first use and kept on the model)."""
    manager = getattr(model, "_fastvideo_lora_manager", None)
    if manager is None:
        manager = LoraManager(model)
        object.__setattr__(model, "_fastvideo_lora_manager", manager)
    return manager


def apply_loras(model: nn.Module, loras: Iterable[Any] | None, *, strict: bool = True) -> list[LoraReport]:
    """Merge exactly ``loras`` ([(path, strength), ...]) into ``model``, replacing the previous set."""
    return lora_manager(model).set_loras(loras, strict=strict)

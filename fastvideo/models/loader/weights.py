"""Torch side of weight loading: build on meta, map names, materialise.

Peak memory stays near one copy of the weights: the module is created with
parameters on the meta device (no allocation, no random init), each checkpoint
tensor is read, renamed (and fused where a rule merges), cast, and assigned into
the module in place of its meta parameter.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from fastvideo.mapping.rules import (
    MappingReport,
    Rule,
    TargetInfo,
    TensorInfo,
    build_report,
    compile_rules,
    map_name,
)


class WeightLoadError(ValueError):
    """Weights that do not fit the model; the message lists what is wrong."""

    def __init__(self, message: str, report: MappingReport | None = None):
        super().__init__(message)
        self.report = report


@contextlib.contextmanager
def empty_init() -> Iterator[None]:
    """Create modules with parameters on the meta device and no random init.

    Buffers stay real (they are small and often computed in ``__init__``, e.g.
    position ids), so no module needs special treatment afterwards.
    """
    original_register = nn.Module.register_parameter

    def register_parameter(self, name, param):
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original_register(self, name, param)

    init_fns = [n for n in dir(nn.init) if n.endswith("_") and not n.startswith("_")]
    saved = {n: getattr(nn.init, n) for n in init_fns}

    def no_init(tensor, *args, **kwargs):
        return tensor

    nn.Module.register_parameter = register_parameter  # type: ignore[method-assign]
    for n in init_fns:
        setattr(nn.init, n, no_init)
    try:
        with torch.device("cpu"):
            yield
    finally:
        nn.Module.register_parameter = original_register  # type: ignore[method-assign]
        for n, fn in saved.items():
            setattr(nn.init, n, fn)


def target_infos(module: nn.Module) -> dict[str, TargetInfo]:
    """Model keys and shapes (tied parameters listed once, with their aliases)."""
    out: dict[str, TargetInfo] = {}
    first_name: dict[int, str] = {}
    aliases: dict[str, list[str]] = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        key = id(p)
        if key in first_name:
            aliases[first_name[key]].append(name)
            continue
        first_name[key] = name
        aliases[name] = []
        out[name] = TargetInfo(tuple(p.shape))
    for name, buf in _persistent_buffers(module):
        out[name] = TargetInfo(tuple(buf.shape))
    return {k: TargetInfo(v.shape, tuple(aliases.get(k, ()))) for k, v in out.items()}


def _persistent_buffers(module: nn.Module):
    for mod_name, mod in module.named_modules():
        for bname, buf in mod._buffers.items():
            if buf is None or bname in mod._non_persistent_buffers_set:
                continue
            yield (f"{mod_name}.{bname}" if mod_name else bname), buf


def map_state_dict(
    items: Iterable[tuple[str, torch.Tensor]], mapping: dict[str, Any] | list[Rule]
) -> tuple[dict[str, torch.Tensor], dict[str, tuple[str, int, int]]]:
    """Rename (and fuse) tensors by the rules.

    Returns the mapped state dict and the reverse mapping
    ``target -> (source, merge_index, merge_count)`` (one entry per part for fused
    targets, keyed ``target`` for plain renames and ``target#i`` for parts).
    """
    rules = mapping if isinstance(mapping, list) else compile_rules(mapping)
    out: dict[str, torch.Tensor] = {}
    reverse: dict[str, tuple[str, int, int]] = {}
    pending: dict[str, dict[int, torch.Tensor]] = {}
    counts: dict[str, int] = {}
    for name, tensor in items:
        target, rule = map_name(name, rules)
        if rule is not None and rule.is_merge:
            parts = pending.setdefault(target, {})
            parts[rule.merge_index] = tensor  # type: ignore[index]
            counts[target] = rule.merge_count  # type: ignore[assignment]
            reverse[f"{target}#{rule.merge_index}"] = (name, rule.merge_index, rule.merge_count)  # type: ignore[assignment]
            if len(parts) == rule.merge_count:
                out[target] = torch.cat([parts[i] for i in range(rule.merge_count)], dim=0)  # type: ignore[arg-type]
                del pending[target]
        else:
            out[target] = tensor
            reverse[target] = (name, 0, 1)
    if pending:
        t, parts = next(iter(pending.items()))
        raise WeightLoadError(f"fused weight {t} is incomplete: has parts {sorted(parts)} of {counts[t]}")
    return out, reverse


def unmap_state_dict(
    state_dict: dict[str, torch.Tensor], reverse: dict[str, tuple[str, int, int]]
) -> dict[str, torch.Tensor]:
    """Inverse of :func:`map_state_dict`: back to the checkpoint's own names (fused tensors split)."""
    out: dict[str, torch.Tensor] = {}
    fused_parts: dict[str, list[tuple[int, str]]] = {}
    for key, (source, idx, _count) in reverse.items():
        if "#" in key:
            fused_parts.setdefault(key.split("#")[0], []).append((idx, source))
        elif key in state_dict:
            out[source] = state_dict[key]
    for target, parts in fused_parts.items():
        parts.sort()
        chunks = torch.chunk(state_dict[target], len(parts), dim=0)
        for (_, source), chunk in zip(parts, chunks):
            out[source] = chunk.clone()
    return out


def keep_in_fp32(name: str, patterns: list[str]) -> bool:
    return any(re.search(p, name) for p in patterns)


def materialize(
    module: nn.Module,
    state_dict: dict[str, torch.Tensor],
    *,
    dtype: torch.dtype | None = None,
    keep_fp32: list[str] | None = None,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """Assign tensors into a meta-built module (strict: every parameter must be given).

    Floating tensors are cast to ``dtype`` except names matching ``keep_fp32``
    (kept in float32, as the reference does).  Tied parameters stay tied.
    """
    keep_fp32 = keep_fp32 or []
    infos = target_infos(module)
    missing = [k for k in infos if k not in state_dict]
    unexpected = [k for k in state_dict if k not in infos]
    if missing or unexpected:
        raise WeightLoadError(
            f"{type(module).__name__}: {len(missing)} missing {missing[:5]}, {len(unexpected)} unexpected {unexpected[:5]}"
        )
    for name, tensor in state_dict.items():
        if tensor.is_floating_point():
            if keep_in_fp32(name, keep_fp32):
                tensor = tensor.to(torch.float32)
            elif dtype is not None:
                tensor = tensor.to(dtype)
        tensor = tensor.to(device)
        owner, attr = _owner(module, name)
        if attr in owner._parameters:
            old = owner._parameters[attr]
            if tuple(old.shape) != tuple(tensor.shape):
                raise WeightLoadError(f"{name}: checkpoint shape {list(tensor.shape)}, model {list(old.shape)}")
            owner._parameters[attr] = nn.Parameter(tensor, requires_grad=old.requires_grad)
        else:
            owner._buffers[attr] = tensor
        for alias in infos[name].aliases:
            a_owner, a_attr = _owner(module, alias)
            a_owner._parameters[a_attr] = owner._parameters[attr]
    # Non-persistent buffers were created for real by empty_init; move them along.
    for mod in module.modules():
        for bname, buf in list(mod._buffers.items()):
            if buf is not None and bname in mod._non_persistent_buffers_set:
                mod._buffers[bname] = buf.to(device)
    leftover = [n for n, p in module.named_parameters() if p.is_meta]
    if leftover:
        raise WeightLoadError(f"{type(module).__name__}: parameters never loaded: {leftover[:5]}")
    return module


def _owner(module: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, _, attr = name.rpartition(".")
    return (module.get_submodule(path) if path else module), attr


def load_mapped_weights(
    module: nn.Module,
    files: list,
    mapping: dict[str, Any],
    *,
    component: str = "",
    dtype: torch.dtype | None = None,
    keep_fp32: list[str] | None = None,
    device: torch.device | str = "cpu",
    strict: bool = True,
    source_infos: dict[str, TensorInfo] | None = None,
) -> tuple[MappingReport, dict[str, tuple[str, int, int]]]:
    """Check the mapping on headers first (fail fast, no tensor read), then load."""
    from fastvideo.models.loader.checkpoint import iter_tensors, read_headers

    rules = compile_rules(mapping)
    if source_infos is None:
        source_infos = read_headers(files)
    report = build_report(source_infos, target_infos(module), rules, component)
    if strict and not report.ok:
        raise WeightLoadError(
            f"{component or type(module).__name__}: checkpoint does not fit the model\n{report.summary()}", report
        )
    wanted = {r.source for r in report.rows if r.source and r.status in ("mapped", "merged")}
    state_dict, reverse = map_state_dict(iter_tensors(files, wanted), rules)
    materialize(module, state_dict, dtype=dtype, keep_fp32=keep_fp32, device=device)
    return report, reverse


def export_state_dict(module: nn.Module, mapping: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The module's weights under checkpoint names, by inverting the rules.

    Works for a module that was never loaded from a checkpoint (tiny models,
    training): fused targets are split back into their parts.
    """
    from fastvideo.mapping.rules import invert_name

    rules = compile_rules(mapping)
    out: dict[str, torch.Tensor] = {}
    state = module.state_dict()
    for name in target_infos(module):
        tensor = state[name]
        sources = invert_name(name, rules)
        chunks = torch.chunk(tensor, len(sources), dim=0) if len(sources) > 1 else (tensor,)
        for (source, _, _), chunk in zip(sources, chunks):
            out[source] = chunk.contiguous().clone()
    return out

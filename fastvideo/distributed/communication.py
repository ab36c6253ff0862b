"""Small collectives used by sequence / CFG parallelism (gloo and NCCL alike)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def all_gather_cat(x: torch.Tensor, group, dim: int = 0) -> torch.Tensor:
    """Concatenate every rank's ``x`` (same shape on all ranks) along ``dim``, in group-rank order."""
    world = dist.get_world_size(group)
    if world == 1:
        return x
    x = x.contiguous()
    if x.device.type == "cuda":
        out = torch.empty((world * x.shape[0], *x.shape[1:]), dtype=x.dtype, device=x.device)
        dist.all_gather_into_tensor(out, x, group=group)
        return out if dim == 0 else torch.cat(out.chunk(world, dim=0), dim=dim)
    parts = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(parts, x, group=group)
    return torch.cat(parts, dim=dim)


def pad_to_multiple(x: torch.Tensor, multiple: int, dim: int, value: float = 0.0) -> torch.Tensor:
    """Pad ``x`` at the end of ``dim`` so its size is a multiple of ``multiple``."""
    pad = (-x.shape[dim]) % multiple
    if pad == 0:
        return x
    widths = [0, 0] * (x.ndim - dim - 1) + [0, pad]
    return F.pad(x, widths, value=value)


def any_rank(flag: bool, device: torch.device | str = "cpu", group=None) -> bool:
    """True on every rank when ``flag`` is True on any rank (one tiny all_reduce; no-op without a group)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size(group) == 1:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group)
    return bool(t.item())

"""3D rotary position embedding for video tokens, and the q/k RMSNorm + RoPE step of self-attention."""

from __future__ import annotations

import torch
from torch import nn

from fastvideo.kernels import qk_norm_rope as fused_qk_norm_rope

ROPE_THETA = 10000.0


def rope_dims(head_dim: int) -> tuple[int, int, int]:
    """How a head's channels split over (time, height, width): d - 4*(d//6), 2*(d//6), 2*(d//6)."""
    hw = 2 * (head_dim // 6)
    return head_dim - 2 * hw, hw, hw


def rope_cos_sin(
    grid: tuple[int, int, int], head_dim: int, device: torch.device | str, theta: float = ROPE_THETA
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of the 3D RoPE angles, each [S, head_dim/2] float32, tokens in (f, h, w) order.

    Channel pair ``j`` of a head rotates by ``pos_axis * theta^(-2j/dim_axis)``
    where the axis (time, height or width) owning the pair is given by
    :func:`rope_dims`.  Angles are computed in float64 (as the reference).
    """
    angles = []
    for n, dim in zip(grid, rope_dims(head_dim)):
        inv_freq = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64, device=device) / dim)
        angles.append(torch.outer(torch.arange(n, dtype=torch.float64, device=device), inv_freq))
    f, h, w = grid
    table = torch.cat(
        [
            angles[0][:, None, None, :].expand(f, h, w, -1),
            angles[1][None, :, None, :].expand(f, h, w, -1),
            angles[2][None, None, :, :].expand(f, h, w, -1),
        ],
        dim=-1,
    ).reshape(f * h * w, head_dim // 2)
    return table.cos().float(), table.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved channel pairs (x[2j], x[2j+1]) as complex numbers by e^{i*angle}.

    ``x`` [B, S, H, D]; ``cos``/``sin`` [S, D/2] (fp32, so the product is fp32).
    """
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    cos, sin = cos[None, :, None, :], sin[None, :, None, :]
    rotated = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return rotated.flatten(-2).type_as(x)


def qk_norm_rope(qkv: torch.Tensor, norm_q: nn.Module, norm_k: nn.Module, rope: tuple[torch.Tensor, torch.Tensor],
                 num_heads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v [B, S, heads, head_dim] from a fused projection's output ``qkv`` [B, S, 3*dim]: q and k
    RMS-normalised across all heads (``norm_q``/``norm_k``: :class:`~fastvideo.layers.norms.RMSNorm`) and
    rotated by ``rope`` (:func:`rope_cos_sin`'s table).

    For CUDA inference, where the kernel policy allows, one Triton kernel does both norms and rotations
    (``fastvideo.kernels.qk_norm_rope``); else the plain math below (the same, rounded the same way).
    """
    q, k, v = qkv.chunk(3, dim=-1)
    if fused_qk_norm_rope.available(qkv) and not torch.is_grad_enabled():  # inference on CUDA: one kernel
        q, k = fused_qk_norm_rope.qk_norm_rope(qkv, norm_q.weight, norm_k.weight, *rope, norm_q.eps, num_heads)
    else:
        q = apply_rope(norm_q(q).unflatten(2, (num_heads, -1)), *rope)
        k = apply_rope(norm_k(k).unflatten(2, (num_heads, -1)), *rope)
    return q, k, v.unflatten(2, (num_heads, -1))

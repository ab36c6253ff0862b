"""Normalisations shared by the models: fp32 LayerNorm, RMSNorm over the last dim (q/k), the VAE's
channel-first RMSNorm, and adaLN's ``modulate``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FP32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 and returned in the input dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.float() if self.weight is not None else None
        bias = self.bias.float() if self.bias is not None else None
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).to(x.dtype)


class RMSNorm(nn.Module):
    """x / rms(x) * weight over the last dim (used across all heads at once for q/k)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


class ChannelRMSNorm(nn.Module):
    """RMS norm over the channel dim (dim 1, channel-first video or frames): ``x / ||x||_2 * sqrt(C) * gamma``.

    Not :class:`RMSNorm`'s math: the norm runs over dim 1, the epsilon is ``F.normalize``'s (1e-12 on the
    L2 norm, not on the mean square), the gain is ``gamma`` shaped ``[C, 1, 1, 1]`` for 5D video
    (``images=False``) or ``[C, 1, 1]`` for 4D frames (the Wan VAE's checkpoints).  Half-precision inputs
    are normalised in fp32.
    """

    def __init__(self, dim: int, images: bool = False) -> None:
        super().__init__()
        self.scale = dim**0.5
        self.gamma = nn.Parameter(torch.ones((dim, 1, 1) if images else (dim, 1, 1, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 5 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last_3d):
            # Channels are the innermost dim in memory: one fused rms_norm pass (fp32 inside)
            # instead of upcast, norm, divide, downcast and two multiplies.  Same math:
            # x / ||x|| * sqrt(C) == x / sqrt(mean(x^2)); F.normalize's eps (1e-12 on the
            # norm) becomes 1e-24 / C on the mean square.
            c = x.shape[1]
            weight = self.gamma.reshape(c).to(x.dtype)
            y = F.rms_norm(x.permute(0, 2, 3, 4, 1), (c,), weight, eps=1e-24 / c)
            return y.permute(0, 4, 1, 2, 3)
        low = x.dtype in (torch.float16, torch.bfloat16)
        normed = F.normalize(x.float() if low else x, dim=1).to(x.dtype)
        return normed * self.scale * self.gamma


def modulate(norm: nn.Module, x: torch.Tensor, shift: torch.Tensor | None = None,
             scale: torch.Tensor | None = None) -> torch.Tensor:
    """adaLN: ``norm(x) * (1 + scale) + shift`` in fp32, cast back to x's dtype; without ``shift``/``scale``
    just ``norm(x)`` in fp32 (a norm with its own affine, or ``nn.Identity``), cast back."""
    y = norm(x.float())
    if scale is not None:
        y = y * (1 + scale) + shift
    return y.type_as(x)

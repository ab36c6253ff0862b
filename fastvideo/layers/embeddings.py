"""Timestep embeddings: the sinusoid and the MLP over it."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fastvideo.layers.mlp import MLP


def timestep_sinusoid(timestep: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """[cos(t * f_i), sin(t * f_i)] with f_i = max_period^(-i / (dim/2)), in fp32."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timestep.device) / half
    angles = timestep.float()[:, None] * torch.exp(exponent)[None, :]
    emb = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class TimestepEmbedding(MLP):
    """``MLP(sinusoid(t))``: ``fc_in`` (freq_dim -> dim), the activation (SiLU), ``fc_out`` (dim -> dim).

    Its ``forward`` is the MLP's, over the sinusoid (as the reference module: per-module comparisons see the
    same input); :meth:`embed` goes from the timesteps.
    """

    def __init__(self, freq_dim: int, dim: int, activation: nn.Module | None = None):
        super().__init__(freq_dim, dim, dim, activation if activation is not None else nn.SiLU())
        self.freq_dim = freq_dim

    def embed(self, timestep: torch.Tensor) -> torch.Tensor:
        """timestep [B] -> [B, dim], computed in the MLP's own parameter dtype (Wan keeps it fp32)."""
        return self(timestep_sinusoid(timestep, self.freq_dim).to(self.fc_in.weight.dtype))

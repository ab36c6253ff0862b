"""FLOPs of one Wan DiT forward, from the shapes alone.

Counts multiply-adds as 2 FLOPs.  Split into the self-attention core (QK^T and
AV, which run at the attention kernel's rate) and everything else that is a
matrix product (projections, FFN, cross-attention, embeddings; at the matmul
rate).  Elementwise work is not counted: the floor assumes it is free (fused).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class DiTWork:
    tokens: int
    attention_core: float  # FLOPs of the self-attention core
    matmul: float  # FLOPs of all other matrix products

    @property
    def total(self) -> float:
        return self.attention_core + self.matmul

    def floor_seconds(self, attention_flops_per_s: float, matmul_flops_per_s: float) -> float:
        return self.attention_core / attention_flops_per_s + self.matmul / matmul_flops_per_s


def latent_grid(num_frames: int, height: int, width: int, patch=(1, 2, 2), t_stride=4, s_stride=8):
    f = (num_frames - 1) // t_stride + 1
    return f // patch[0], height // s_stride // patch[1], width // s_stride // patch[2]


def dit_forward_work(cfg, num_frames: int, height: int, width: int, text_len: int = 512, batch: int = 1,
                     image_tokens: int = 0, geometry=None) -> DiTWork:
    """``geometry``: the model's LatentGeometry (default: Wan2.1's VAE, 4x8x8)."""
    if geometry is not None:
        f, h, w = latent_grid(num_frames, height, width, tuple(cfg.patch_size), geometry.temporal_compression,
                              geometry.spatial_compression)
    else:
        f, h, w = latent_grid(num_frames, height, width, tuple(cfg.patch_size))
    s = f * h * w
    d, ffn, layers = cfg.num_attention_heads * cfg.attention_head_dim, cfg.ffn_dim, cfg.num_layers
    ctx = text_len + image_tokens
    core = 4 * s * s * d * layers  # QK^T + AV
    per_layer = (
        2 * s * d * 3 * d + 2 * s * d * d  # self-attn qkv + out
        + 2 * s * d * d * 2 + 2 * ctx * d * d * 2  # cross q, out; k, v over the context
        + 4 * s * ctx * d  # cross-attention core
        + 4 * s * d * ffn  # FFN
    )
    patch_in = 2 * s * cfg.in_channels * math.prod(cfg.patch_size) * d
    head = 2 * s * d * cfg.out_channels * math.prod(cfg.patch_size)
    text = 2 * text_len * (cfg.text_dim * d + d * d)
    matmul = per_layer * layers + patch_in + head + text
    return DiTWork(s, float(core * batch), float(matmul * batch))

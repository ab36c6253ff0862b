"""LTX-2 text connectors: per-layer Gemma hidden states -> the video and the audio text contexts.

Procedure (LTX-2.0, Diffusers' ``LTX2TextConnectors``)::

    h      = Gemma hidden states of every layer            [B, L, C, n_layers]
    h      = (h - masked mean) / (masked max - min) * 8    per prompt and layer, padding -> 0
    h      = text_proj_in(flatten(h))                      [B, L, C]
    for each stream: valid tokens moved to the front, the tail filled with learned registers,
             1D transformer (RMSNorm -> self-attention with 1D RoPE, RMSNorm -> GELU FFN), RMSNorm
    mask   = all ones once registers fill the padding

LTX-2.3's per-modality projections (per-token RMS norm, one projection per stream) are supported too.
Built from the DiT's :class:`~fastvideo.models.dits.ltx2.LTX2Attention` and :mod:`fastvideo.layers`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fastvideo.configs.models.encoders.ltx2_connectors import LTX2TextConnectorsConfig
from fastvideo.models.dits.ltx2 import LTX2Attention, _rms, gelu_mlp, rope_table


def masked_mean_range_norm(h: torch.Tensor, lengths: torch.Tensor, padding_side: str = "left",
                           scale: float = 8.0, eps: float = 1e-6) -> torch.Tensor:
    """``[B, L, C, n]`` per-layer hidden states -> ``[B, L, C * n]`` normalised over each prompt's valid tokens."""
    b, seq, c, n = h.shape
    idx = torch.arange(seq, device=h.device)[None]
    if padding_side == "right":
        valid = idx < lengths[:, None]
    elif padding_side == "left":
        valid = idx >= seq - lengths[:, None]
    else:
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    valid = valid[:, :, None, None]
    mean = h.masked_fill(~valid, 0.0).sum(dim=(1, 2), keepdim=True) / ((lengths * c).view(b, 1, 1, 1) + eps)
    lo = h.masked_fill(~valid, float("inf")).amin(dim=(1, 2), keepdim=True)
    hi = h.masked_fill(~valid, float("-inf")).amax(dim=(1, 2), keepdim=True)
    out = ((h - mean) / (hi - lo + eps) * scale).flatten(2)
    return out.masked_fill(~valid.squeeze(-1).expand(-1, -1, c * n), 0.0).to(h.dtype)


class ConnectorBlock(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, gated: bool):
        super().__init__()
        self.attn1 = LTX2Attention(dim, heads, head_dim, gated=gated)
        self.ff = gelu_mlp(dim, 4 * dim, dim)

    def forward(self, x, rope, mask):
        x = x + self.attn1(_rms(x, 1e-6), rope_q=rope, mask=mask)
        return x + self.ff(_rms(x, 1e-6))


class Connector1D(nn.Module):
    """Registers in place of padding, then a few 1D transformer blocks."""

    def __init__(self, heads: int, head_dim: int, layers: int, registers: int | None, base_seq_len: int,
                 theta: float, double_precision: bool, gated: bool):
        super().__init__()
        self.dim = heads * head_dim
        self.base_seq_len, self.theta, self.double_precision = base_seq_len, theta, double_precision
        self.num_registers = registers
        self.learnable_registers = nn.Parameter(torch.empty(registers, self.dim)) if registers else None
        self.transformer_blocks = nn.ModuleList(ConnectorBlock(self.dim, heads, head_dim, gated)
                                                for _ in range(layers))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` [B, L, D], ``bias`` additive [B, L] (0 keep, very negative drop) -> (out, bias after)."""
        b, seq, _ = x.shape
        if self.learnable_registers is not None:
            if seq % self.num_registers:
                raise ValueError(f"text length {seq} is not a multiple of the connector's {self.num_registers} "
                                 "learned registers; pad prompts to a multiple of it (max_sequence_length)")
            registers = self.learnable_registers.repeat(seq // self.num_registers, 1)  # [L, D]
            keep = (bias >= -9000.0).int()
            order = torch.argsort(1 - keep, dim=1, stable=True)
            front = torch.gather(x, 1, order.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
            filled = torch.arange(seq, device=x.device)[None] < keep.sum(dim=1, keepdim=True)
            x = torch.where(filled.unsqueeze(-1), front, registers[None].to(x.dtype))
            bias = torch.zeros_like(bias)
        pos = torch.arange(seq, dtype=torch.float32, device=x.device)
        coords = torch.stack([pos, pos], dim=-1)[None, None].expand(b, 1, seq, 2)  # centre = pos
        rope = rope_table(coords, self.dim, (self.base_seq_len,), self.theta, self.double_precision)
        mask = None if bool((bias == 0).all()) else bias[:, None]
        for block in self.transformer_blocks:
            x = block(x, rope, mask)
        return _rms(x, 1e-6), bias


class LTX2TextConnectors(nn.Module):
    def __init__(self, config: LTX2TextConnectorsConfig):
        super().__init__()
        self.config = c = config
        text_dim = c.caption_channels * c.text_proj_in_factor
        if c.per_modality_projections:
            self.video_text_proj_in = nn.Linear(text_dim, c.video_hidden_dim, bias=c.proj_bias)
            self.audio_text_proj_in = nn.Linear(text_dim, c.audio_hidden_dim, bias=c.proj_bias)
        else:
            self.text_proj_in = nn.Linear(text_dim, c.caption_channels, bias=c.proj_bias)
        common = dict(base_seq_len=c.connector_rope_base_seq_len, theta=c.rope_theta,
                      double_precision=c.rope_double_precision)
        self.video_connector = Connector1D(c.video_connector_num_attention_heads, c.video_connector_attention_head_dim,
                                           c.video_connector_num_layers, c.video_connector_num_learnable_registers,
                                           gated=c.video_gated_attn, **common)
        self.audio_connector = Connector1D(c.audio_connector_num_attention_heads, c.audio_connector_attention_head_dim,
                                           c.audio_connector_num_layers, c.audio_connector_num_learnable_registers,
                                           gated=c.audio_gated_attn, **common)

    @classmethod
    def from_arch_config(cls, config: LTX2TextConnectorsConfig) -> LTX2TextConnectors:
        return cls(config)

    def forward(self, text_hidden_states: torch.Tensor, attention_mask: torch.Tensor, padding_side: str = "left",
                scale_factor: float = 8.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stacked hidden states ``[B, L, C, n]`` (or flattened ``[B, L, C*n]``) and the tokenizer's mask
        ``[B, L]`` -> (video context, audio context, mask ``[B, L]`` for the DiT)."""
        c = self.config
        h = text_hidden_states
        if h.ndim == 3:
            h = h.unflatten(2, (c.caption_channels, -1))
        if c.per_modality_projections:
            normed = (h * torch.rsqrt(h.pow(2).mean(dim=2, keepdim=True) + 1e-6)).flatten(2, 3)
            normed = torch.where(attention_mask.bool().unsqueeze(-1), normed, torch.zeros_like(normed))
            video = self.video_text_proj_in(normed * math.sqrt(c.video_hidden_dim / c.caption_channels))
            audio = self.audio_text_proj_in(normed * math.sqrt(c.audio_hidden_dim / c.caption_channels))
        else:
            normed = masked_mean_range_norm(h, attention_mask.sum(dim=-1), padding_side, scale_factor)
            video = audio = self.text_proj_in(normed)
        dtype = video.dtype
        bias = (attention_mask.to(torch.int64) - 1).to(dtype) * torch.finfo(dtype).max  # [B, L]
        video, video_bias = self.video_connector(video, bias)
        keep = (video_bias < 1e-6).to(torch.int64)  # [B, L]
        video = video * keep.unsqueeze(-1)
        audio, _ = self.audio_connector(audio, bias)
        return video, audio, keep

"""LTX-2 audio VAE: stereo log-mel spectrogram ``[B, 2, T, 64]`` <-> latent ``[B, 8, T/4, 16]``.

A 2D ResNet VAE (LDM layout: ``encoder.down.I.block.J``, ``mid.block_1/attn_1/block_2``,
``decoder.up.I``) with causal convolutions along time (padded only before), RMS "pixel" norms, SiLU;
downsampling by strided 3x3 convs, upsampling by nearest 2x + conv (dropping the first, causal, row).
The decoder crops or zero-pads its output to ``4 * T - 3`` frames and ``mel_bins``, as the reference.
The math follows Diffusers' ``AutoencoderKLLTX2Audio`` (0.42.1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fastvideo.configs.models.vaes.ltx2_audio import LTX2AudioVAEConfig

LATENT_DOWNSAMPLE = 4


class CausalConv2d(nn.Module):
    """Conv2d padded so that no output row (``height``: time) sees a later input row."""

    def __init__(self, cin: int, cout: int, kernel: int, causality_axis: str = "height"):
        super().__init__()
        p = kernel - 1
        self.padding = {
            "none": (p // 2, p - p // 2, p // 2, p - p // 2),
            "width": (p, 0, p // 2, p - p // 2),
            "width-compatibility": (p, 0, p // 2, p - p // 2),
            "height": (p // 2, p - p // 2, p, 0),
        }[causality_axis]
        self.conv = nn.Conv2d(cin, cout, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.padding))


def _conv(cfg: LTX2AudioVAEConfig, cin: int, cout: int, kernel: int = 3) -> nn.Module:
    if cfg.causality_axis is None:
        return nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
    return CausalConv2d(cin, cout, kernel, cfg.causality_axis)


class PixelNorm(nn.Module):
    """RMS norm over channels: ``x / sqrt(mean(x^2, dim=1) + eps)``."""

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / torch.sqrt(torch.mean(x**2, dim=1, keepdim=True) + self.eps)


def _norm(cfg: LTX2AudioVAEConfig, channels: int) -> nn.Module:
    if cfg.norm_type == "group":
        return nn.GroupNorm(32, channels, eps=1e-6)
    return PixelNorm(1e-6)


class ResnetBlock(nn.Module):
    def __init__(self, cfg: LTX2AudioVAEConfig, cin: int, cout: int):
        super().__init__()
        self.norm1 = _norm(cfg, cin)
        self.conv1 = _conv(cfg, cin, cout)
        self.norm2 = _norm(cfg, cout)
        self.conv2 = _conv(cfg, cout, cout)
        self.nin_shortcut = _conv(cfg, cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """Single-head attention over all (time, mel) positions with 1x1 conv projections."""

    def __init__(self, cfg: LTX2AudioVAEConfig, channels: int):
        super().__init__()
        self.norm = _norm(cfg, channels)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(channels, channels, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        b, c, hh, ww = x.shape
        q, k, v = (m(h).flatten(2).transpose(1, 2) for m in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj_out(out.transpose(1, 2).reshape(b, c, hh, ww))


class Downsample(nn.Module):
    _PAD = {"none": (0, 1, 0, 1), "width": (2, 0, 0, 1), "height": (0, 1, 2, 0), "width-compatibility": (1, 0, 0, 1)}

    def __init__(self, cfg: LTX2AudioVAEConfig, channels: int):
        super().__init__()
        self.pad = self._PAD[cfg.causality_axis]
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.pad))


class Upsample(nn.Module):
    def __init__(self, cfg: LTX2AudioVAEConfig, channels: int):
        super().__init__()
        self.axis = cfg.causality_axis
        self.conv = _conv(cfg, channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        if self.axis == "height":
            return x[:, :, 1:, :]
        if self.axis == "width":
            return x[:, :, :, 1:]
        return x


def _stage() -> nn.Module:
    stage = nn.Module()
    stage.block = nn.ModuleList()
    stage.attn = nn.ModuleList()
    return stage


def _mid(cfg: LTX2AudioVAEConfig, ch: int) -> nn.Module:
    mid = nn.Module()
    mid.block_1 = ResnetBlock(cfg, ch, ch)
    mid.attn_1 = AttnBlock(cfg, ch) if cfg.mid_block_add_attention else nn.Identity()
    mid.block_2 = ResnetBlock(cfg, ch, ch)
    return mid


def _run_mid(mid: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return mid.block_2(mid.attn_1(mid.block_1(x)))


def _run_stage(stage: nn.Module, x: torch.Tensor) -> torch.Tensor:
    for i, block in enumerate(stage.block):
        x = block(x)
        if len(stage.attn):
            x = stage.attn[i](x)
    return x


class Encoder(nn.Module):
    def __init__(self, cfg: LTX2AudioVAEConfig):
        super().__init__()
        ch, res = cfg.base_channels, cfg.resolution
        attn = set(cfg.attn_resolutions or ())
        self.conv_in = _conv(cfg, cfg.in_channels, ch)
        self.down = nn.ModuleList()
        for level, mult in enumerate(cfg.ch_mult):
            stage = _stage()
            out = cfg.base_channels * mult
            for _ in range(cfg.num_res_blocks):
                stage.block.append(ResnetBlock(cfg, ch, out))
                ch = out
                if res in attn:
                    stage.attn.append(AttnBlock(cfg, ch))
            if level != len(cfg.ch_mult) - 1:
                stage.downsample = Downsample(cfg, ch)
                res //= 2
            self.down.append(stage)
        self.mid = _mid(cfg, ch)
        self.norm_out = _norm(cfg, ch)
        self.conv_out = _conv(cfg, ch, 2 * cfg.latent_channels if cfg.double_z else cfg.latent_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for stage in self.down:
            x = _run_stage(stage, x)
            if hasattr(stage, "downsample"):
                x = stage.downsample(x)
        x = _run_mid(self.mid, x)
        return self.conv_out(F.silu(self.norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, cfg: LTX2AudioVAEConfig):
        super().__init__()
        self.cfg = cfg
        n = len(cfg.ch_mult)
        ch = cfg.base_channels * cfg.ch_mult[-1]
        res = cfg.resolution // 2 ** (n - 1)
        attn = set(cfg.attn_resolutions or ())
        self.conv_in = _conv(cfg, cfg.latent_channels, ch)
        self.mid = _mid(cfg, ch)
        stages: list[nn.Module] = []
        for level in reversed(range(n)):
            stage = _stage()
            out = cfg.base_channels * cfg.ch_mult[level]
            for _ in range(cfg.num_res_blocks + 1):
                stage.block.append(ResnetBlock(cfg, ch, out))
                ch = out
                if res in attn:
                    stage.attn.append(AttnBlock(cfg, ch))
            if level != 0:
                stage.upsample = Upsample(cfg, ch)
                res *= 2
            stages.insert(0, stage)
        self.up = nn.ModuleList(stages)
        self.norm_out = _norm(cfg, ch)
        self.conv_out = _conv(cfg, ch, cfg.output_channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        frames, bins = z.shape[2:]
        target_t = frames * LATENT_DOWNSAMPLE
        if cfg.causality_axis is not None:
            target_t = max(target_t - (LATENT_DOWNSAMPLE - 1), 1)
        target_f = cfg.mel_bins if cfg.mel_bins is not None else bins
        x = _run_mid(self.mid, self.conv_in(z))
        for level in reversed(range(len(self.up))):
            stage = self.up[level]
            x = _run_stage(stage, x)
            if hasattr(stage, "upsample"):
                x = stage.upsample(x)
        x = self.conv_out(F.silu(self.norm_out(x)))
        x = x[:, : cfg.output_channels, :target_t, :target_f]
        pad_t, pad_f = target_t - x.shape[2], target_f - x.shape[3]
        if pad_t > 0 or pad_f > 0:
            x = F.pad(x, (0, max(pad_f, 0), 0, max(pad_t, 0)))
        return x


class AutoencoderKLLTX2Audio(nn.Module):
    def __init__(self, config: LTX2AudioVAEConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.register_buffer("latents_mean", torch.zeros(config.base_channels))
        self.register_buffer("latents_std", torch.ones(config.base_channels))

    @classmethod
    def from_arch_config(cls, config: LTX2AudioVAEConfig) -> AutoencoderKLLTX2Audio:
        return cls(config)

    @property
    def dtype(self) -> torch.dtype:
        return self.encoder.conv_out.conv.weight.dtype if hasattr(self.encoder.conv_out, "conv") \
            else self.encoder.conv_out.weight.dtype

    def encode_moments(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mel spectrogram -> (mean, logvar) of the latent (logvar clamped to [-30, 20])."""
        h = self.encoder(mel)
        mean, logvar = h.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """The posterior's mode (mean)."""
        return self.encode_moments(mel)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

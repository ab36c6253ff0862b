"""LTX-2 vocoder: mel spectrogram -> waveform (HiFi-GAN generator, as Diffusers' ``LTX2Vocoder``).

``conv_in`` (k=7) -> for each upsampling stage: LeakyReLU, transposed conv (stride = factor), the mean
of several multi-receptive-field residual blocks (dilated convs) -> activation -> ``conv_out`` (k=7)
-> tanh.  The Snake / SnakeBeta activations with anti-aliased (Kaiser-sinc up/down sampling)
application, used by LTX-2.3's vocoders, are here too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fastvideo.configs.models.audio.ltx2_vocoder import LTX2VocoderConfig


def kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """Low-pass Kaiser-windowed sinc kernel ``[kernel_size]`` (BigVGAN's anti-aliasing filter)."""
    half = kernel_size // 2
    amplitude = 2.285 * (half - 1) * math.pi * 4 * half_width + 7.95
    if amplitude > 50.0:
        beta = 0.1102 * (amplitude - 8.7)
    elif amplitude >= 21.0:
        beta = 0.5842 * (amplitude - 21) ** 0.4 + 0.07886 * (amplitude - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False)
    t = torch.arange(-half, half) + 0.5 if kernel_size % 2 == 0 else torch.arange(kernel_size) - half
    if cutoff == 0.0:
        return torch.zeros_like(t)
    t = 2 * cutoff * t
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(math.pi * t) / math.pi / t)
    f = 2 * cutoff * window * sinc
    return f / f.sum()


class SnakeBeta(nn.Module):
    """``x + 1 / (beta + eps) * sin(alpha * x)^2`` per channel (log-scale parameters; Snake: beta = alpha)."""

    def __init__(self, channels: int, use_beta: bool = True):
        super().__init__()
        self.use_beta = use_beta
        self.alpha = nn.Parameter(torch.zeros(channels))
        if use_beta:
            self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = torch.exp(self.alpha.view(1, -1, 1))
        amp = torch.exp(self.beta.view(1, -1, 1)) if self.use_beta else alpha
        return x + (1.0 / (amp + 1e-9)) * torch.sin(x * alpha).pow(2)


class UpSample(nn.Module):
    """Kaiser-sinc interpolation by ``ratio`` (a grouped transposed conv with replicate padding)."""

    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.ratio, self.kernel_size = ratio, kernel_size
        self.pad = kernel_size // ratio - 1
        self.pad_left = self.pad * ratio + (kernel_size - ratio) // 2
        self.pad_right = self.pad * ratio + (kernel_size - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel_size).view(1, 1, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        y = F.pad(x, (self.pad, self.pad), mode="replicate")
        y = self.ratio * F.conv_transpose1d(y, self.filter.to(x.dtype).expand(c, -1, -1), stride=self.ratio, groups=c)
        return y[..., self.pad_left:-self.pad_right]


class DownSample(nn.Module):
    """Kaiser-sinc low-pass and decimation by ``ratio`` (a grouped strided conv with replicate padding)."""

    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.ratio = ratio
        self.pad_left, self.pad_right = kernel_size // 2 + kernel_size % 2 - 1, kernel_size // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel_size).view(1, 1, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        y = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(y, self.filter.to(y.dtype).expand(c, -1, -1), stride=self.ratio, groups=c)


class AntiAliasAct(nn.Module):
    """Upsample, activation, downsample: the activation without aliasing (BigVGAN)."""

    def __init__(self, act: nn.Module, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.upsample = UpSample(ratio, kernel_size)
        self.act = act
        self.downsample = DownSample(ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))


def _activation(cfg: LTX2VocoderConfig, channels: int) -> nn.Module:
    if cfg.act_fn == "leaky_relu":
        act: nn.Module = nn.LeakyReLU(cfg.leaky_relu_negative_slope)
    else:
        act = SnakeBeta(channels, use_beta=cfg.act_fn == "snakebeta")
    return AntiAliasAct(act, cfg.antialias_ratio, cfg.antialias_kernel_size) if cfg.antialias else act


class ResBlock(nn.Module):
    """``x += conv2(act2(conv1(act1(x))))`` for each dilation ("same" padding)."""

    def __init__(self, cfg: LTX2VocoderConfig, channels: int, kernel_size: int, dilations: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel_size, dilation=d, padding="same")
                                    for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel_size, padding="same") for _ in dilations)
        self.acts1 = nn.ModuleList(_activation(cfg, channels) for _ in dilations)
        self.acts2 = nn.ModuleList(_activation(cfg, channels) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for a1, c1, a2, c2 in zip(self.acts1, self.convs1, self.acts2, self.convs2):
            x = x + c2(a2(c1(a1(x))))
        return x


class LTX2Vocoder(nn.Module):
    def __init__(self, config: LTX2VocoderConfig):
        super().__init__()
        self.config = c = config
        self.conv_in = nn.Conv1d(c.in_channels, c.hidden_channels, 7, padding=3)
        self.upsamplers = nn.ModuleList()
        self.resnets = nn.ModuleList()
        ch = c.hidden_channels
        for factor, k in zip(c.upsample_factors, c.upsample_kernel_sizes):
            self.upsamplers.append(nn.ConvTranspose1d(ch, ch // 2, k, stride=factor, padding=(k - factor) // 2))
            ch //= 2
            for rk, dil in zip(c.resnet_kernel_sizes, c.resnet_dilations):
                self.resnets.append(ResBlock(c, ch, rk, dil))
        if c.act_fn == "leaky_relu":
            self.act_out: nn.Module = nn.LeakyReLU()  # slope 0.01, as the reference
        else:
            self.act_out = AntiAliasAct(SnakeBeta(ch, use_beta=True), c.antialias_ratio, c.antialias_kernel_size)
        self.conv_out = nn.Conv1d(ch, c.out_channels, 7, padding=3, bias=c.final_bias)

    @classmethod
    def from_arch_config(cls, config: LTX2VocoderConfig) -> LTX2Vocoder:
        return cls(config)

    @property
    def hop_samples(self) -> int:
        """Waveform samples per mel frame."""
        return math.prod(self.config.upsample_factors)

    def forward(self, mel: torch.Tensor, time_last: bool = False) -> torch.Tensor:
        """``[B, C, T, M]`` (or ``[B, C, M, T]`` with ``time_last``) -> waveform ``[B, out_channels, T * hop]``."""
        x = mel if time_last else mel.transpose(2, 3)
        x = self.conv_in(x.flatten(1, 2))
        per = len(self.config.resnet_kernel_sizes)
        for i, up in enumerate(self.upsamplers):
            if self.config.act_fn == "leaky_relu":
                x = F.leaky_relu(x, self.config.leaky_relu_negative_slope)
            x = up(x)
            x = torch.stack([self.resnets[j](x) for j in range(i * per, (i + 1) * per)]).mean(dim=0)
        x = self.conv_out(self.act_out(x))
        if self.config.final_act_fn == "tanh":
            x = torch.tanh(x)
        elif self.config.final_act_fn == "clamp":
            x = x.clamp(-1, 1)
        return x

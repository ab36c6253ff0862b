"""Wan2.2 video VAE (same parameter names and numerics as Diffusers ``AutoencoderKLWan`` with ``is_residual``).

Shape summary (released TI2V-5B config: base_dim 160, decoder_base_dim 256, z_dim 48, patch_size 2)::

    video [B, 3, 1 + 4n, H, W] in [-1, 1]
      --patchify--> [B, 12, 1 + 4n, H/2, W/2]          (each 2x2 pixel block becomes 4x the channels)
      --encoder-->  [B, 2*48, 1 + n, H/16, W/16]        (mean | logvar)
      --decoder-->  [B, 12, 1 + 4n, H/2, W/2]
      --unpatchify--> [B, 3, 1 + 4n, H, W]  clamped to [-1, 1]

What differs from the Wan2.1 VAE (``vaes/wan.py``, whose causal conv, RMS norm,
attention, resample and feature cache are reused here unchanged):

* **Patchify.**  ``patch_size`` 2 folds every 2x2 pixel block into channels
  (channel ``c * 4 + r * 2 + q`` holds pixel ``(2h + q, 2w + r)``), so the
  encoder sees 12 channels at half resolution and the decoder emits 12.
* **Residual down blocks.**  Each encoder level is one block:
  ``resnets`` (``num_res_blocks`` residual blocks) then an optional
  ``downsampler``, plus a parameter-free shortcut ``avg_shortcut`` that averages
  groups of channels of the space(-time)-to-channel folded input.
* **Residual up blocks.**  Each decoder level: ``num_res_blocks + 1`` residual
  blocks then an optional ``upsampler`` whose conv keeps the channel count (Wan2.1
  halves it), plus a parameter-free shortcut ``avg_shortcut`` that repeats
  channels and unfolds them into pixels (and frames).  On the first latent frame
  the time upsampler does not double the frame, so the shortcut drops its first
  duplicated frame too.  "First chunk" is tracked in the per-call feature cache.

Chunking is Wan's: the encoder runs on frames 1, 4, 4, ... and the decoder on
one latent frame at a time, with the causal feature cache carrying the last two
frames of every causal conv's input between chunks (see ``vaes/wan.py``).

Tiling sizes are pixels of the video, like the Wan2.1 VAE here.  Note for
parity work: Diffusers' ``tiled_encode`` slices the *patchified* input with the
tile sizes, so its encoder tiles cover twice the configured pixels; ours equal
Diffusers' with half the tile sizes for encoding (decode tiles agree as given).
Decoded tiles are blended in the patchified space before unpatchify, as Diffusers does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fastvideo.configs.models.vaes.wan22 import Wan22VAEConfig
from fastvideo.models.vaes.wan import (
    ENCODE_CHUNK,
    AutoencoderKLWan,
    CausalConv3d,
    FeatureCache,
    MidBlock,
    Resample,
    ResidualBlock,
    RMSNorm,
)


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """``[B, C, T, H, W] -> [B, C*p*p, T, H/p, W/p]``; channel ``(c, r, q)`` holds pixel ``(h*p + q, w*p + r)``."""
    if p == 1:
        return x
    b, c, t, h, w = x.shape
    x = x.reshape(b, c, t, h // p, p, w // p, p)  # b c t h q w r
    return x.permute(0, 1, 6, 4, 2, 3, 5).reshape(b, c * p * p, t, h // p, w // p)


def unpatchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """Inverse of :func:`patchify`."""
    if p == 1:
        return x
    b, cpp, t, h, w = x.shape
    x = x.reshape(b, cpp // (p * p), p, p, t, h, w)  # b c r q t h w
    return x.permute(0, 1, 4, 5, 3, 6, 2).reshape(b, cpp // (p * p), t, h * p, w * p)


class AvgDown3D(nn.Module):
    """Parameter-free shortcut of a down block: fold ``ft x fs x fs`` blocks into channels, average groups.

    The time axis is zero padded at the front to a multiple of ``ft`` (so the
    single first frame is averaged with a zero frame).  The ``C * ft * fs * fs``
    folded channels, ordered ``(c, t-offset, h-offset, w-offset)``, are split into
    ``out_dim`` consecutive groups and each group is averaged.
    """

    def __init__(self, in_dim: int, out_dim: int, factor_t: int, factor_s: int) -> None:
        super().__init__()
        factor = factor_t * factor_s * factor_s
        if (in_dim * factor) % out_dim:
            raise ValueError(f"AvgDown3D: {in_dim} channels * {factor} is not a multiple of {out_dim}")
        self.out_dim, self.ft, self.fs = out_dim, factor_t, factor_s
        self.group = in_dim * factor // out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ft, fs = self.ft, self.fs
        x = F.pad(x, (0, 0, 0, 0, (-x.shape[2]) % ft, 0))
        b, c, t, h, w = x.shape
        x = x.reshape(b, c, t // ft, ft, h // fs, fs, w // fs, fs).permute(0, 1, 3, 5, 7, 2, 4, 6)
        x = x.reshape(b, self.out_dim, self.group, t // ft, h // fs, w // fs)
        return x.mean(dim=2)


class DupUp3D(nn.Module):
    """Parameter-free shortcut of an up block: repeat channels, unfold them into ``ft x fs x fs`` blocks.

    Each input channel is repeated ``out_dim * ft * fs * fs / in_dim`` times; the
    result, read as ``(out_channel, t-offset, h-offset, w-offset)``, is spread into
    frames and pixels.  On the first chunk the first ``ft - 1`` frames are dropped
    (the time upsampler keeps the first latent frame as one frame).
    """

    def __init__(self, in_dim: int, out_dim: int, factor_t: int, factor_s: int) -> None:
        super().__init__()
        factor = factor_t * factor_s * factor_s
        if (out_dim * factor) % in_dim:
            raise ValueError(f"DupUp3D: {out_dim} channels * {factor} is not a multiple of {in_dim}")
        self.out_dim, self.ft, self.fs = out_dim, factor_t, factor_s
        self.repeats = out_dim * factor // in_dim

    def forward(self, x: torch.Tensor, first_chunk: bool = False) -> torch.Tensor:
        ft, fs = self.ft, self.fs
        b, _, t, h, w = x.shape
        x = x.repeat_interleave(self.repeats, dim=1)
        x = x.reshape(b, self.out_dim, ft, fs, fs, t, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4)
        x = x.reshape(b, self.out_dim, t * ft, h * fs, w * fs)
        return x[:, :, ft - 1:] if first_chunk else x


class Resample22(Resample):
    """Wan2.2's resample: the upsampling conv keeps the channel count (Wan2.1's halves it)."""

    def __init__(self, dim: int, mode: str) -> None:
        super().__init__(dim, mode)
        if mode.startswith("upsample"):
            self.resample[1] = nn.Conv2d(dim, dim, 3, padding=1)


class ResidualDownBlock(nn.Module):
    """``resnets`` (+ ``downsampler``) + the parameter-free ``avg_shortcut`` of the block input."""

    def __init__(self, in_dim: int, out_dim: int, num_res_blocks: int, temporal: bool, down: bool) -> None:
        super().__init__()
        self.avg_shortcut = AvgDown3D(in_dim, out_dim, 2 if temporal else 1, 2 if down else 1)
        self.resnets = nn.ModuleList(
            [ResidualBlock(in_dim if j == 0 else out_dim, out_dim) for j in range(num_res_blocks)]
        )
        self.downsampler = Resample22(out_dim, "downsample3d" if temporal else "downsample2d") if down else None

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        shortcut = self.avg_shortcut(x)
        for resnet in self.resnets:
            x = resnet(x, cache)
        if self.downsampler is not None:
            x = self.downsampler(x, cache)
        return x + shortcut


class ResidualUpBlock(nn.Module):
    """``num_res_blocks + 1`` resnets (+ ``upsampler``) + the parameter-free ``avg_shortcut`` (when upsampling)."""

    def __init__(self, in_dim: int, out_dim: int, num_res_blocks: int, temporal: bool, up: bool) -> None:
        super().__init__()
        self.avg_shortcut = DupUp3D(in_dim, out_dim, 2 if temporal else 1, 2) if up else None
        self.resnets = nn.ModuleList(
            [ResidualBlock(in_dim if j == 0 else out_dim, out_dim) for j in range(num_res_blocks + 1)]
        )
        self.upsampler = Resample22(out_dim, "upsample3d" if temporal else "upsample2d") if up else None

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None, first_chunk: bool = False) -> torch.Tensor:
        shortcut = self.avg_shortcut(x, first_chunk) if self.avg_shortcut is not None else None
        for resnet in self.resnets:
            x = resnet(x, cache)
        if self.upsampler is not None:
            x = self.upsampler(x, cache)
        return x if shortcut is None else x + shortcut


class Encoder22(nn.Module):
    """conv_in -> one residual down block per level -> mid block -> norm, SiLU, conv_out.

    Channels per level ``base_dim * dim_mult[i]``; every level but the last halves
    the resolution (and the frame rate where ``temperal_downsample[i]``).
    """

    def __init__(self, in_channels, dim, out_channels, dim_mult, num_res_blocks, temperal_downsample):
        super().__init__()
        dims = [dim * m for m in [1, *dim_mult]]
        levels = len(dim_mult)
        self.conv_in = CausalConv3d(in_channels, dims[0], 3, padding=1)
        self.down_blocks = nn.ModuleList([
            ResidualDownBlock(dims[i], dims[i + 1], num_res_blocks,
                              temporal=i != levels - 1 and bool(temperal_downsample[i]), down=i != levels - 1)
            for i in range(levels)
        ])
        self.mid_block = MidBlock(dims[-1])
        self.norm_out = RMSNorm(dims[-1])
        self.conv_out = CausalConv3d(dims[-1], out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        x = self.conv_in(x, cache)
        for block in self.down_blocks:
            x = block(x, cache)
        x = self.mid_block(x, cache)
        return self.conv_out(F.silu(self.norm_out(x)), cache)


class Decoder22(nn.Module):
    """conv_in -> mid block -> one residual up block per level (deepest first) -> norm, SiLU, conv_out.

    Channels per level ``dim * dim_mult[::-1][i]`` (no halving by the upsamplers).
    The first call with a fresh cache is the first chunk (one latent frame -> one frame).
    """

    def __init__(self, z_dim, dim, out_channels, dim_mult, num_res_blocks, temperal_upsample):
        super().__init__()
        dims = [dim * m for m in [dim_mult[-1], *dim_mult[::-1]]]
        levels = len(dim_mult)
        self.conv_in = CausalConv3d(z_dim, dims[0], 3, padding=1)
        self.mid_block = MidBlock(dims[0])
        self.up_blocks = nn.ModuleList([
            ResidualUpBlock(dims[i], dims[i + 1], num_res_blocks,
                            temporal=i != levels - 1 and bool(temperal_upsample[i]), up=i != levels - 1)
            for i in range(levels)
        ])
        self.norm_out = RMSNorm(dims[-1])
        self.conv_out = CausalConv3d(dims[-1], out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        first_chunk = cache is not None and cache.get(self) is None
        if cache is not None:
            cache.set(self, "first chunk done")
        x = self.conv_in(x, cache)
        x = self.mid_block(x, cache)
        for block in self.up_blocks:
            x = block(x, cache, first_chunk)
        return self.conv_out(F.silu(self.norm_out(x)), cache)


class AutoencoderKLWan22(AutoencoderKLWan):
    """Wan2.2 VAE: patchified, residual-block encoder/decoder; chunking, tiling and latent stats as in Wan2.1.

    Parameter names equal Diffusers' ``AutoencoderKLWan`` built with the same
    (``is_residual``) config.  ``encode``/``decode``/``forward``, ``enable_tiling``
    and ``normalize_latents`` are the Wan2.1 class's; this class changes how
    frames are turned into latents and back (patchify around the encoder and
    decoder) and blends decoded tiles in the patchified space.
    """

    def __init__(self, config: Wan22VAEConfig) -> None:
        nn.Module.__init__(self)
        config.validate()
        self.config = config
        z = config.z_dim
        self.patch_size = config.patch
        self.spatial_compression_ratio = config.spatial_compression_ratio
        self.temporal_compression_ratio = config.temporal_compression_ratio
        levels = len(config.dim_mult)
        temporal_down = list(config.temperal_downsample[: levels - 1])
        self.encoder = Encoder22(
            config.in_channels, config.base_dim, 2 * z, config.dim_mult, config.num_res_blocks, temporal_down
        )
        self.quant_conv = CausalConv3d(2 * z, 2 * z, 1)
        self.post_quant_conv = CausalConv3d(z, z, 1)
        self.decoder = Decoder22(
            z, config.decoder_base_dim or config.base_dim, config.out_channels, config.dim_mult,
            config.num_res_blocks, temporal_down[::-1],
        )
        self.use_tiling = False
        self.tile_sample_min_height = 256
        self.tile_sample_min_width = 256
        self.tile_sample_stride_height = 192
        self.tile_sample_stride_width = 192

    @classmethod
    def from_arch_config(cls, config: Wan22VAEConfig) -> AutoencoderKLWan22:
        return cls(config)

    # ----------------------------------------------------------------- encode
    def _check_video(self, x: torch.Tensor) -> None:
        if x.ndim != 5:
            raise ValueError(f"encode expects a 5D video [B, C, T, H, W], got shape {list(x.shape)}")
        b, c, t, h, w = x.shape
        want = self.config.video_channels
        if c != want:
            raise ValueError(f"encode expects {want} channels, got {c} (shape {list(x.shape)})")
        if t < 1 or (t - 1) % ENCODE_CHUNK:
            lower = 1 + max(0, (t - 1) // ENCODE_CHUNK) * ENCODE_CHUNK
            valid = f"{lower} or {lower + ENCODE_CHUNK}" if t > 1 else "1 or 5"
            raise ValueError(
                f"encode needs T = 4n+1 frames (1, 5, 9, ...), got T={t}; nearest valid frame counts: {valid}"
            )
        r = self.spatial_compression_ratio
        for name, size in (("height", h), ("width", w)):
            if size < r or size % r:
                lower = max(r, size // r * r)
                raise ValueError(
                    f"encode needs {name} to be a multiple of {r}, got {name}={size}; "
                    f"nearest valid: {lower} or {lower + r}"
                )

    def _encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        """Patchify, then encoder + quant_conv over time chunks of 1, 4, 4, ... frames.

        Tiles (``_tiled_encode`` of the base class) are whole 2x2 pixel blocks, so
        patchifying per tile equals patchifying the frame and tiling that.
        """
        return super()._encode_frames(patchify(x, self.patch_size))

    # ----------------------------------------------------------------- decode
    def _decode_patches(self, z: torch.Tensor) -> torch.Tensor:
        """post_quant_conv + decoder, one latent frame at a time: patchified frames (no clamp)."""
        return super()._decode_frames(z)

    def _decode_frames(self, z: torch.Tensor) -> torch.Tensor:
        return unpatchify(self._decode_patches(z), self.patch_size)

    def _tiled_decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode overlapping latent tiles; blend and crop in the patchified space, then unpatchify."""
        r, p = self.spatial_compression_ratio, self.patch_size
        h, w = z.shape[-2:]
        th, tw = self.tile_sample_min_height // r, self.tile_sample_min_width // r
        sh, sw = self.tile_sample_stride_height // r, self.tile_sample_stride_width // r
        tiles = [
            [self._decode_patches(z[:, :, :, i:i + th, j:j + tw]) for j in range(0, w, sw)]
            for i in range(0, h, sh)
        ]
        out = self._stitch(
            tiles,
            (self.tile_sample_min_height - self.tile_sample_stride_height) // p,
            (self.tile_sample_min_width - self.tile_sample_stride_width) // p,
            self.tile_sample_stride_height // p, self.tile_sample_stride_width // p,
            h * r // p, w * r // p,
        )
        return unpatchify(out, p)

"""Wan2.1 video VAE (same parameter names and numerics as Diffusers ``AutoencoderKLWan``).

Shape summary (released config: base_dim 96, dim_mult [1, 2, 4, 4], z_dim 16)::

    video [B, 3, 1 + 4n, H, W] in [-1, 1]
      --encoder--> [B, 2*z, 1 + n, H/8, W/8]  (mean | logvar)
      --decoder--> [B, 3, 1 + 4n, H, W]  clamped to [-1, 1]

Causality and streaming
-----------------------
Every 3x3x3 convolution is *causal* in time: the kernel sees frames t-2, t-1, t,
so the sequence is padded with two zero frames on the left and none on the right.
Because of that the video can be processed in time chunks with identical
results, provided every causal layer remembers the last two frames of its input
from the previous chunk (the "feature cache").  The encoder runs on chunks of
1, 4, 4, ... frames, the decoder on one latent frame at a time.

Two layers are not plain causal convs:

* ``downsample3d`` (encoder): the first chunk (one frame) passes through
  unchanged in time; every later chunk is prefixed with the last frame of the
  previous chunk and convolved with a stride-2 kernel of 3 frames, so 4 frames
  become 2 (frame 0 alone -> latent frame 0; frames 1..4 -> latent frame 1; ...).
* ``upsample3d`` (decoder): the first chunk passes through unchanged in time;
  later chunks go through a causal conv that doubles the channels, and the two
  channel halves become two consecutive frames.  So latent frames 1 + n become
  1 + 4n video frames after two such layers.

Here the cache is a small object created for each ``encode``/``decode`` call and
dropped afterwards (nothing is kept on the module between calls), keyed by the
layer it belongs to, instead of the index counters of the reference code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fastvideo.configs.models.vaes.wan import WanVAEConfig
from fastvideo.layers.norms import ChannelRMSNorm

CACHE_T = 2  # frames of left context a 3-tap causal conv needs
ENCODE_CHUNK = 4  # frames per encoder chunk after the first (single) frame


class FeatureCache:
    """Time context carried from one chunk to the next, one entry per layer.

    Values are the last input frames a causal conv saw (or a marker for the
    first-chunk special cases of the 3D resamplers).  A fresh cache behaves like
    zero padding at the start of the video.
    """

    def __init__(self) -> None:
        self._state: dict[int, Any] = {}

    def get(self, layer: nn.Module) -> Any:
        return self._state.get(id(layer))

    def set(self, layer: nn.Module, value: Any) -> None:
        self._state[id(layer)] = value

    def __len__(self) -> int:
        return len(self._state)


class CausalConv3d(nn.Conv3d):
    """3D conv, zero padded symmetrically in space and only on the left in time.

    ``padding=(pt, ph, pw)`` means ``2*pt`` frames of left time padding (a
    kernel of ``2*pt + 1`` frames sees only the past).  With a ``cache`` the
    left padding is (partly) replaced by the real last frames of the previous
    chunk, and the last ``2*pt`` input frames are stored for the next chunk.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding)
        pt, ph, pw = self.padding
        self.time_pad = 2 * pt
        # Space is zero padded by the convolution itself (no extra copy); time by hand, on the left.
        self.padding = (0, ph, pw)

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        left = self.time_pad
        if cache is not None and self.time_pad > 0:
            prev = cache.get(self)
            if prev is not None:
                x = torch.cat([prev.to(x.device), x], dim=2)
                left -= prev.shape[2]
            cache.set(self, x[:, :, -self.time_pad:].clone())
        if left > 0:
            x = F.pad(x, (0, 0, 0, 0, left, 0))
        return super().forward(x)


#: The VAE's RMS norm: over the channel dim (dim 1), ``gamma`` [C, 1, 1(, 1)] (fastvideo.layers.norms).
RMSNorm = ChannelRMSNorm


class ResidualBlock(nn.Module):
    """``x -> shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))))))``, convs causal 3x3x3."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.norm1 = RMSNorm(in_dim)
        self.conv1 = CausalConv3d(in_dim, out_dim, 3, padding=1)
        self.norm2 = RMSNorm(out_dim)
        self.conv2 = CausalConv3d(out_dim, out_dim, 3, padding=1)
        self.conv_shortcut = CausalConv3d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        h = self.conv_shortcut(x)
        x = self.conv1(F.silu(self.norm1(x)), cache)
        x = self.conv2(F.silu(self.norm2(x)), cache)  # (dropout: identity at inference)
        return x + h


class AttentionBlock(nn.Module):
    """Single-head self-attention over the pixels of each frame separately (no time mixing)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = RMSNorm(dim, images=True)
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        qkv = self.to_qkv(self.norm(frames))  # [bt, 3c, h, w]
        qkv = qkv.reshape(b * t, 1, 3 * c, h * w).transpose(-1, -2)  # [bt, 1 head, hw, 3c]
        q, k, v = qkv.chunk(3, dim=-1)
        out = F.scaled_dot_product_attention(q, k, v)  # [bt, 1, hw, c]
        out = self.proj(out.squeeze(1).transpose(1, 2).reshape(b * t, c, h, w))
        return x + out.view(b, t, c, h, w).permute(0, 2, 1, 3, 4)


class Upsample2x(nn.Module):
    """Nearest 2x spatial upsampling (computed in fp32 like the reference)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x.float(), scale_factor=2.0, mode="nearest-exact").to(x.dtype)


class Resample(nn.Module):
    """2x spatial up/down sampling per frame, optionally also 2x in time.

    ``resample`` is a ``Sequential`` whose parameters sit at index 1 (index 0 is
    the parameter-free upsample / right-bottom zero pad), matching checkpoints.
    Upsampling convs halve the channels.  The time part needs the chunked cache
    (see the module docstring); without a cache only the spatial part runs.
    """

    def __init__(self, dim: int, mode: str) -> None:
        super().__init__()
        self.mode = mode
        if mode in ("upsample2d", "upsample3d"):
            self.resample = nn.Sequential(Upsample2x(), nn.Conv2d(dim, dim // 2, 3, padding=1))
        elif mode in ("downsample2d", "downsample3d"):
            self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(dim, dim, 3, stride=2))
        else:
            raise ValueError(f"unknown resample mode {mode!r}")
        if mode == "upsample3d":
            # one causal conv producing two frames' worth of channels per input frame
            self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))
        elif mode == "downsample3d":
            # stride-2 conv over [last frame of previous chunk, this chunk]; no padding
            self.time_conv = CausalConv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1), padding=0)

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        if self.mode == "upsample3d" and cache is not None:
            if cache.get(self) is None:
                cache.set(self, "first chunk done")  # first latent frame: no time upsampling
            else:
                b, c, t, h, w = x.shape
                y = self.time_conv(x, cache)  # [b, 2c, t, h, w]
                # channel half 0 -> frame 2i, half 1 -> frame 2i+1
                x = y.view(b, 2, c, t, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b, c, 2 * t, h, w)

        b, c, t, h, w = x.shape
        x = self.resample(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
        x = x.view(b, t, *x.shape[1:]).permute(0, 2, 1, 3, 4)

        if self.mode == "downsample3d" and cache is not None:
            prev = cache.get(self)
            cache.set(self, x[:, :, -1:].clone())
            if prev is not None:  # first chunk (one frame) passes through unchanged in time
                x = self.time_conv(torch.cat([prev.to(x.device), x], dim=2))
        return x


class MidBlock(nn.Module):
    """resnet -> per-frame attention -> resnet, at the lowest resolution."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.resnets = nn.ModuleList([ResidualBlock(dim, dim), ResidualBlock(dim, dim)])
        self.attentions = nn.ModuleList([AttentionBlock(dim)])

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        x = self.resnets[0](x, cache)
        x = self.attentions[0](x)
        return self.resnets[1](x, cache)


class Encoder3d(nn.Module):
    """conv_in -> [num_res_blocks resnets (+ downsample)] per level -> mid block -> norm, SiLU, conv_out.

    ``down_blocks`` is one flat list (as in the checkpoints).  Channels per level:
    ``base_dim * dim_mult[i]``; every level but the last ends in a 2x spatial
    downsample, in time too where ``temperal_downsample[i]``.
    """

    def __init__(self, in_channels, dim, out_channels, dim_mult, num_res_blocks, temperal_downsample):
        super().__init__()
        dims = [dim * m for m in [1, *dim_mult]]
        self.conv_in = CausalConv3d(in_channels, dims[0], 3, padding=1)
        blocks: list[nn.Module] = []
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            for _ in range(num_res_blocks):
                blocks.append(ResidualBlock(in_dim, out_dim))
                in_dim = out_dim
            if i != len(dim_mult) - 1:
                blocks.append(Resample(out_dim, "downsample3d" if temperal_downsample[i] else "downsample2d"))
        self.down_blocks = nn.ModuleList(blocks)
        self.mid_block = MidBlock(dims[-1])
        self.norm_out = RMSNorm(dims[-1])
        self.conv_out = CausalConv3d(dims[-1], out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        x = self.conv_in(x, cache)
        for block in self.down_blocks:
            x = block(x, cache)
        x = self.mid_block(x, cache)
        return self.conv_out(F.silu(self.norm_out(x)), cache)


class UpBlock(nn.Module):
    """``num_res_blocks + 1`` resnets, then (except on the last level) one 2x upsampler."""

    def __init__(self, in_dim: int, out_dim: int, num_res_blocks: int, upsample_mode: str | None):
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResidualBlock(in_dim if j == 0 else out_dim, out_dim) for j in range(num_res_blocks + 1)]
        )
        self.upsamplers = nn.ModuleList([Resample(out_dim, upsample_mode)]) if upsample_mode else None

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x, cache)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x, cache)
        return x


class Decoder3d(nn.Module):
    """conv_in -> mid block -> up blocks (deepest level first) -> norm, SiLU, conv_out.

    Channels per level: ``dim * dim_mult[::-1][i]``; the upsampler halves the
    channels, so every level after the first starts from half the previous width.
    """

    def __init__(self, z_dim, dim, out_channels, dim_mult, num_res_blocks, temperal_upsample):
        super().__init__()
        dims = [dim * m for m in [dim_mult[-1], *dim_mult[::-1]]]
        self.conv_in = CausalConv3d(z_dim, dims[0], 3, padding=1)
        self.mid_block = MidBlock(dims[0])
        blocks = []
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            if i > 0:
                in_dim //= 2  # previous level's upsampler halved the channels
            mode = None
            if i != len(dim_mult) - 1:
                mode = "upsample3d" if temperal_upsample[i] else "upsample2d"
            blocks.append(UpBlock(in_dim, out_dim, num_res_blocks, mode))
        self.up_blocks = nn.ModuleList(blocks)
        self.norm_out = RMSNorm(dims[-1])
        self.conv_out = CausalConv3d(dims[-1], out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        x = self.conv_in(x, cache)
        x = self.mid_block(x, cache)
        for block in self.up_blocks:
            x = block(x, cache)
        return self.conv_out(F.silu(self.norm_out(x)), cache)


@dataclass
class WanLatentDistribution:
    """Diagonal Gaussian posterior; ``logvar`` is clamped to [-30, 20] like the reference."""

    mean: torch.Tensor
    logvar: torch.Tensor

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def mode(self) -> torch.Tensor:
        return self.mean

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(self.mean.shape, generator=generator, dtype=self.mean.dtype, device="cpu")
        return self.mean + self.std * noise.to(self.mean.device)

    def __getitem__(self, key: str) -> torch.Tensor:  # dict-style access: out["mean"]
        return getattr(self, key)


class AutoencoderKLWan(nn.Module):
    """Wan2.1 VAE: chunked causal encoder/decoder with optional spatial tiling.

    Parameter names equal Diffusers' ``AutoencoderKLWan`` (``encoder.*``,
    ``quant_conv``, ``post_quant_conv``, ``decoder.*``).
    """

    def __init__(self, config: WanVAEConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        z = config.z_dim
        self.spatial_compression_ratio = config.spatial_compression_ratio
        self.temporal_compression_ratio = config.temporal_compression_ratio
        self.encoder = Encoder3d(
            config.in_channels, config.base_dim, 2 * z, config.dim_mult, config.num_res_blocks,
            config.temperal_downsample,
        )
        self.quant_conv = CausalConv3d(2 * z, 2 * z, 1)
        self.post_quant_conv = CausalConv3d(z, z, 1)
        self.decoder = Decoder3d(
            z, config.decoder_base_dim or config.base_dim, config.out_channels, config.dim_mult,
            config.num_res_blocks, list(config.temperal_downsample[: len(config.dim_mult) - 1])[::-1],
        )
        self.use_tiling = False
        self.tile_sample_min_height = 256
        self.tile_sample_min_width = 256
        self.tile_sample_stride_height = 192
        self.tile_sample_stride_width = 192

    @classmethod
    def from_arch_config(cls, config: WanVAEConfig) -> AutoencoderKLWan:
        """Build the VAE a config describes: a Wan2.2 config (``is_residual``) builds ``AutoencoderKLWan22``."""
        if config.is_residual:
            from fastvideo.models.vaes.wan22 import AutoencoderKLWan22

            return AutoencoderKLWan22(config)
        return cls(config)

    # ------------------------------------------------------------------ utils
    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, self.config.z_dim, 1, 1, 1)
        mean = torch.tensor(self.config.latents_mean, dtype=torch.float32, device=like.device).view(shape)
        std = torch.tensor(self.config.latents_std, dtype=torch.float32, device=like.device).view(shape)
        return mean, std

    def normalize_latents(self, mu: torch.Tensor) -> torch.Tensor:
        """``(mu - mean) / std`` per channel (computed in fp32, returned in ``mu``'s dtype)."""
        mean, std = self._stats(mu)
        return ((mu.float() - mean) / std).to(mu.dtype)

    def denormalize_latents(self, z: torch.Tensor) -> torch.Tensor:
        """``z * std + mean`` per channel: the inverse of :meth:`normalize_latents`."""
        mean, std = self._stats(z)
        return (z.float() * std + mean).to(z.dtype)

    def clear_cache(self) -> None:
        """Nothing to clear: the feature cache lives only inside one encode/decode call."""

    # ----------------------------------------------------------------- tiling
    def enable_tiling(
        self,
        tile_sample_min_height: int | None = None,
        tile_sample_min_width: int | None = None,
        tile_sample_stride_height: int | None = None,
        tile_sample_stride_width: int | None = None,
    ) -> None:
        """Encode/decode large frames as overlapping spatial tiles (sizes in pixels).

        Tiles are ``min`` pixels wide and start every ``stride`` pixels; the
        ``min - stride`` overlap is linearly cross-faded.  Each tile runs the
        full causal pipeline over all frames, so peak memory scales with the
        tile, not the frame.  The result is not identical to untiled decoding
        (a tile does not see beyond its borders); see the tests for measured gaps.
        """
        r = self.spatial_compression_ratio
        self.tile_sample_min_height = tile_sample_min_height or self.tile_sample_min_height
        self.tile_sample_min_width = tile_sample_min_width or self.tile_sample_min_width
        self.tile_sample_stride_height = tile_sample_stride_height or self.tile_sample_stride_height
        self.tile_sample_stride_width = tile_sample_stride_width or self.tile_sample_stride_width
        for name in ("min_height", "min_width", "stride_height", "stride_width"):
            value = getattr(self, f"tile_sample_{name}")
            if value <= 0 or value % r:
                raise ValueError(f"tile_sample_{name}={value} must be a positive multiple of {r}")
        if (self.tile_sample_stride_height > self.tile_sample_min_height
                or self.tile_sample_stride_width > self.tile_sample_min_width):
            raise ValueError("tile stride must not exceed the tile size (tiles would leave gaps)")
        self.use_tiling = True

    def disable_tiling(self) -> None:
        self.use_tiling = False

    @staticmethod
    def _blend(prev: torch.Tensor, cur: torch.Tensor, extent: int, dim: int) -> None:
        """Cross-fade, in place, the first ``extent`` rows/cols of ``cur`` with the last of ``prev``.

        Row ``y`` of the overlap gets ``prev * (1 - y/extent) + cur * (y/extent)``.
        """
        extent = min(prev.shape[dim], cur.shape[dim], extent)
        if extent <= 0:
            return
        w = torch.arange(extent, dtype=torch.float64) / extent
        shape = [1] * cur.ndim
        shape[dim] = extent
        w_cur = w.to(cur.dtype).view(shape).to(cur.device)
        w_prev = (1.0 - w).to(cur.dtype).view(shape).to(cur.device)
        head = cur.narrow(dim, 0, extent)
        head.copy_(prev.narrow(dim, prev.shape[dim] - extent, extent) * w_prev + head * w_cur)

    def _stitch(self, tiles: list[list[torch.Tensor]], blend_h: int, blend_w: int,
                stride_h: int, stride_w: int, out_h: int, out_w: int) -> torch.Tensor:
        """Blend each tile with its (already blended) upper and left neighbours, crop, concatenate."""
        rows = []
        for i, row in enumerate(tiles):
            cropped = []
            for j, tile in enumerate(row):
                if i > 0:
                    self._blend(tiles[i - 1][j], tile, blend_h, dim=3)
                if j > 0:
                    self._blend(row[j - 1], tile, blend_w, dim=4)
                cropped.append(tile[:, :, :, :stride_h, :stride_w])
            rows.append(torch.cat(cropped, dim=4))
        return torch.cat(rows, dim=3)[:, :, :, :out_h, :out_w]

    # ----------------------------------------------------------------- encode
    def _check_video(self, x: torch.Tensor) -> None:
        if x.ndim != 5:
            raise ValueError(f"encode expects a 5D video [B, C, T, H, W], got shape {list(x.shape)}")
        b, c, t, h, w = x.shape
        if c != self.config.in_channels:
            raise ValueError(f"encode expects {self.config.in_channels} channels, got {c} (shape {list(x.shape)})")
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
        """Encoder + quant_conv over time chunks of 1, 4, 4, ... frames."""
        cache = FeatureCache()
        x = self._memory_format(x)
        chunks = [x[:, :, :1]]
        if x.shape[2] > 1:
            chunks += list(x[:, :, 1:].split(ENCODE_CHUNK, dim=2))
        out = torch.cat([self.encoder(chunk, cache) for chunk in chunks], dim=2)
        del cache
        return self.quant_conv(out)

    def _tiled_encode(self, x: torch.Tensor) -> torch.Tensor:
        r = self.spatial_compression_ratio
        h, w = x.shape[-2:]
        th, tw = self.tile_sample_min_height, self.tile_sample_min_width
        sh, sw = self.tile_sample_stride_height, self.tile_sample_stride_width
        tiles = [
            [self._encode_frames(x[:, :, :, i:i + th, j:j + tw]) for j in range(0, w, sw)]
            for i in range(0, h, sh)
        ]
        return self._stitch(tiles, (th - sh) // r, (tw - sw) // r, sh // r, sw // r, h // r, w // r)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> WanLatentDistribution:
        """Video ``[B, C, 1+4n, H, W]`` in [-1, 1] -> posterior over ``[B, z, 1+n, H/r, W/r]``.

        Use ``.mean`` / ``.mode()`` for deterministic latents (then
        :meth:`normalize_latents` before handing them to the DiT).
        """
        self._check_video(x)
        x = x.to(self.dtype)
        h, w = x.shape[-2:]
        if self.use_tiling and (h > self.tile_sample_min_height or w > self.tile_sample_min_width):
            moments = self._tiled_encode(x)
        else:
            moments = self._encode_frames(x)
        mean, logvar = moments.chunk(2, dim=1)
        return WanLatentDistribution(mean, torch.clamp(logvar, -30.0, 20.0))

    # ----------------------------------------------------------------- decode
    def use_channels_last(self, enabled: bool = True) -> None:
        """Keep conv weights and activations in NDHWC (channels-last) memory order.

        cuDNN's fast 3D conv kernels on recent GPUs work in NDHWC; with the default
        NCDHW order every conv pays two layout transposes.  Same math, other layout.
        """
        fmt = torch.channels_last_3d if enabled else torch.contiguous_format
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                m.weight.data = m.weight.data.contiguous(memory_format=fmt)
        self.channels_last = enabled

    def _memory_format(self, x: torch.Tensor) -> torch.Tensor:
        if getattr(self, "channels_last", False) and x.ndim == 5:
            return x.contiguous(memory_format=torch.channels_last_3d)
        return x

    def _decode_frames(self, z: torch.Tensor) -> torch.Tensor:
        """post_quant_conv + decoder, one latent frame at a time (no clamp)."""
        cache = FeatureCache()
        x = self.post_quant_conv(self._memory_format(z))
        out = torch.cat([self.decoder(x[:, :, i:i + 1], cache) for i in range(x.shape[2])], dim=2)
        del cache
        return out

    def _tiled_decode(self, z: torch.Tensor) -> torch.Tensor:
        r = self.spatial_compression_ratio
        h, w = z.shape[-2:]
        th, tw = self.tile_sample_min_height // r, self.tile_sample_min_width // r
        sh, sw = self.tile_sample_stride_height // r, self.tile_sample_stride_width // r
        tiles = [
            [self._decode_frames(z[:, :, :, i:i + th, j:j + tw]) for j in range(0, w, sw)]
            for i in range(0, h, sh)
        ]
        return self._stitch(
            tiles,
            self.tile_sample_min_height - self.tile_sample_stride_height,
            self.tile_sample_min_width - self.tile_sample_stride_width,
            self.tile_sample_stride_height, self.tile_sample_stride_width, h * r, w * r,
        )

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents ``[B, z, T, h, w]`` (denormalised) -> video ``[B, 3, 1+4(T-1), h*r, w*r]`` in [-1, 1]."""
        if z.ndim != 5:
            raise ValueError(f"decode expects 5D latents [B, C, T, H, W], got shape {list(z.shape)}")
        if z.shape[1] != self.config.z_dim:
            raise ValueError(f"decode expects {self.config.z_dim} latent channels, got {z.shape[1]}")
        if min(z.shape[2:]) < 1:
            raise ValueError(f"decode got an empty latent {list(z.shape)}")
        z = z.to(self.dtype)
        r = self.spatial_compression_ratio
        h, w = z.shape[-2:]
        if self.use_tiling and (h > self.tile_sample_min_height // r or w > self.tile_sample_min_width // r):
            out = self._tiled_decode(z)
        else:
            out = self._decode_frames(z)
        return out.clamp(-1.0, 1.0)

    def forward(self, x: torch.Tensor, sample_posterior: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
        posterior = self.encode(x)
        z = posterior.sample(generator) if sample_posterior else posterior.mode()
        return self.decode(z)

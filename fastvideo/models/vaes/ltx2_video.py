"""LTX-2 video VAE: video ``[B, 3, 1 + 8k, H, W]`` <-> latent ``[B, 128, 1 + k, H/32, W/32]``.

Encoder: 4x4 pixel patchify (channels ordered c, t, w, h as the reference), causal 3D convs (the
first frame replicated in front), ResNet blocks with parameter-free per-channel RMS norms and SiLU,
space/time-to-depth downsamplers with an averaged residual, a mid block, and a ``C + 1`` channel
output whose last channel is the shared log-variance.  Decoder: the mirror with depth-to-space
upsamplers (residual), non-causal convs with reflect padding in space (LTX-2.0), and unpatchify.
The math follows Diffusers' ``AutoencoderKLLTX2Video`` (0.42.1; no tiling yet).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fastvideo.configs.models.vaes.ltx2_video import LTX2VideoVAEConfig


def _rms(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x / torch.sqrt(torch.mean(x**2, dim=1, keepdim=True) + eps)


class CausalConv3d(nn.Module):
    """3D conv, spatial padding in the conv (``padding_mode``), time padded by repeating the first frame
    (causal) or the first and last frames (non-causal)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride=1, padding_mode: str = "zeros"):
        super().__init__()
        self.kernel_t = kernel
        stride = stride if isinstance(stride, tuple) else (stride,) * 3
        self.conv = nn.Conv3d(cin, cout, kernel, stride=stride, padding=(0, kernel // 2, kernel // 2),
                              padding_mode=padding_mode)

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        k = self.kernel_t
        if causal:
            x = torch.cat([x[:, :, :1].repeat(1, 1, k - 1, 1, 1), x], dim=2)
        else:
            p = (k - 1) // 2
            x = torch.cat([x[:, :, :1].repeat(1, 1, p, 1, 1), x, x[:, :, -1:].repeat(1, 1, p, 1, 1)], dim=2)
        return self.conv(x)


class ResnetBlock3d(nn.Module):
    def __init__(self, cin: int, cout: int, eps: float, padding_mode: str):
        super().__init__()
        self.conv1 = CausalConv3d(cin, cout, padding_mode=padding_mode)
        self.conv2 = CausalConv3d(cout, cout, padding_mode=padding_mode)
        self.norm3 = nn.LayerNorm(cin, eps=eps) if cin != cout else None
        self.conv_shortcut = nn.Conv3d(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        h = self.conv1(F.silu(_rms(x)), causal)
        h = self.conv2(F.silu(_rms(h)), causal)
        if self.norm3 is not None:
            x = self.conv_shortcut(self.norm3(x.movedim(1, -1)).movedim(-1, 1))
        return h + x


def _space_to_depth(x: torch.Tensor, s: tuple[int, int, int]) -> torch.Tensor:
    x = x.unflatten(4, (-1, s[2])).unflatten(3, (-1, s[1])).unflatten(2, (-1, s[0]))
    return x.permute(0, 1, 3, 5, 7, 2, 4, 6).flatten(1, 4)


class Downsampler3d(nn.Module):
    """Conv to ``cout / prod(stride)`` channels then space/time-to-depth, plus the input folded the same
    way and averaged over groups of channels (the residual)."""

    def __init__(self, cin: int, cout: int, stride: tuple[int, int, int], padding_mode: str):
        super().__init__()
        self.stride = stride
        n = stride[0] * stride[1] * stride[2]
        self.group_size = cin * n // cout
        self.conv = CausalConv3d(cin, cout // n, padding_mode=padding_mode)

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        x = torch.cat([x[:, :, : self.stride[0] - 1], x], dim=2)
        residual = _space_to_depth(x, self.stride).unflatten(1, (-1, self.group_size)).mean(dim=2)
        return _space_to_depth(self.conv(x, causal), self.stride) + residual


class Upsampler3d(nn.Module):
    """Conv to ``c * prod(stride) / upscale`` channels then depth-to-space (first frame dropped), plus the
    input unfolded the same way and repeated (the residual)."""

    def __init__(self, cin: int, stride: tuple[int, int, int], residual: bool, upscale: int, padding_mode: str):
        super().__init__()
        self.stride, self.residual, self.upscale = stride, residual, upscale
        self.conv = CausalConv3d(cin, cin * stride[0] * stride[1] * stride[2] // upscale, padding_mode=padding_mode)

    def _unfold(self, x: torch.Tensor) -> torch.Tensor:
        b, _, f, h, w = x.shape
        s = self.stride
        x = x.reshape(b, -1, s[0], s[1], s[2], f, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4)
        return x.flatten(6, 7).flatten(4, 5).flatten(2, 3)[:, :, s[0] - 1:]

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        out = self._unfold(self.conv(x, causal))
        if self.residual:
            s = self.stride
            out = out + self._unfold(x).repeat(1, s[0] * s[1] * s[2] // self.upscale, 1, 1, 1)
        return out


_STRIDES = {"spatial": (1, 2, 2), "temporal": (2, 1, 1), "spatiotemporal": (2, 2, 2)}


class DownBlock3d(nn.Module):
    def __init__(self, cin: int, cout: int, layers: int, scale: bool, kind: str, eps: float, padding_mode: str):
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock3d(cin, cin, eps, padding_mode) for _ in range(layers))
        self.downsamplers = None
        if scale:
            if kind == "conv":
                down: nn.Module = CausalConv3d(cin, cin, stride=(2, 2, 2), padding_mode=padding_mode)
            else:
                down = Downsampler3d(cin, cout, _STRIDES[kind], padding_mode)
            self.downsamplers = nn.ModuleList([down])

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        for r in self.resnets:
            x = r(x, causal)
        for d in self.downsamplers or ():
            x = d(x, causal)
        return x


class MidBlock3d(nn.Module):
    def __init__(self, ch: int, layers: int, eps: float, padding_mode: str):
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock3d(ch, ch, eps, padding_mode) for _ in range(layers))

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        for r in self.resnets:
            x = r(x, causal)
        return x


class UpBlock3d(nn.Module):
    def __init__(self, cin: int, cout: int, layers: int, scale: bool, kind: str, residual: bool, upscale: int,
                 eps: float, padding_mode: str):
        super().__init__()
        self.conv_in = ResnetBlock3d(cin, cout, eps, padding_mode) if cin != cout else None
        self.upsamplers = nn.ModuleList([Upsampler3d(cout * upscale, _STRIDES[kind], residual, upscale,
                                                     padding_mode)]) if scale else None
        self.resnets = nn.ModuleList(ResnetBlock3d(cout, cout, eps, padding_mode) for _ in range(layers))

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        if self.conv_in is not None:
            x = self.conv_in(x, causal)
        for u in self.upsamplers or ():
            x = u(x, causal)
        for r in self.resnets:
            x = r(x, causal)
        return x


class Encoder3d(nn.Module):
    def __init__(self, c: LTX2VideoVAEConfig):
        super().__init__()
        self.p, self.pt, self.causal = c.patch_size, c.patch_size_t, c.encoder_causal
        pm, eps = c.encoder_spatial_padding_mode, c.resnet_norm_eps
        ch = c.latent_channels
        self.conv_in = CausalConv3d(c.in_channels * c.patch_size**2, ch, padding_mode=pm)
        self.down_blocks = nn.ModuleList()
        for i, out in enumerate(c.block_out_channels):
            self.down_blocks.append(DownBlock3d(ch, out, c.layers_per_block[i], c.spatio_temporal_scaling[i],
                                                c.downsample_type[i], eps, pm))
            ch = out
        self.mid_block = MidBlock3d(ch, c.layers_per_block[-1], eps, pm)
        self.conv_out = CausalConv3d(ch, c.latent_channels + 1, padding_mode=pm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = x.shape
        p, pt = self.p, self.pt
        x = x.reshape(b, c, f // pt, pt, h // p, p, w // p, p).permute(0, 1, 3, 7, 5, 2, 4, 6).flatten(1, 4)
        x = self.conv_in(x, self.causal)
        for blk in self.down_blocks:
            x = blk(x, self.causal)
        x = self.mid_block(x, self.causal)
        x = self.conv_out(F.silu(_rms(x)), self.causal)
        return torch.cat([x, x[:, -1:].repeat(1, x.shape[1] - 2, 1, 1, 1)], dim=1)


class Decoder3d(nn.Module):
    def __init__(self, c: LTX2VideoVAEConfig):
        super().__init__()
        self.p, self.pt, self.causal = c.patch_size, c.patch_size_t, c.decoder_causal
        pm, eps = c.decoder_spatial_padding_mode, c.resnet_norm_eps
        chans = tuple(reversed(c.decoder_block_out_channels))
        scaling = tuple(reversed(c.decoder_spatio_temporal_scaling))
        layers = tuple(reversed(c.decoder_layers_per_block))
        residual = tuple(reversed(c.upsample_residual))
        factor = tuple(reversed(c.upsample_factor))
        ch = chans[0]
        self.conv_in = CausalConv3d(c.latent_channels, ch, padding_mode=pm)
        self.mid_block = MidBlock3d(ch, layers[0], eps, pm)
        self.up_blocks = nn.ModuleList()
        for i in range(len(chans)):
            cin, ch = ch // factor[i], chans[i] // factor[i]
            self.up_blocks.append(UpBlock3d(cin, ch, layers[i + 1], scaling[i], c.upsample_type[i], residual[i],
                                            factor[i], eps, pm))
        self.conv_out = CausalConv3d(ch, c.out_channels * c.patch_size**2, padding_mode=pm)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid_block(self.conv_in(z, self.causal), self.causal)
        for blk in self.up_blocks:
            x = blk(x, self.causal)
        x = self.conv_out(F.silu(_rms(x)), self.causal)
        b, _, f, h, w = x.shape
        p, pt = self.p, self.pt
        x = x.reshape(b, -1, pt, p, p, f, h, w).permute(0, 1, 5, 2, 6, 4, 7, 3)
        return x.flatten(6, 7).flatten(4, 5).flatten(2, 3)


def _blend(a: torch.Tensor, b: torch.Tensor, extent: int, dim: int) -> torch.Tensor:
    """``b``'s first ``extent`` rows (along ``dim``) faded in from ``a``'s last ones, linearly (in place on b)."""
    extent = min(a.shape[dim], b.shape[dim], extent)
    for k in range(extent):
        w = k / extent
        b.select(dim, k).copy_(a.select(dim, a.shape[dim] - extent + k) * (1 - w) + b.select(dim, k) * w)
    return b


class AutoencoderKLLTX2Video(nn.Module):
    def __init__(self, config: LTX2VideoVAEConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder3d(config)
        self.decoder = Decoder3d(config)
        self.register_buffer("latents_mean", torch.zeros(config.latent_channels))
        self.register_buffer("latents_std", torch.ones(config.latent_channels))
        self.spatial_compression_ratio = config.spatial_compression_ratio
        self.temporal_compression_ratio = config.temporal_compression_ratio
        # Spatial tiling of the decode (PipelineConfig.vae_tiling): tiles of tile_size pixels every tile_stride,
        # blended linearly over the overlap, as Diffusers' tiled_decode.
        self.use_tiling = False
        self.tile_size = (512, 512)
        self.tile_stride = (448, 448)

    def enable_tiling(self, tile_size: tuple[int, int] = (512, 512), tile_stride: tuple[int, int] = (448, 448)) -> None:
        """Decode in overlapping spatial tiles (sizes in pixels, multiples of the spatial compression)."""
        s = self.spatial_compression_ratio
        if any(v % s or v <= 0 for v in (*tile_size, *tile_stride)) or any(a < b for a, b in zip(tile_size,
                                                                                             tile_stride)):
            raise ValueError(f"LTX-2 VAE tiling: tile sizes {tile_size} and strides {tile_stride} must be positive "
                             f"multiples of {s} with the stride at most the size")
        self.use_tiling, self.tile_size, self.tile_stride = True, tuple(tile_size), tuple(tile_stride)

    def disable_tiling(self) -> None:
        self.use_tiling = False

    @classmethod
    def from_arch_config(cls, config: LTX2VideoVAEConfig) -> AutoencoderKLLTX2Video:
        return cls(config)

    @property
    def dtype(self) -> torch.dtype:
        return self.encoder.conv_in.conv.weight.dtype

    def encode_moments(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, logvar) of the posterior; logvar clamped to [-30, 20] as Diffusers' Gaussian does."""
        mean, logvar = self.encoder(video).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """The posterior's mode (mean), un-normalised."""
        return self.encode_moments(video)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        s = self.spatial_compression_ratio
        th, tw = self.tile_size[0] // s, self.tile_size[1] // s
        if self.use_tiling and (z.shape[3] > th or z.shape[4] > tw):
            return self._tiled_decode(z)
        return self.decoder(z)

    def _tiled_decode(self, z: torch.Tensor) -> torch.Tensor:
        s = self.spatial_compression_ratio
        (th, tw), (sh, sw) = ((v // s for v in self.tile_size), (v // s for v in self.tile_stride))
        blend_h, blend_w = self.tile_size[0] - self.tile_stride[0], self.tile_size[1] - self.tile_stride[1]
        height, width = z.shape[3], z.shape[4]
        rows = [[self.decoder(z[:, :, :, i:i + th, j:j + tw]) for j in range(0, width, sw)]
                for i in range(0, height, sh)]
        out_rows = []
        for i, row in enumerate(rows):
            out = []
            for j, tile in enumerate(row):
                if i > 0:
                    tile = _blend(rows[i - 1][j], tile, blend_h, dim=3)
                if j > 0:
                    tile = _blend(row[j - 1], tile, blend_w, dim=4)
                out.append(tile[:, :, :, : self.tile_stride[0], : self.tile_stride[1]])
            out_rows.append(torch.cat(out, dim=4))
        return torch.cat(out_rows, dim=3)[:, :, :, : height * s, : width * s]

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """VAE latent -> the DiT's (per-channel mean/std, times ``scaling_factor``)."""
        m = self.latents_mean.view(1, -1, 1, 1, 1).to(z)
        s = self.latents_std.view(1, -1, 1, 1, 1).to(z)
        return (z - m) * self.config.scaling_factor / s

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        m = self.latents_mean.view(1, -1, 1, 1, 1).to(z)
        s = self.latents_std.view(1, -1, 1, 1, 1).to(z)
        return z * s / self.config.scaling_factor + m

    @torch.no_grad()
    def fit_latent_rgb(self, samples: int = 4, grid: tuple[int, int, int] = (3, 4, 4), seed: int = 0) -> dict:
        """Least-squares latent->RGB preview factors (``vae/latent_rgb.json``: ``factors`` C x 3, ``bias`` 3, which
        ``VideoGenerator`` turns into live previews): normalised latents drawn at random and decoded; each latent
        frame is paired with the mean of the pixel frames it decodes to (frame 0 alone, then ``temporal`` frames
        each), pooled to latent size."""
        c = self.config
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(samples, c.latent_channels, *grid, generator=g)
        p = next(self.parameters())
        video = self.decode(self.denormalize(z.to(p))).float().clamp(-1, 1).cpu()
        t, s = c.temporal_compression_ratio, c.spatial_compression_ratio
        groups = [video[:, :, :1]] + list(video[:, :, 1:].split(t, dim=2))
        pooled = F.avg_pool3d(torch.stack([x.mean(2) for x in groups], dim=2), (1, s, s))
        lat = z.permute(0, 2, 3, 4, 1).reshape(-1, z.shape[1]).double()
        rgb = pooled.permute(0, 2, 3, 4, 1).reshape(-1, 3).double()
        sol = torch.linalg.lstsq(torch.cat([lat, torch.ones(lat.shape[0], 1, dtype=lat.dtype)], dim=1), rgb).solution
        return {"factors": sol[:-1].tolist(), "bias": sol[-1].tolist()}

"""The sizes of official Wan VAE and UMT5 checkpoints, read from the tensors themselves (headers only).

The official ``Wan2.1_VAE.pth`` / ``Wan2.2_VAE.pth`` and ``models_t5_umt5-xxl-enc-bf16.pth`` carry no
config: the official code fixes the sizes.  Everything a Diffusers config needs is in the tensor shapes and
names, so the converter reads it there (a released checkpoint and a tiny test one alike, no sidecar file):

VAE (official names; Wan2.1: ``encoder.downsamples.K`` is one flat list of residual blocks and resamples;
Wan2.2: ``encoder.downsamples.I.downsamples.J``, one block per level)::

    base_dim          encoder.conv1.weight            [base_dim, in_channels, 3, 3, 3]
    in_channels       (Wan2.2: 3 * patch_size**2, the 2x2 pixel patchify)
    z_dim             conv2.weight                    [z, z, 1, 1, 1]  (post-quant conv)
    levels, num_res_blocks, dim_mult   the residual blocks' output channels per level / base_dim
    temperal_downsample                a level's resample has a time_conv
    decoder_base_dim  (Wan2.2) decoder.conv1.weight  [decoder_base_dim * dim_mult[-1], z, ...]

``latents_mean`` / ``latents_std`` are constants of the official code (16 Wan2.1 values, 48 Wan2.2 ones),
not tensors: a VAE with fewer latent channels (tiny test models) takes the first ``z_dim`` of them.

UMT5: ``token_embedding.weight`` [vocab, d_model], ``blocks.N`` (num_layers), ``pos_embedding`` [buckets,
heads] per block, ``attn.q.weight`` [heads * d_kv, d_model], ``ffn.fc1.weight`` [d_ff, d_model].
"""

from __future__ import annotations

import math
import re
from typing import Any

from fastvideo.conversion.base import ConversionError
from fastvideo.mapping.rules import TensorInfo


def _shape(headers: dict[str, TensorInfo], name: str, what: str) -> tuple[int, ...]:
    info = headers.get(name)
    if info is None:
        raise ConversionError(f"{what}: tensor {name!r} not found; is this an official Wan checkpoint?")
    return tuple(info.shape)


def is_wan22_vae(headers: dict[str, TensorInfo]) -> bool:
    return any(name.startswith("encoder.downsamples.0.downsamples.") for name in headers)


def vae_config_from_weights(headers: dict[str, TensorInfo], what: str = "VAE") -> dict[str, Any]:
    """A Diffusers ``AutoencoderKLWan`` config (Wan2.1 or Wan2.2) from an official VAE's tensor shapes."""
    from fastvideo.configs.models.vaes.wan import WAN21_LATENTS_MEAN, WAN21_LATENTS_STD
    from fastvideo.configs.models.vaes.wan22 import WAN22_LATENTS_MEAN, WAN22_LATENTS_STD

    base_dim, in_channels = _shape(headers, "encoder.conv1.weight", what)[:2]
    z = _shape(headers, "conv2.weight", what)[0]
    wan22 = is_wan22_vae(headers)
    levels: dict[int, dict[str, Any]] = {}  # level -> {"res": {block: out channels}, "time": bool}
    if wan22:
        pattern = re.compile(r"^encoder\.downsamples\.(\d+)\.downsamples\.(\d+)\.(residual\.6\.weight|time_conv\.)")
    else:
        pattern = re.compile(r"^encoder\.downsamples\.(\d+)\.(residual\.6\.weight|time_conv\.|resample\.1\.weight)")
    flat: dict[int, tuple[str, Any]] = {}
    for name, info in headers.items():
        m = pattern.match(name)
        if m is None:
            continue
        if wan22:
            level = levels.setdefault(int(m.group(1)), {"res": {}, "time": False})
            if m.group(3).startswith("residual"):
                level["res"][int(m.group(2))] = info.shape[0]
            else:
                level["time"] = True
        else:
            kind = m.group(2)
            k = int(m.group(1))
            if kind.startswith("residual"):
                flat[k] = ("res", info.shape[0])
            elif kind.startswith("time_conv"):
                flat[k] = ("time", None)
            else:
                flat.setdefault(k, ("resample", None))
    if not wan22:  # split the flat list at the resamples
        current: dict[str, Any] = {"res": {}, "time": False}
        for k in sorted(flat):
            kind, out = flat[k]
            if kind == "res":
                current["res"][k] = out
            else:
                current["time"] = kind == "time"
                levels[len(levels)] = current
                current = {"res": {}, "time": False}
        levels[len(levels)] = current
    if not levels or any(not lv["res"] for lv in levels.values()):
        raise ConversionError(f"{what}: could not read the encoder's levels from the tensor names")
    counts = {len(lv["res"]) for lv in levels.values()}
    if len(counts) != 1:
        raise ConversionError(f"{what}: levels have different numbers of residual blocks ({sorted(counts)})")
    n = len(levels)
    dim_mult = []
    for i in range(n):
        out = levels[i]["res"][max(levels[i]["res"])]
        if out % base_dim:
            raise ConversionError(f"{what}: level {i} has {out} channels, not a multiple of base_dim {base_dim}")
        dim_mult.append(out // base_dim)
    temporal = [bool(levels[i]["time"]) for i in range(n - 1)]
    if wan22:
        patch = math.isqrt(in_channels // 3)
        if 3 * patch * patch != in_channels:
            raise ConversionError(f"{what}: {in_channels} input channels are not 3 x a square patch")
        dec_first = _shape(headers, "decoder.conv1.weight", what)[0]
        mean, std = WAN22_LATENTS_MEAN, WAN22_LATENTS_STD
        extra = dict(decoder_base_dim=dec_first // dim_mult[-1], is_residual=True, in_channels=in_channels,
                     out_channels=_shape(headers, "decoder.head.2.weight", what)[0], patch_size=patch,
                     scale_factor_spatial=patch * 2 ** (n - 1), scale_factor_temporal=2 ** sum(temporal))
    else:
        mean, std = WAN21_LATENTS_MEAN, WAN21_LATENTS_STD
        extra = dict(scale_factor_spatial=2 ** (n - 1), scale_factor_temporal=2 ** sum(temporal))
    if z > len(mean):
        raise ConversionError(f"{what}: {z} latent channels, but the official latent statistics have {len(mean)}")
    return dict(base_dim=base_dim, z_dim=z, dim_mult=dim_mult, num_res_blocks=counts.pop(), attn_scales=[],
                temperal_downsample=temporal, dropout=0.0, latents_mean=list(mean[:z]), latents_std=list(std[:z]),
                **extra)


def umt5_config_from_weights(headers: dict[str, TensorInfo], what: str = "text encoder") -> dict[str, Any]:
    """UMT5 encoder sizes (``T5EncoderArchConfig`` keys) from the official T5 file's tensor shapes."""
    vocab, d_model = _shape(headers, "token_embedding.weight", what)
    layers = {int(m.group(1)) for name in headers if (m := re.match(r"^blocks\.(\d+)\.attn\.q\.weight$", name))}
    if not layers or sorted(layers) != list(range(len(layers))):
        raise ConversionError(f"{what}: blocks.N.attn.q.weight must exist for N = 0, 1, ...; found {sorted(layers)}")
    buckets, heads = _shape(headers, "blocks.0.pos_embedding.embedding.weight", what)
    inner = _shape(headers, "blocks.0.attn.q.weight", what)[0]
    if inner % heads:
        raise ConversionError(f"{what}: attention width {inner} is not divisible by {heads} heads")
    return dict(vocab_size=vocab, d_model=d_model, d_kv=inner // heads,
                d_ff=_shape(headers, "blocks.0.ffn.fc1.weight", what)[0], num_layers=len(layers), num_heads=heads,
                relative_attention_num_buckets=buckets)

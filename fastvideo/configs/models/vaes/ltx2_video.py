"""Arch config of LTX-2's video VAE (``AutoencoderKLLTX2Video``, the ``vae/`` component).

A causal 3D VAE with 4x4 pixel patchify, 32x spatial / 8x temporal compression and 128 latent
channels (LTX-2.0).  Field names are the Diffusers ``vae/config.json`` keys.  Our module names are
Diffusers' (identity mapping).  The official single file (prefix ``vae.``) numbers the encoder's
resnet groups and downsamplers as one flat list (``down_blocks.0..8``: resnets, downsampler, ...,
mid), the decoder's likewise (``up_blocks.0..6``), says ``res_blocks`` for ``resnets`` and keeps the
latent statistics under ``per_channel_statistics``; ``official_param_names_mapping`` says how.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fastvideo.configs.models.base import ArchConfig

OFFICIAL_PREFIX = "vae."
_P = r"^vae\."


def _official_to_diffusers() -> dict[str, str | None]:
    rules: dict[str, str | None] = {
        _P + r"per_channel_statistics\.mean-of-means$": "latents_mean",
        _P + r"per_channel_statistics\.std-of-means$": "latents_std",
        _P + r"per_channel_statistics\.": None,  # channel index, mean-of-stds: unused
    }
    # Encoder: official block 2i = our down_blocks.i resnets, 2i+1 = its downsampler, 8 = the mid block.
    for i in range(4):
        rules[_P + rf"encoder\.down_blocks\.{2 * i}\.res_blocks\."] = f"encoder.down_blocks.{i}.resnets."
        rules[_P + rf"encoder\.down_blocks\.{2 * i + 1}\."] = f"encoder.down_blocks.{i}.downsamplers.0."
    rules[_P + r"encoder\.down_blocks\.8\.res_blocks\."] = "encoder.mid_block.resnets."
    # Decoder: official 0 = mid, then (upsampler, resnets) per level.
    rules[_P + r"decoder\.up_blocks\.0\.res_blocks\."] = "decoder.mid_block.resnets."
    for i in range(3):
        rules[_P + rf"decoder\.up_blocks\.{2 * i + 1}\."] = f"decoder.up_blocks.{i}.upsamplers.0."
        rules[_P + rf"decoder\.up_blocks\.{2 * i + 2}\.res_blocks\."] = f"decoder.up_blocks.{i}.resnets."
    rules[_P] = ""
    return rules


@dataclass
class LTX2VideoVAEConfig(ArchConfig):
    checkpoint_class_names: ClassVar[tuple[str, ...]] = ("AutoencoderKLLTX2Video",)
    official_param_names_mapping: ClassVar[dict[str, str | None]] = _official_to_diffusers()

    in_channels: int = 3
    out_channels: int = 3
    latent_channels: int = 128
    block_out_channels: tuple[int, ...] = (256, 512, 1024, 2048)
    down_block_types: tuple[str, ...] = ("LTX2VideoDownBlock3D",) * 4
    decoder_block_out_channels: tuple[int, ...] = (256, 512, 1024)
    layers_per_block: tuple[int, ...] = (4, 6, 6, 2, 2)
    decoder_layers_per_block: tuple[int, ...] = (5, 5, 5, 5)
    spatio_temporal_scaling: bool | tuple[bool, ...] = (True, True, True, True)
    decoder_spatio_temporal_scaling: bool | tuple[bool, ...] = (True, True, True)
    decoder_inject_noise: bool | tuple[bool, ...] = (False, False, False, False)
    downsample_type: tuple[str, ...] = ("spatial", "temporal", "spatiotemporal", "spatiotemporal")
    upsample_type: tuple[str, ...] = ("spatiotemporal", "spatiotemporal", "spatiotemporal")
    upsample_residual: bool | tuple[bool, ...] = (True, True, True)
    upsample_factor: tuple[int, ...] = (2, 2, 2)
    timestep_conditioning: bool = False
    patch_size: int = 4
    patch_size_t: int = 1
    resnet_norm_eps: float = 1e-6
    scaling_factor: float = 1.0
    encoder_causal: bool = True
    decoder_causal: bool = True
    encoder_spatial_padding_mode: str = "zeros"
    decoder_spatial_padding_mode: str = "reflect"
    spatial_compression_ratio: int | None = None
    temporal_compression_ratio: int | None = None

    def __post_init__(self) -> None:
        n_enc, n_dec = len(self.layers_per_block), len(self.decoder_layers_per_block)
        if isinstance(self.spatio_temporal_scaling, bool):
            self.spatio_temporal_scaling = (self.spatio_temporal_scaling,) * (n_enc - 1)
        if isinstance(self.decoder_spatio_temporal_scaling, bool):
            self.decoder_spatio_temporal_scaling = (self.decoder_spatio_temporal_scaling,) * (n_dec - 1)
        if isinstance(self.decoder_inject_noise, bool):
            self.decoder_inject_noise = (self.decoder_inject_noise,) * n_dec
        if isinstance(self.upsample_residual, bool):
            self.upsample_residual = (self.upsample_residual,) * (n_dec - 1)
        for name in ("block_out_channels", "down_block_types", "decoder_block_out_channels", "layers_per_block",
                     "decoder_layers_per_block", "spatio_temporal_scaling", "decoder_spatio_temporal_scaling",
                     "decoder_inject_noise", "downsample_type", "upsample_type", "upsample_residual",
                     "upsample_factor"):
            setattr(self, name, tuple(getattr(self, name)))
        problems = []
        if self.timestep_conditioning:
            problems.append("timestep_conditioning (the LTX-2.0 VAE decodes without it)")
        if any(self.decoder_inject_noise):
            problems.append("decoder_inject_noise")
        if any(t != "LTX2VideoDownBlock3D" for t in self.down_block_types):
            problems.append(f"down_block_types {self.down_block_types}")
        if problems:
            raise ValueError("LTX2VideoVAEConfig: not ported: " + "; ".join(problems))
        if self.spatial_compression_ratio is None:
            self.spatial_compression_ratio = self.patch_size * 2 ** sum(self.spatio_temporal_scaling)
        if self.temporal_compression_ratio is None:
            self.temporal_compression_ratio = self.patch_size_t * 2 ** sum(self.spatio_temporal_scaling)

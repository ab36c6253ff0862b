"""Arch config of LTX-2's audio VAE (``AutoencoderKLLTX2Audio``, the ``audio_vae/`` component).

A 2D (time x mel bins) convolutional VAE over stereo log-mel spectrograms: 4x down in time and in mel
bins, ``latent_channels`` channels; causal along time (``causality_axis "height"``), pixel (RMS) norms.
Field names are the Diffusers ``audio_vae/config.json`` keys (defaults: LTX-2.0).  Our module names are
Diffusers' (identity mapping); the official single file prefixes them with ``audio_vae.`` and keeps the
latent statistics as ``per_channel_statistics.{mean,std}-of-means``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fastvideo.configs.models.base import ArchConfig

OFFICIAL_PREFIX = "audio_vae."
_P = r"^audio_vae\."


@dataclass
class LTX2AudioVAEConfig(ArchConfig):
    checkpoint_class_names: ClassVar[tuple[str, ...]] = ("AutoencoderKLLTX2Audio",)
    official_param_names_mapping: ClassVar[dict[str, str | None]] = {
        _P + r"per_channel_statistics\.mean-of-means$": "latents_mean",
        _P + r"per_channel_statistics\.std-of-means$": "latents_std",
        _P + r"per_channel_statistics\.": None,  # the other statistics are not used
        _P: "",
    }

    base_channels: int = 128
    output_channels: int = 2
    ch_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] | None = None
    in_channels: int = 2
    resolution: int = 256
    latent_channels: int = 8
    norm_type: str = "pixel"
    causality_axis: str | None = "height"
    dropout: float = 0.0
    mid_block_add_attention: bool = False
    sample_rate: int = 16000
    mel_hop_length: int = 160
    is_causal: bool = True
    mel_bins: int | None = 64
    double_z: bool = True

    # The latent is 4x smaller than the mel spectrogram in time and in mel bins (fixed in the reference).
    temporal_compression_ratio: ClassVar[int] = 4
    mel_compression_ratio: ClassVar[int] = 4

    def __post_init__(self) -> None:
        self.ch_mult = tuple(self.ch_mult)
        if self.attn_resolutions is not None:
            self.attn_resolutions = tuple(self.attn_resolutions)
        if self.causality_axis not in ("none", "width", "height", "width-compatibility"):
            raise ValueError(f"LTX2AudioVAEConfig: causality_axis {self.causality_axis!r}; supported: none, width, "
                             "height, width-compatibility")
        if self.norm_type not in ("group", "pixel"):
            raise ValueError(f"LTX2AudioVAEConfig: norm_type {self.norm_type!r}; supported: group, pixel")
        if self.norm_type == "group" and self.causality_axis != "none":
            raise ValueError("LTX2AudioVAEConfig: GroupNorm needs causality_axis 'none' (a group norm would see "
                             "future frames); the released model uses norm_type 'pixel'")

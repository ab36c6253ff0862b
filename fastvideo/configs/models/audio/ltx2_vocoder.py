"""Arch config of LTX-2's vocoder (``LTX2Vocoder``, the ``vocoder/`` component): a HiFi-GAN style
generator from the audio VAE's mel spectrogram (``[B, 2, T, 64]``: stereo) to a 24 kHz stereo waveform.

Our module names are Diffusers' (identity ``param_names_mapping``): ``conv_in``, ``upsamplers.I``,
``resnets.J.{convs1,convs2}.K`` (and ``acts1/acts2.K.{alpha,beta}`` for the Snake activations),
``conv_out``.  The official single file names them ``vocoder.{conv_pre,ups,resblocks,conv_post}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from fastvideo.configs.models.base import ArchConfig

OFFICIAL_PREFIX = "vocoder."
_P = r"^vocoder\."


@dataclass
class LTX2VocoderConfig(ArchConfig):
    """Hyper-parameters of the LTX-2.0 vocoder (defaults: the released model)."""

    checkpoint_class_names: ClassVar[tuple[str, ...]] = ("LTX2Vocoder",)
    official_param_names_mapping: ClassVar[dict[str, str]] = {
        _P + r"conv_pre\.": "conv_in.",
        _P + r"conv_post\.": "conv_out.",
        _P + r"ups\.": "upsamplers.",
        _P + r"resblocks\.": "resnets.",
        _P: "",
    }

    in_channels: int = 128
    hidden_channels: int = 1024
    out_channels: int = 2
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [16, 15, 8, 4, 4])
    upsample_factors: list[int] = field(default_factory=lambda: [6, 5, 2, 2, 2])
    resnet_kernel_sizes: list[int] = field(default_factory=lambda: [3, 7, 11])
    resnet_dilations: list[list[int]] = field(default_factory=lambda: [[1, 3, 5], [1, 3, 5], [1, 3, 5]])
    act_fn: str = "leaky_relu"
    leaky_relu_negative_slope: float = 0.1
    antialias: bool = False
    antialias_ratio: int = 2
    antialias_kernel_size: int = 12
    final_act_fn: str | None = "tanh"
    final_bias: bool = True
    output_sampling_rate: int = 24000

    def __post_init__(self) -> None:
        if len(self.upsample_kernel_sizes) != len(self.upsample_factors):
            raise ValueError("LTX2VocoderConfig: upsample_kernel_sizes and upsample_factors differ in length")
        if len(self.resnet_kernel_sizes) != len(self.resnet_dilations):
            raise ValueError("LTX2VocoderConfig: resnet_kernel_sizes and resnet_dilations differ in length")
        if self.act_fn not in ("leaky_relu", "snake", "snakebeta"):
            raise ValueError(f"LTX2VocoderConfig: act_fn {self.act_fn!r}; supported: leaky_relu, snake, snakebeta")

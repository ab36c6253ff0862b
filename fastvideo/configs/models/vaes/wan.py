"""Arch config of the Wan2.1 video VAE (Diffusers ``AutoencoderKLWan``).

Field names are exactly the keys Diffusers writes to ``vae/config.json``, so
``WanVAEConfig.from_dict(json.load(...))`` reads a Diffusers checkpoint as is.
Our module tree keeps Diffusers' parameter names, so ``param_names_mapping`` is
empty for Diffusers checkpoints.  ``official_param_names_mapping`` renames the
official ``Wan2.1_VAE.pth`` (Wan repo ``WanVAE_``) onto the same names.

Options that only Wan2.2's VAE uses (``is_residual``, ``patch_size``) are
accepted with their Wan2.1 values here; :meth:`WanVAEConfig.from_dict` hands a
config with ``is_residual: true`` to ``Wan22VAEConfig`` (``vaes/wan22.py``), and
anything else unsupported is rejected by :meth:`WanVAEConfig.validate` with a
message that says what is unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from fastvideo.configs.models.base import ArchConfig

WAN21_LATENTS_MEAN = [
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
    0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
]
WAN21_LATENTS_STD = [
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
    3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160,
]

# Official ResidualBlock.residual = Sequential(RMS_norm, SiLU, conv, RMS_norm, SiLU, Dropout, conv):
# only indices 0, 2, 3, 6 hold parameters.  ``shortcut`` is Diffusers' ``conv_shortcut``.
_RESIDUAL_PARTS = (
    (r"residual\.0\.", "norm1."),
    (r"residual\.2\.", "conv1."),
    (r"residual\.3\.", "norm2."),
    (r"residual\.6\.", "conv2."),
    (r"shortcut\.", "conv_shortcut."),
)


def official_wan_vae_mapping(num_res_blocks: int = 2, num_levels: int = 4) -> dict[str, str]:
    """Rules (ordered ``{regex: replacement}``) renaming official Wan2.1 VAE keys to Diffusers keys.

    Official layout (``wan/modules/vae.py``)::

        conv1 / conv2                         -> quant_conv / post_quant_conv
        {enc,dec}oder.conv1                   -> {enc,dec}oder.conv_in
        {enc,dec}oder.middle.{0,1,2}          -> mid_block.resnets.0 / attentions.0 / resnets.1
        {enc,dec}oder.head.{0,2}              -> norm_out / conv_out
        encoder.downsamples.K                 -> encoder.down_blocks.K       (same flat index)
        decoder.upsamples.K                   -> decoder.up_blocks.i.resnets.j  or  up_blocks.i.upsamplers.0

    The decoder's flat ``upsamples`` list holds, per level ``i``, ``num_res_blocks + 1``
    residual blocks followed (except on the last level) by one ``Resample``.  A regex
    replacement cannot do arithmetic, so each flat index gets its own anchored rule;
    the rules therefore depend on ``num_res_blocks`` and the number of levels
    (``len(dim_mult)``).  Every rule is anchored and ends at a ``.`` so ``1`` never
    matches ``10``.  Released Wan2.1: 2 res blocks, 4 levels -> decoder indices 0..14.
    """
    rules: dict[str, str] = {
        r"^conv1\.": "quant_conv.",
        r"^conv2\.": "post_quant_conv.",
        r"^(encoder|decoder)\.conv1\.": r"\1.conv_in.",
        r"^(encoder|decoder)\.head\.0\.": r"\1.norm_out.",
        r"^(encoder|decoder)\.head\.2\.": r"\1.conv_out.",
        r"^(encoder|decoder)\.middle\.1\.": r"\1.mid_block.attentions.0.",
    }
    for official, resnet in (("0", "0"), ("2", "1")):
        for part, name in _RESIDUAL_PARTS:
            rules[rf"^(encoder|decoder)\.middle\.{official}\.{part}"] = rf"\1.mid_block.resnets.{resnet}.{name}"
    # Encoder: same flat index, only the residual internals are renamed.
    for part, name in _RESIDUAL_PARTS:
        rules[rf"^encoder\.downsamples\.(\d+)\.{part}"] = rf"encoder.down_blocks.\1.{name}"
    rules[r"^encoder\.downsamples\.(\d+)\.(resample|time_conv)\."] = r"encoder.down_blocks.\1.\2."
    # Decoder: flat index -> (level, resnet) or (level, upsampler).
    flat = 0
    for level in range(num_levels):
        for j in range(num_res_blocks + 1):
            for part, name in _RESIDUAL_PARTS:
                rules[rf"^decoder\.upsamples\.{flat}\.{part}"] = f"decoder.up_blocks.{level}.resnets.{j}.{name}"
            flat += 1
        if level != num_levels - 1:
            rules[rf"^decoder\.upsamples\.{flat}\.(resample|time_conv)\."] = (
                rf"decoder.up_blocks.{level}.upsamplers.0.\1."
            )
            flat += 1
    return rules


@dataclass
class WanVAEConfig(ArchConfig):
    """Hyper-parameters of ``AutoencoderKLWan`` (Diffusers ``vae/config.json`` keys)."""

    checkpoint_class_names: ClassVar[tuple[str, ...]] = ("AutoencoderKLWan",)
    # Official ``Wan2.1_VAE.pth`` -> our (= Diffusers) names, for the released config.
    # For other depths use ``cfg.official_mapping()``.
    official_param_names_mapping: ClassVar[dict[str, str]] = official_wan_vae_mapping(2, 4)

    base_dim: int = 96
    decoder_base_dim: int | None = None
    z_dim: int = 16
    dim_mult: list[int] = field(default_factory=lambda: [1, 2, 4, 4])
    num_res_blocks: int = 2
    attn_scales: list[float] = field(default_factory=list)
    temperal_downsample: list[bool] = field(default_factory=lambda: [False, True, True])
    dropout: float = 0.0
    latents_mean: list[float] = field(default_factory=lambda: list(WAN21_LATENTS_MEAN))
    latents_std: list[float] = field(default_factory=lambda: list(WAN21_LATENTS_STD))
    # Newer Diffusers keys (Wan2.2 support); only the Wan2.1 values are implemented.
    is_residual: bool = False
    in_channels: int = 3
    out_channels: int = 3
    patch_size: int | None = None
    scale_factor_temporal: int | None = 4
    scale_factor_spatial: int | None = 8

    @property
    def spatial_compression_ratio(self) -> int:
        """Pixels per latent pixel: one 2x spatial downsample between consecutive levels."""
        return 2 ** (len(self.dim_mult) - 1)

    @property
    def temporal_compression_ratio(self) -> int:
        return 2 ** sum(bool(t) for t in self.temperal_downsample[: len(self.dim_mult) - 1])

    def official_mapping(self) -> dict[str, str]:
        """Official -> Diffusers rules for this config's depth (see :func:`official_wan_vae_mapping`)."""
        return official_wan_vae_mapping(self.num_res_blocks, len(self.dim_mult))

    def validate(self) -> None:
        """Raise ``ValueError`` for configs this (Wan2.1) implementation does not support."""
        problems: list[str] = []
        if self.is_residual:
            problems.append("is_residual=True (Wan2.2 residual down/up blocks) is not implemented")
        if self.patch_size not in (None, 1):
            problems.append(f"patch_size={self.patch_size} (Wan2.2 patchified VAE) is not implemented")
        if self.attn_scales:
            problems.append(f"attn_scales={self.attn_scales}: attention outside the mid block is not implemented")
        if len(self.dim_mult) < 1:
            problems.append("dim_mult must have at least one level")
        if len(self.temperal_downsample) < len(self.dim_mult) - 1:
            problems.append(
                f"temperal_downsample needs {len(self.dim_mult) - 1} entries for dim_mult={self.dim_mult}, "
                f"got {self.temperal_downsample}"
            )
        if len(self.latents_mean) != self.z_dim or len(self.latents_std) != self.z_dim:
            problems.append(
                f"latents_mean/latents_std need z_dim={self.z_dim} entries, "
                f"got {len(self.latents_mean)}/{len(self.latents_std)}"
            )
        if self.scale_factor_spatial is not None and self.scale_factor_spatial != self.spatial_compression_ratio:
            problems.append(
                f"scale_factor_spatial={self.scale_factor_spatial} but dim_mult={self.dim_mult} "
                f"gives {self.spatial_compression_ratio}"
            )
        t_ratio = self.temporal_compression_ratio
        if self.scale_factor_temporal is not None and self.scale_factor_temporal != t_ratio:
            problems.append(
                f"scale_factor_temporal={self.scale_factor_temporal} but temperal_downsample="
                f"{self.temperal_downsample} gives {t_ratio}"
            )
        if problems:
            raise ValueError("WanVAEConfig: unsupported config: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, strict: bool = False) -> WanVAEConfig:
        """Read a ``vae/config.json`` dict; a Wan2.2 VAE (``is_residual: true``) gives a ``Wan22VAEConfig``."""
        if cls is WanVAEConfig:
            from fastvideo.configs.models.vaes.wan22 import Wan22VAEConfig, is_wan22_vae_config

            if is_wan22_vae_config(data):
                return Wan22VAEConfig.from_dict(data, strict=strict)
        cfg = super().from_dict(data, strict=strict)
        cfg.validate()
        return cfg  # type: ignore[return-value]

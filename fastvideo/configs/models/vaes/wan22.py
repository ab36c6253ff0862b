"""Arch config of the Wan2.2 video VAE (Diffusers ``AutoencoderKLWan`` with ``is_residual: true``).

Wan2.2 (TI2V-5B) ships a second VAE under the same Diffusers class name as
Wan2.1's, so the class name alone does not tell them apart; ``vae/config.json``
does.  A Wan2.2 VAE is marked by::

    "is_residual": true          residual down/up blocks (avg-pool / duplicate shortcuts)
    "patch_size": 2              2x2 pixels -> channels before the encoder (and back after the decoder)
    "in_channels" / "out_channels": 12   = 3 colours * 2 * 2
    "z_dim": 48, "scale_factor_spatial": 16, "scale_factor_temporal": 4
    "base_dim": 160, "decoder_base_dim": 256, 48-value "latents_mean" / "latents_std"

:meth:`WanVAEConfig.from_dict` returns a :class:`Wan22VAEConfig` when
``is_residual`` is true, and ``AutoencoderKLWan.from_arch_config`` then builds
:class:`fastvideo.models.vaes.wan22.AutoencoderKLWan22` -- the registry entry
for ``AutoencoderKLWan`` stays one line and the choice is read from the data.

The published config also holds ``"clip_output": false``; Diffusers 0.42.1 has no
such option (it always clamps the decoded video to [-1, 1]) and the official
``Wan2_2_VAE.decode`` clamps too, so we clamp as well and keep the key in ``extra``.

Names: our module tree uses Diffusers' parameter names, so ``param_names_mapping``
is empty for Diffusers checkpoints; ``official_param_names_mapping`` renames the
official ``Wan2.2_VAE.pth`` (Wan2.2 repo ``wan/modules/vae2_2.py``, ``WanVAE_``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from fastvideo.configs.models.vaes.wan import _RESIDUAL_PARTS, WanVAEConfig

# Released Wan2.2 VAE statistics (official Wan2_2_VAE, and Diffusers' converted vae/config.json).
WAN22_LATENTS_MEAN = [
    -0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557,
    -0.1382, 0.0542, 0.2813, 0.0891, 0.1570, -0.0098, 0.0375, -0.1825,
    -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108, -0.2158, 0.2502,
    -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.1230,
    -0.0313, -0.1649, 0.0117, 0.0723, -0.2839, -0.2083, -0.0520, 0.3748,
    0.0152, 0.1957, 0.1433, -0.2944, 0.3573, -0.0548, -0.1681, -0.0667,
]
WAN22_LATENTS_STD = [
    0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013,
    0.8158, 1.0344, 0.5894, 1.0901, 0.6885, 0.6165, 0.8454, 0.4978,
    0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
    0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093,
    0.5709, 0.6065, 0.6415, 0.4944, 0.5726, 1.2042, 0.5458, 1.6887,
    0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744,
]


def is_wan22_vae_config(data: dict[str, Any]) -> bool:
    """True when a ``vae/config.json`` dict describes a Wan2.2 (residual) VAE."""
    return bool(data.get("is_residual", False))


def official_wan22_vae_mapping() -> dict[str, str]:
    """Rules (ordered ``{regex: replacement}``) renaming official ``Wan2.2_VAE.pth`` keys to Diffusers keys.

    Official layout (``wan/modules/vae2_2.py``)::

        conv1 / conv2                                  -> quant_conv / post_quant_conv
        {enc,dec}oder.conv1                            -> {enc,dec}oder.conv_in
        {enc,dec}oder.middle.{0,1,2}                   -> mid_block.resnets.0 / attentions.0 / resnets.1
        {enc,dec}oder.head.{0,2}                       -> norm_out / conv_out
        encoder.downsamples.I.downsamples.J  (ResidualBlock) -> encoder.down_blocks.I.resnets.J
        encoder.downsamples.I.downsamples.J  (Resample)      -> encoder.down_blocks.I.downsampler
        decoder.upsamples.I.upsamples.J      (ResidualBlock) -> decoder.up_blocks.I.resnets.J
        decoder.upsamples.I.upsamples.J      (Resample)      -> decoder.up_blocks.I.upsampler

    Unlike Wan2.1's flat lists, each level is its own block, so level and
    resnet indices carry over unchanged and the rules do not depend on the
    depth.  A residual block's tensors are ``residual.{0,2,3,6}`` / ``shortcut``,
    a resample's are ``resample.1`` / ``time_conv``: the part name tells the two
    apart (the resample is always the last entry of its level).  The average /
    duplicate shortcuts (``avg_shortcut``) hold no parameters.
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
    for side, ours, sampler in (("encoder", "down_blocks", "downsampler"), ("decoder", "up_blocks", "upsampler")):
        inner = "downsamples" if side == "encoder" else "upsamples"
        for part, name in _RESIDUAL_PARTS:
            rules[rf"^{side}\.{inner}\.(\d+)\.{inner}\.(\d+)\.{part}"] = rf"{side}.{ours}.\1.resnets.\2.{name}"
        rules[rf"^{side}\.{inner}\.(\d+)\.{inner}\.\d+\.(resample|time_conv)\."] = rf"{side}.{ours}.\1.{sampler}.\2."
    return rules


@dataclass
class Wan22VAEConfig(WanVAEConfig):
    """Hyper-parameters of the Wan2.2 VAE (Diffusers ``vae/config.json`` keys); defaults = released TI2V-5B VAE."""

    official_param_names_mapping: ClassVar[dict[str, str]] = official_wan22_vae_mapping()

    base_dim: int = 160
    decoder_base_dim: int | None = 256
    z_dim: int = 48
    latents_mean: list[float] = field(default_factory=lambda: list(WAN22_LATENTS_MEAN))
    latents_std: list[float] = field(default_factory=lambda: list(WAN22_LATENTS_STD))
    is_residual: bool = True
    in_channels: int = 12
    out_channels: int = 12
    patch_size: int | None = 2
    scale_factor_temporal: int | None = 4
    scale_factor_spatial: int | None = 16

    @property
    def patch(self) -> int:
        return self.patch_size or 1

    @property
    def video_channels(self) -> int:
        """Channels of the video itself (``in_channels`` counts the 2x2 patchified channels)."""
        return self.in_channels // (self.patch * self.patch)

    @property
    def spatial_compression_ratio(self) -> int:
        """Pixels per latent pixel: the patchify, then one 2x downsample between consecutive levels."""
        return self.patch * 2 ** (len(self.dim_mult) - 1)

    def official_mapping(self) -> dict[str, str]:
        """Official -> Diffusers rules (depth-independent for Wan2.2; see :func:`official_wan22_vae_mapping`)."""
        return official_wan22_vae_mapping()

    def validate(self) -> None:
        """Raise ``ValueError`` for configs this Wan2.2 implementation does not support."""
        problems: list[str] = []
        p = self.patch_size
        if not self.is_residual:
            problems.append("is_residual=False is the Wan2.1 VAE (use WanVAEConfig)")
        if not isinstance(p, int) or p < 1:
            problems.append(f"patch_size={p}: the Wan2.2 (residual) VAE needs an integer patch_size >= 1 "
                            f"(released: 2)")
        elif self.in_channels % (p * p) or self.out_channels != self.in_channels:
            problems.append(f"in_channels={self.in_channels} / out_channels={self.out_channels} must be equal and "
                            f"a multiple of patch_size**2={p * p}")
        if self.attn_scales:
            problems.append(f"attn_scales={self.attn_scales}: attention outside the mid block is not implemented")
        if len(self.dim_mult) < 1:
            problems.append("dim_mult must have at least one level")
        if len(self.temperal_downsample) >= len(self.dim_mult) - 1 >= 0:
            # The shortcuts pool (encoder) / duplicate (decoder) pixels into channels: counts must divide.
            levels = len(self.dim_mult)
            enc = [self.base_dim * m for m in [1, *self.dim_mult]]
            dec_base = self.decoder_base_dim or self.base_dim
            dec = [dec_base * m for m in [self.dim_mult[-1], *self.dim_mult[::-1]]]
            t_up = self.temperal_downsample[: levels - 1][::-1]
            for i in range(levels - 1):
                f_down = 4 * (2 if self.temperal_downsample[i] else 1)
                if (enc[i] * f_down) % enc[i + 1]:
                    problems.append(f"encoder level {i}: {enc[i]} channels * {f_down} is not a multiple of "
                                    f"{enc[i + 1]}")
                f_up = 4 * (2 if t_up[i] else 1)
                if (dec[i + 1] * f_up) % dec[i]:
                    problems.append(f"decoder level {i}: {dec[i + 1]} channels * {f_up} is not a multiple of "
                                    f"{dec[i]}")
            if enc[-2] % enc[-1]:
                problems.append(f"encoder last level: {enc[-2]} channels is not a multiple of {enc[-1]}")
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
        if not problems:
            if self.scale_factor_spatial is not None and self.scale_factor_spatial != self.spatial_compression_ratio:
                problems.append(
                    f"scale_factor_spatial={self.scale_factor_spatial} but patch_size={p} and dim_mult="
                    f"{self.dim_mult} give {self.spatial_compression_ratio}"
                )
            t_ratio = self.temporal_compression_ratio
            if self.scale_factor_temporal is not None and self.scale_factor_temporal != t_ratio:
                problems.append(
                    f"scale_factor_temporal={self.scale_factor_temporal} but temperal_downsample="
                    f"{self.temperal_downsample} gives {t_ratio}"
                )
        if problems:
            raise ValueError("Wan22VAEConfig: unsupported config: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, strict: bool = False) -> Wan22VAEConfig:
        """Read a ``config.json`` dict; keys it lacks take Diffusers' ``AutoencoderKLWan`` defaults.

        Those are the Wan2.1 values (``WanVAEConfig``'s defaults), not this class's
        released-Wan2.2 defaults, so a file means what it means to Diffusers.
        """
        data = {**WanVAEConfig().to_dict(), **data}
        cfg = super(WanVAEConfig, cls).from_dict(data, strict=strict)
        cfg.validate()
        return cfg  # type: ignore[return-value]

"""Official ``Wan2.1_VAE.pth`` names -> our (= Diffusers) names.

The official names and shapes are generated here from the official module
structure (Wan repo ``wan/modules/vae.py``: ``WanVAE_`` with ``Encoder3d`` /
``Decoder3d`` built from flat ``downsamples`` / ``upsamples`` Sequentials,
``ResidualBlock.residual = [RMS_norm, SiLU, conv, RMS_norm, SiLU, Dropout, conv]``,
``middle = [res, attn, res]``, ``head = [RMS_norm, SiLU, conv]``), written
independently of the mapping rules under test.
"""

from __future__ import annotations

import pytest
import torch

from fastvideo.configs.models.vaes.wan import WanVAEConfig, official_wan_vae_mapping
from fastvideo.mapping.rules import TensorInfo, build_report, compile_rules, map_name
from fastvideo.models.loader.weights import empty_init, map_state_dict, materialize, target_infos
from fastvideo.models.vaes.wan import AutoencoderKLWan


def official_shapes(cfg: WanVAEConfig) -> dict[str, tuple[int, ...]]:
    """Names and shapes of an official-layout state dict for ``cfg``."""
    out: dict[str, tuple[int, ...]] = {}

    def conv(name, cin, cout, k=(3, 3, 3)):
        out[f"{name}.weight"] = (cout, cin, *k)
        out[f"{name}.bias"] = (cout,)

    def rms(name, c, images=False):
        out[f"{name}.gamma"] = (c, 1, 1) if images else (c, 1, 1, 1)

    def residual(p, cin, cout):
        rms(f"{p}.residual.0", cin)
        conv(f"{p}.residual.2", cin, cout)
        rms(f"{p}.residual.3", cout)
        conv(f"{p}.residual.6", cout, cout)
        if cin != cout:
            conv(f"{p}.shortcut", cin, cout, (1, 1, 1))

    def attention(p, c):
        rms(f"{p}.norm", c, images=True)
        conv(f"{p}.to_qkv", c, 3 * c, (1, 1))
        conv(f"{p}.proj", c, c, (1, 1))

    def resample(p, c, mode):
        if mode.startswith("up"):
            conv(f"{p}.resample.1", c, c // 2, (3, 3))
            if mode == "upsample3d":
                conv(f"{p}.time_conv", c, 2 * c, (3, 1, 1))
        else:
            conv(f"{p}.resample.1", c, c, (3, 3))
            if mode == "downsample3d":
                conv(f"{p}.time_conv", c, c, (3, 1, 1))

    def middle_and_head(p, c, cout):
        residual(f"{p}.middle.0", c, c)
        attention(f"{p}.middle.1", c)
        residual(f"{p}.middle.2", c, c)
        rms(f"{p}.head.0", c)
        conv(f"{p}.head.2", c, cout)

    base, z, mult, nrb, levels = cfg.base_dim, cfg.z_dim, cfg.dim_mult, cfg.num_res_blocks, len(cfg.dim_mult)
    # encoder
    dims = [base * m for m in [1, *mult]]
    conv("encoder.conv1", 3, dims[0])
    k = 0
    for i in range(levels):
        cin = dims[i]
        for _ in range(nrb):
            residual(f"encoder.downsamples.{k}", cin, dims[i + 1])
            cin, k = dims[i + 1], k + 1
        if i != levels - 1:
            resample(f"encoder.downsamples.{k}", dims[i + 1],
                     "downsample3d" if cfg.temperal_downsample[i] else "downsample2d")
            k += 1
    middle_and_head("encoder", dims[-1], 2 * z)
    conv("conv1", 2 * z, 2 * z, (1, 1, 1))
    conv("conv2", z, z, (1, 1, 1))
    # decoder
    dims = [base * m for m in [mult[-1], *mult[::-1]]]
    up = cfg.temperal_downsample[: levels - 1][::-1]
    conv("decoder.conv1", z, dims[0])
    k = 0
    for i in range(levels):
        cin = dims[i] // 2 if i > 0 else dims[i]
        for _ in range(nrb + 1):
            residual(f"decoder.upsamples.{k}", cin, dims[i + 1])
            cin, k = dims[i + 1], k + 1
        if i != levels - 1:
            resample(f"decoder.upsamples.{k}", dims[i + 1], "upsample3d" if up[i] else "upsample2d")
            k += 1
    # decoder middle/head: channels dims[0] in, 3 out
    residual("decoder.middle.0", dims[0], dims[0])
    attention("decoder.middle.1", dims[0])
    residual("decoder.middle.2", dims[0], dims[0])
    rms("decoder.head.0", dims[-1])
    conv("decoder.head.2", dims[-1], 3)
    return out


def _meta_model(cfg: WanVAEConfig) -> AutoencoderKLWan:
    with empty_init():
        return AutoencoderKLWan(cfg)


# Tiny, but with the released depth (2 res blocks, 4 levels) so the decoder's flat
# indices are the real ones; channel counts differ per level so shapes catch misplacements.
TINY_RELEASE_DEPTH = dict(base_dim=4, z_dim=4, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                          temperal_downsample=[False, True, True],
                          latents_mean=[0.0] * 4, latents_std=[1.0] * 4)

HAND_WRITTEN = {
    "encoder.conv1.weight": "encoder.conv_in.weight",
    "decoder.conv1.bias": "decoder.conv_in.bias",
    "conv1.weight": "quant_conv.weight",
    "conv2.bias": "post_quant_conv.bias",
    "decoder.middle.0.residual.0.gamma": "decoder.mid_block.resnets.0.norm1.gamma",
    "encoder.middle.2.residual.6.weight": "encoder.mid_block.resnets.1.conv2.weight",
    "encoder.middle.1.norm.gamma": "encoder.mid_block.attentions.0.norm.gamma",
    "decoder.middle.1.to_qkv.weight": "decoder.mid_block.attentions.0.to_qkv.weight",
    "encoder.head.0.gamma": "encoder.norm_out.gamma",
    "decoder.head.2.weight": "decoder.conv_out.weight",
    "encoder.downsamples.0.residual.6.bias": "encoder.down_blocks.0.conv2.bias",
    "encoder.downsamples.2.resample.1.weight": "encoder.down_blocks.2.resample.1.weight",
    "encoder.downsamples.3.shortcut.weight": "encoder.down_blocks.3.conv_shortcut.weight",
    "encoder.downsamples.5.time_conv.bias": "encoder.down_blocks.5.time_conv.bias",
    "decoder.upsamples.3.resample.1.weight": "decoder.up_blocks.0.upsamplers.0.resample.1.weight",
    "decoder.upsamples.3.time_conv.weight": "decoder.up_blocks.0.upsamplers.0.time_conv.weight",
    "decoder.upsamples.4.shortcut.bias": "decoder.up_blocks.1.resnets.0.conv_shortcut.bias",
    "decoder.upsamples.5.residual.2.weight": "decoder.up_blocks.1.resnets.1.conv1.weight",
    "decoder.upsamples.10.residual.3.gamma": "decoder.up_blocks.2.resnets.2.norm2.gamma",
    "decoder.upsamples.11.resample.1.bias": "decoder.up_blocks.2.upsamplers.0.resample.1.bias",
    "decoder.upsamples.14.residual.6.weight": "decoder.up_blocks.3.resnets.2.conv2.weight",
}


def test_hand_written_names():
    rules = compile_rules(WanVAEConfig.official_param_names_mapping)
    cfg = WanVAEConfig(**TINY_RELEASE_DEPTH)
    model_params = dict(_meta_model(cfg).state_dict())
    official = official_shapes(cfg)
    for src, want in HAND_WRITTEN.items():
        got, rule = map_name(src, rules)
        assert got == want, (src, got, rule)
        assert got in model_params, got
        assert tuple(model_params[got].shape) == official[src], src


def _report(cfg: WanVAEConfig, mapping):
    source = {k: TensorInfo(v, "F32") for k, v in official_shapes(cfg).items()}
    return source, build_report(source, target_infos(_meta_model(cfg)), mapping, "vae")


def test_released_wan21_vae_maps_one_to_one():
    cfg = WanVAEConfig()  # released config, built on meta
    source, report = _report(cfg, WanVAEConfig.official_param_names_mapping)
    assert len(source) == 194
    assert report.ok, report.summary()
    assert report.counts["mapped"] == 194
    assert len({r.target for r in report.rows}) == 194


@pytest.mark.parametrize("kw", [
    TINY_RELEASE_DEPTH,
    dict(base_dim=4, z_dim=4, dim_mult=[1, 2, 2, 2], num_res_blocks=1, temperal_downsample=[False, True, True],
         latents_mean=[0.0] * 4, latents_std=[1.0] * 4),
    dict(base_dim=4, z_dim=4, dim_mult=[1, 2, 2], num_res_blocks=3, temperal_downsample=[True, True],
         latents_mean=[0.0] * 4, latents_std=[1.0] * 4, scale_factor_spatial=4, scale_factor_temporal=4),
])
def test_generated_official_state_dict_loads(kw):
    cfg = WanVAEConfig(**kw)
    source, report = _report(cfg, cfg.official_mapping())
    assert report.ok, report.summary()
    assert report.counts["mapped"] == len(source)
    # and it actually loads and runs
    torch.manual_seed(0)
    sd = {k: torch.randn(v) * 0.1 for k, v in official_shapes(cfg).items()}
    mapped, reverse = map_state_dict(sd.items(), cfg.official_mapping())
    model = materialize(_meta_model(cfg), mapped).eval()
    assert len(reverse) == len(sd)
    out = model.decode(torch.randn(1, 4, 2, 2, 2))
    assert out.shape[1] == 3


def test_matches_diffusers_single_file_converter():
    pytest.importorskip("diffusers")
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    official = official_shapes(WanVAEConfig())
    theirs = convert_wan_vae_to_diffusers({k: k for k in official})  # value = source name
    rules = compile_rules(WanVAEConfig.official_param_names_mapping)
    ours = {map_name(src, rules)[0]: src for src in official}
    assert {v: k for k, v in theirs.items()} == {v: k for k, v in ours.items()}


def test_rules_are_valid_and_renderable():
    from fastvideo.mapping.rules import rules_from_python, rules_to_python

    rules = official_wan_vae_mapping(2, 4)
    assert rules == WanVAEConfig.official_param_names_mapping
    assert rules_from_python(rules_to_python(rules)) == rules

"""Wan2.2 VAE: parity with Diffusers' ``AutoencoderKLWan`` (``is_residual``), name mappings, loading (CPU, fp32).

Tiny model with the released structure (4 levels, 2 res blocks, patch 2 -> 16x
spatial, 4x temporal) but small widths.  The official names are generated here
from the official module structure (Wan2.2 ``wan/modules/vae2_2.py``: per-level
``Down_ResidualBlock.downsamples`` / ``Up_ResidualBlock.upsamples`` Sequentials,
``ResidualBlock.residual = [RMS_norm, SiLU, conv, RMS_norm, SiLU, Dropout, conv]``,
``middle = [res, attn, res]``, ``head = [RMS_norm, SiLU, conv]``), written
independently of the mapping rules under test.

Measured max |ours - Diffusers| (fp32, CPU; printed by ``test_report_measured`` with -s): encode
mean/logvar 9 and 13 frames ~1.6e-7, decode 9 and 13 frames ~1.6e-6, tiled (2x2 tiles) encode
~1.4e-7 / decode ~1.5e-6, loaded from a save_pretrained folder ~1.3e-6.  Asserted: < 1e-4.
"""

from __future__ import annotations

import json

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from fastvideo.configs.models.vaes.wan import WanVAEConfig  # noqa: E402
from fastvideo.configs.models.vaes.wan22 import (  # noqa: E402
    WAN22_LATENTS_MEAN,
    WAN22_LATENTS_STD,
    Wan22VAEConfig,
    official_wan22_vae_mapping,
)
from fastvideo.mapping.rules import TensorInfo, build_report, compile_rules, map_name  # noqa: E402
from fastvideo.models.loader.weights import empty_init, map_state_dict, materialize, target_infos  # noqa: E402
from fastvideo.models.vaes.wan import AutoencoderKLWan  # noqa: E402
from fastvideo.models.vaes.wan22 import AutoencoderKLWan22, patchify, unpatchify  # noqa: E402

Z = 8
TINY = dict(
    base_dim=8, decoder_base_dim=12, z_dim=Z, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
    temperal_downsample=[False, True, True], is_residual=True, in_channels=12, out_channels=12,
    patch_size=2, scale_factor_spatial=16, scale_factor_temporal=4,
    latents_mean=[0.05 * i for i in range(Z)], latents_std=[0.5 + 0.1 * i for i in range(Z)],
)
TOL = 1e-4
MEASURED: dict[str, float] = {}


def _check(name: str, got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.shape == want.shape, (name, got.shape, want.shape)
    err = (got - want).abs().max().item()
    MEASURED[name] = err
    assert err < TOL, (name, err)


@pytest.fixture(scope="module")
def ref():
    torch.manual_seed(0)
    model = diffusers.AutoencoderKLWan(**TINY).eval()
    with torch.no_grad():  # default init, plus non-trivial norm scales and biases
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def cfg(ref):
    return WanVAEConfig.from_dict(dict(ref.config))  # the generic entry point picks the Wan2.2 config


def _meta(cfg) -> AutoencoderKLWan:
    with empty_init():
        return AutoencoderKLWan.from_arch_config(cfg)


@pytest.fixture(scope="module")
def ours(ref, cfg):
    sd, _ = map_state_dict(ref.state_dict().items(), cfg.param_names_mapping)
    return materialize(_meta(cfg), sd).eval()


def _video(frames: int, h: int = 32, w: int = 48, seed: int = 1) -> torch.Tensor:
    return torch.rand(1, 3, frames, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ----------------------------------------------------------------------------- config and dispatch


def test_config_identifies_wan22(ref, cfg, ours):
    assert type(cfg) is Wan22VAEConfig and isinstance(ours, AutoencoderKLWan22)
    assert cfg.spatial_compression_ratio == 16 and cfg.temporal_compression_ratio == 4
    assert cfg.video_channels == 3 and cfg.param_names_mapping == {}
    assert cfg.latents_mean == TINY["latents_mean"] and cfg.latents_std == TINY["latents_std"]
    import inspect

    params = set(inspect.signature(diffusers.AutoencoderKLWan.__init__).parameters) - {"self"}
    assert params <= Wan22VAEConfig.field_names()
    assert WanVAEConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()
    # a Wan2.1 config still reads as Wan2.1 and builds the Wan2.1 class
    v21 = WanVAEConfig.from_dict(dict(base_dim=8, z_dim=4, dim_mult=[1, 2, 2, 2], num_res_blocks=1,
                                      latents_mean=[0.0] * 4, latents_std=[1.0] * 4))
    assert type(v21) is WanVAEConfig and type(_meta(v21)) is AutoencoderKLWan


def test_defaults_are_the_released_wan22_vae():
    # Diffusers' scripts/convert_wan_to_diffusers.py ``vae22_diffusers_config`` / the published vae/config.json
    published = {"_class_name": "AutoencoderKLWan", "attn_scales": [], "base_dim": 160, "clip_output": False,
                 "decoder_base_dim": 256, "dim_mult": [1, 2, 4, 4], "dropout": 0.0, "in_channels": 12,
                 "is_residual": True, "latents_mean": WAN22_LATENTS_MEAN, "latents_std": WAN22_LATENTS_STD,
                 "num_res_blocks": 2, "out_channels": 12, "patch_size": 2, "scale_factor_spatial": 16,
                 "scale_factor_temporal": 4, "temperal_downsample": [False, True, True], "z_dim": 48}
    cfg = WanVAEConfig.from_dict(published)
    assert type(cfg) is Wan22VAEConfig and len(cfg.latents_mean) == len(cfg.latents_std) == 48
    assert cfg.extra == {"clip_output": False}
    assert {k: v for k, v in cfg.to_dict().items() if k in published} == \
        {k: v for k, v in published.items() if not k.startswith("_") and k != "clip_output"}
    assert Wan22VAEConfig().to_dict() == cfg.to_dict()  # our defaults are the released config
    model = _meta(cfg)
    assert model.encoder.conv_in.in_channels == 12 and model.decoder.conv_out.out_channels == 12
    assert model.decoder.conv_in.out_channels == 1024 and model.encoder.conv_out.out_channels == 96


@pytest.mark.parametrize("bad, match", [
    ({"patch_size": None}, "patch_size"),
    ({"in_channels": 10, "out_channels": 10}, "multiple of patch_size"),
    ({"scale_factor_spatial": 8}, "scale_factor_spatial"),
    ({"latents_mean": [0.0] * 3}, "z_dim"),
    ({"attn_scales": [0.5]}, "attn_scales"),
])
def test_config_rejects_unsupported(bad, match):
    with pytest.raises(ValueError, match=f"unsupported.*{match}"):
        WanVAEConfig.from_dict({**TINY, **bad})


def test_patchify_round_trip_and_layout():
    x = torch.randn(2, 3, 5, 8, 6)
    p = patchify(x, 2)
    assert p.shape == (2, 12, 5, 4, 3)
    # channel c*4 + r*2 + q holds pixel (2h + q, 2w + r)  (official "b c f (h q) (w r) -> b (c r q) f h w")
    c, r, q, h, w = 1, 1, 0, 2, 1
    assert p[0, c * 4 + r * 2 + q, 3, h, w] == x[0, c, 3, 2 * h + q, 2 * w + r]
    assert torch.equal(unpatchify(p, 2), x)


# ----------------------------------------------------------------------------- fp32 parity


@pytest.mark.parametrize("frames", [9, 13])
def test_encode_parity_multi_chunk(ref, ours, frames):
    x = _video(frames, seed=frames)
    with torch.no_grad():
        want = ref.encode(x).latent_dist
    got = ours.encode(x)
    assert got.mean.shape == (1, Z, 1 + (frames - 1) // 4, 2, 3)
    _check(f"encode mean T={frames}", got.mean, want.mean)
    _check(f"encode logvar T={frames}", got.logvar, want.logvar)


@pytest.mark.parametrize("latent_frames", [3, 4])
def test_decode_parity_multi_chunk(ref, ours, latent_frames):
    z = torch.randn(1, Z, latent_frames, 2, 3, generator=torch.Generator().manual_seed(latent_frames))
    with torch.no_grad():
        want = ref.decode(z).sample
    got = ours.decode(z)
    assert got.shape == (1, 3, 1 + 4 * (latent_frames - 1), 32, 48)
    assert got.abs().max() <= 1.0
    _check(f"decode T={1 + 4 * (latent_frames - 1)}", got, want)


def test_single_frame_and_no_state_between_calls(ref, ours):
    x = _video(1, seed=7)
    with torch.no_grad():
        want = ref(x).sample
    first = ours(x)
    _check("round trip T=1", first, want)
    ours.decode(torch.randn(1, Z, 2, 2, 3))  # a call in between must not leak time context
    torch.testing.assert_close(ours(x), first, atol=0, rtol=0)


def _tiling_pair(ref, cfg, pixel_tiles):
    """Ours with pixel tiles; Diffusers for decode with the same, for encode with half (see wan22.py)."""
    sd, _ = map_state_dict(ref.state_dict().items(), cfg.param_names_mapping)
    ours = materialize(_meta(cfg), sd).eval()
    ours.enable_tiling(**pixel_tiles)
    theirs = diffusers.AutoencoderKLWan(**TINY).eval()
    theirs.load_state_dict(ref.state_dict())
    return ours, theirs


def test_tiled_encode_decode_match_diffusers(ref, cfg):
    tiles = dict(tile_sample_min_height=32, tile_sample_min_width=48,
                 tile_sample_stride_height=16, tile_sample_stride_width=32)
    ours, theirs = _tiling_pair(ref, cfg, tiles)
    x = _video(9, h=32, w=64, seed=11)  # frame larger than a tile: 2 x 2 tiles (encode and decode)
    with torch.no_grad():
        theirs.enable_tiling(**{k: v // 2 for k, v in tiles.items()})  # Diffusers tiles the patchified input
        want_z = theirs.encode(x).latent_dist.mean
        theirs.enable_tiling(**tiles)
        got_z = ours.encode(x).mean
        _check("tiled encode T=9", got_z, want_z)
        want = theirs.decode(got_z).sample
    got = ours.decode(got_z)
    assert got.shape == x.shape
    _check("tiled decode T=9", got, want)
    # tiling really happened (the untiled result differs)
    plain = _tiling_pair(ref, cfg, tiles)[0]
    plain.disable_tiling()
    assert (plain.decode(got_z) - got).abs().max() > 1e-3


def test_validation_messages(ours):
    with pytest.raises(ValueError, match="expects 3 channels"):
        ours.encode(torch.zeros(1, 12, 5, 32, 32))
    with pytest.raises(ValueError, match="height.*multiple of 16"):
        ours.encode(torch.zeros(1, 3, 5, 24, 32))
    with pytest.raises(ValueError, match="T=8"):
        ours.encode(torch.zeros(1, 3, 8, 32, 32))
    with pytest.raises(ValueError, match="multiple of 16"):
        ours.enable_tiling(tile_sample_min_height=40)
    ours.disable_tiling()


def test_latent_normalisation_uses_config_stats(ours):
    mu = torch.randn(1, Z, 2, 2, 3)
    mean = torch.tensor(TINY["latents_mean"]).view(1, Z, 1, 1, 1)
    std = torch.tensor(TINY["latents_std"]).view(1, Z, 1, 1, 1)
    torch.testing.assert_close(ours.normalize_latents(mu), (mu - mean) / std)
    torch.testing.assert_close(ours.denormalize_latents(ours.normalize_latents(mu)), mu, atol=1e-6, rtol=1e-6)


# ----------------------------------------------------------------------------- name mappings


def test_diffusers_names_cover_every_key(ref, cfg):
    source = {k: TensorInfo(tuple(v.shape), "F32") for k, v in ref.state_dict().items()}
    report = build_report(source, target_infos(_meta(cfg)), cfg.param_names_mapping, "vae")
    assert report.ok, report.summary()
    assert report.counts["mapped"] == len(source) == len(target_infos(_meta(cfg)))


def official_shapes(cfg: Wan22VAEConfig) -> dict[str, tuple[int, ...]]:
    """Names and shapes of an official ``Wan2.2_VAE.pth``-layout state dict for ``cfg``."""
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

    def resample(p, c, mode):  # Wan2.2: up convs keep the channels
        conv(f"{p}.resample.1", c, c, (3, 3))
        if mode == "upsample3d":
            conv(f"{p}.time_conv", c, 2 * c, (3, 1, 1))
        elif mode == "downsample3d":
            conv(f"{p}.time_conv", c, c, (3, 1, 1))

    def middle(p, c):
        residual(f"{p}.middle.0", c, c)
        rms(f"{p}.middle.1.norm", c, images=True)
        conv(f"{p}.middle.1.to_qkv", c, 3 * c, (1, 1))
        conv(f"{p}.middle.1.proj", c, c, (1, 1))
        residual(f"{p}.middle.2", c, c)

    z, mult, nrb, levels = cfg.z_dim, cfg.dim_mult, cfg.num_res_blocks, len(cfg.dim_mult)
    tdown = cfg.temperal_downsample
    dims = [cfg.base_dim * m for m in [1, *mult]]
    conv("encoder.conv1", 12, dims[0])
    for i in range(levels):
        cin = dims[i]
        for j in range(nrb):
            residual(f"encoder.downsamples.{i}.downsamples.{j}", cin, dims[i + 1])
            cin = dims[i + 1]
        if i != levels - 1:
            resample(f"encoder.downsamples.{i}.downsamples.{nrb}", dims[i + 1],
                     "downsample3d" if tdown[i] else "downsample2d")
    middle("encoder", dims[-1])
    rms("encoder.head.0", dims[-1])
    conv("encoder.head.2", dims[-1], 2 * z)
    conv("conv1", 2 * z, 2 * z, (1, 1, 1))
    conv("conv2", z, z, (1, 1, 1))
    dims = [(cfg.decoder_base_dim or cfg.base_dim) * m for m in [mult[-1], *mult[::-1]]]
    tup = tdown[: levels - 1][::-1]
    conv("decoder.conv1", z, dims[0])
    middle("decoder", dims[0])
    for i in range(levels):
        cin = dims[i]
        for j in range(nrb + 1):
            residual(f"decoder.upsamples.{i}.upsamples.{j}", cin, dims[i + 1])
            cin = dims[i + 1]
        if i != levels - 1:
            resample(f"decoder.upsamples.{i}.upsamples.{nrb + 1}", dims[i + 1],
                     "upsample3d" if tup[i] else "upsample2d")
    rms("decoder.head.0", dims[-1])
    conv("decoder.head.2", dims[-1], 12)
    return out


HAND_WRITTEN = {
    "encoder.conv1.weight": "encoder.conv_in.weight",
    "conv1.bias": "quant_conv.bias",
    "conv2.weight": "post_quant_conv.weight",
    "encoder.downsamples.0.downsamples.0.residual.0.gamma": "encoder.down_blocks.0.resnets.0.norm1.gamma",
    "encoder.downsamples.1.downsamples.0.shortcut.weight": "encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
    "encoder.downsamples.1.downsamples.1.residual.6.bias": "encoder.down_blocks.1.resnets.1.conv2.bias",
    "encoder.downsamples.0.downsamples.2.resample.1.weight": "encoder.down_blocks.0.downsampler.resample.1.weight",
    "encoder.downsamples.2.downsamples.2.time_conv.bias": "encoder.down_blocks.2.downsampler.time_conv.bias",
    "encoder.middle.1.to_qkv.weight": "encoder.mid_block.attentions.0.to_qkv.weight",
    "encoder.head.2.weight": "encoder.conv_out.weight",
    "decoder.middle.2.residual.3.gamma": "decoder.mid_block.resnets.1.norm2.gamma",
    "decoder.upsamples.0.upsamples.2.residual.2.weight": "decoder.up_blocks.0.resnets.2.conv1.weight",
    "decoder.upsamples.0.upsamples.3.time_conv.weight": "decoder.up_blocks.0.upsampler.time_conv.weight",
    "decoder.upsamples.2.upsamples.3.resample.1.bias": "decoder.up_blocks.2.upsampler.resample.1.bias",
    "decoder.upsamples.2.upsamples.0.shortcut.bias": "decoder.up_blocks.2.resnets.0.conv_shortcut.bias",
    "decoder.head.0.gamma": "decoder.norm_out.gamma",
}


def test_official_hand_written_names(cfg):
    rules = compile_rules(Wan22VAEConfig.official_param_names_mapping)
    params = target_infos(_meta(cfg))
    official = official_shapes(cfg)
    for src, want in HAND_WRITTEN.items():
        got, rule = map_name(src, rules)
        assert got == want, (src, got, rule)
        assert tuple(params[got].shape) == official[src], src


@pytest.mark.parametrize("kind", ["tiny", "released"])
def test_official_names_cover_every_key(cfg, kind):
    cfg = cfg if kind == "tiny" else Wan22VAEConfig()  # released: 160/256/48, built on meta
    source = {k: TensorInfo(v, "F32") for k, v in official_shapes(cfg).items()}
    targets = target_infos(_meta(cfg))
    report = build_report(source, targets, cfg.official_mapping(), "vae")
    assert report.ok, report.summary()
    assert report.counts["mapped"] == len(source) == len(targets)
    assert len({r.target for r in report.rows}) == len(source)


def test_official_state_dict_loads_and_matches_diffusers(ref, cfg, ours):
    """Official names -> ours gives the same model: rename Diffusers' weights to official names, load, compare."""
    rules = compile_rules(official_wan22_vae_mapping())
    to_official = {map_name(src, rules)[0]: src for src in official_shapes(cfg)}
    official_sd = {to_official[k]: v for k, v in ref.state_dict().items()}
    sd, reverse = map_state_dict(official_sd.items(), cfg.official_mapping())
    model = materialize(_meta(cfg), sd).eval()
    assert len(reverse) == len(official_sd)
    z = torch.randn(1, Z, 2, 2, 2, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(model.decode(z), ours.decode(z), atol=0, rtol=0)


# ----------------------------------------------------------------------------- loading


def test_loads_diffusers_folder_through_registry(ref, tmp_path):
    from fastvideo.configs.registry import COMPONENT_CLASSES
    from fastvideo.models.loader.component_loader import load_module

    folder = tmp_path / "vae"
    ref.save_pretrained(str(folder), safe_serialization=True)
    written = json.loads((folder / "config.json").read_text())
    assert written["_class_name"] == "AutoencoderKLWan" and written["is_residual"] is True
    assert (folder / "diffusion_pytorch_model.safetensors").is_file()
    model, arch, report = load_module(folder, COMPONENT_CLASSES["AutoencoderKLWan"], component="vae")
    assert isinstance(model, AutoencoderKLWan22) and type(arch) is Wan22VAEConfig
    assert arch.latents_std == TINY["latents_std"]
    x = _video(5, seed=13)
    with torch.no_grad():
        want = ref.encode(x).latent_dist.mean
    _check("loaded encode T=5", model.encode(x).mean, want)


def test_model_folder_with_wan22_vae_loads_it(ref, tiny_t2v, tmp_path):
    """A whole Diffusers model folder whose vae/ is a Wan2.2 VAE: load_component picks our Wan2.2 class."""
    import shutil

    from fastvideo import load_component

    folder = tmp_path / "tiny-wan22-vae"
    shutil.copytree(tiny_t2v, folder)
    shutil.rmtree(folder / "vae")
    ref.save_pretrained(str(folder / "vae"), safe_serialization=True)
    vae = load_component(str(folder), "vae")
    assert isinstance(vae, AutoencoderKLWan22)
    z = torch.randn(1, Z, 2, 2, 3, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        want = ref.decode(z).sample
    _check("loaded decode T=5", vae.decode(z), want)


def test_report_measured():
    print("\nWan2.2 VAE max |ours - Diffusers| (fp32):")
    for name, err in MEASURED.items():
        print(f"  {name:28s} {err:.2e}")

"""``fastvideo bench --arch`` for every family arch, on the CPU (the timing itself needs a GPU): each arch's DiT
builds, its latent geometry sizes the inputs and the FLOP floor, and a size the arch cannot take is refused
before any GPU work."""

from __future__ import annotations

import pytest
import torch

from fastvideo.perf.bench import ARCHS, arch_geometry, build_dits, dit_inputs, run_bench, vae_config
from fastvideo.perf.flops import dit_forward_work


@pytest.mark.parametrize(("arch", "size", "tokens", "latent_channels", "dit_in"), [
    ("wan2.1-t2v-1.3b", (81, 480, 832), 21 * 30 * 52, 16, 16),
    ("wan2.2-ti2v-5b", (121, 704, 1280), 31 * 22 * 40, 48, 48),
    ("wan2.2-t2v-a14b", (81, 720, 1280), 21 * 45 * 80, 16, 16),
    ("wan2.2-i2v-a14b", (81, 720, 1280), 21 * 45 * 80, 16, 36),
])
def test_arch_geometry_and_inputs(arch, size, tokens, latent_channels, dit_in):
    g = arch_geometry(arch)
    assert g.latent_channels == latent_channels
    cfg, model, ref = build_dits(arch, torch.device("meta"), torch.bfloat16, False)
    assert ref is None and cfg.in_channels == dit_in and model.config.hidden_size == cfg.hidden_size
    assert dit_forward_work(cfg, *size, geometry=g).tokens == tokens
    f, h, w = size
    x, t, c = dit_inputs(cfg, f, h // 8, w // 8, 1, "cpu", torch.float32, text_len=4, geometry=g)
    assert tuple(x.shape) == g.latent_shape(f, h // 8, w // 8)[:1] + (dit_in,) + g.latent_shape(f, h // 8, w // 8)[2:]


def test_wan22_ti2v_uses_the_wan22_vae():
    assert vae_config("wan2.2-ti2v-5b").z_dim == 48 and vae_config("wan2.2-ti2v-5b").spatial_compression_ratio == 16
    assert vae_config("wan2.2-t2v-a14b").z_dim == 16
    assert {"wan2.2-ti2v-5b", "wan2.2-t2v-a14b", "wan2.2-i2v-a14b"} <= set(ARCHS)


def test_sizes_the_arch_cannot_take_are_refused_first():
    with pytest.raises(ValueError, match="height=720 must be a multiple of 32"):
        run_bench("wan2.2-ti2v-5b", height=720, width=1280, frames=121)
    with pytest.raises(ValueError, match="frames=80 must be 4n\\+1"):
        run_bench("wan2.2-t2v-a14b", height=720, width=1280, frames=80)

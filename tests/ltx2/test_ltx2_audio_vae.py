"""LTX-2 audio VAE: fp32 parity with Diffusers' AutoencoderKLLTX2Audio (encode mean, decode) on tiny configs."""

from __future__ import annotations

import pytest
import torch
from ltx2_helpers import assert_close, diffusers_or_skip, ours_from, perturbed

from fastvideo.configs.models.vaes.ltx2_audio import LTX2AudioVAEConfig
from fastvideo.models.vaes.ltx2_audio import AutoencoderKLLTX2Audio

TINY = dict(base_channels=8, ch_mult=(1, 2, 4), num_res_blocks=1, latent_channels=2, mel_bins=16, resolution=16)


@pytest.mark.parametrize("overrides", [
    {},
    {"mid_block_add_attention": True, "attn_resolutions": (8,), "causality_axis": "none"},
    {"norm_type": "group", "base_channels": 32, "causality_axis": "none", "latent_channels": 4},
], ids=["ltx2.0", "attention", "groupnorm"])
def test_audio_vae_matches_diffusers_fp32(overrides):
    diffusers = diffusers_or_skip()
    torch.manual_seed(0)
    cfg = {**TINY, **overrides}
    ref = perturbed(diffusers.AutoencoderKLLTX2Audio(**cfg))
    with torch.no_grad():
        ref.latents_mean.normal_()
        ref.latents_std.uniform_(0.5, 2.0)
    ours = ours_from(ref, LTX2AudioVAEConfig, AutoencoderKLLTX2Audio)
    g = torch.Generator().manual_seed(1)
    mel = torch.randn(2, 2, 13, 16, generator=g)
    z = torch.randn(2, cfg["latent_channels"], 4, 4, generator=g)
    with torch.no_grad():
        r_mean = ref.encode(mel).latent_dist.mean
        r_dec = ref.decode(z).sample
        o_mean, o_dec = ours.encode(mel), ours.decode(z)
    assert_close(o_mean, r_mean)
    assert o_dec.shape == (2, 2, 13, 16)
    assert_close(o_dec, r_dec)
    assert torch.equal(ours.latents_mean, ref.latents_mean)

"""LTX-2 video VAE: fp32 parity with Diffusers' AutoencoderKLLTX2Video (encode mean, decode) on tiny configs."""

from __future__ import annotations

import pytest
import torch
from ltx2_helpers import assert_close, diffusers_or_skip, ours_from, perturbed

from fastvideo.configs.models.vaes.ltx2_video import LTX2VideoVAEConfig
from fastvideo.models.vaes.ltx2_video import AutoencoderKLLTX2Video

# The released layout (4 down blocks: spatial, temporal, 2x spatiotemporal; 3 up blocks), narrow.
TINY = dict(
    latent_channels=8, block_out_channels=(8, 16, 32, 32), decoder_block_out_channels=(8, 16, 32),
    layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1), patch_size=2,
    decoder_causal=False,
)


@pytest.mark.parametrize("overrides", [
    {},
    {"decoder_causal": True, "upsample_residual": (False, True, False), "encoder_spatial_padding_mode": "reflect",
     "downsample_type": ("conv", "spatial", "temporal", "spatiotemporal"),
     "block_out_channels": (8, 8, 16, 32)},
], ids=["ltx2.0", "variants"])
def test_video_vae_matches_diffusers_fp32(overrides):
    diffusers = diffusers_or_skip()
    torch.manual_seed(0)
    ref = perturbed(diffusers.AutoencoderKLLTX2Video(**{**TINY, **overrides}))
    with torch.no_grad():
        ref.latents_mean.normal_()
        ref.latents_std.uniform_(0.5, 2.0)
    ours = ours_from(ref, LTX2VideoVAEConfig, AutoencoderKLLTX2Video)
    g = torch.Generator().manual_seed(1)
    video = torch.randn(1, 3, 9, 32, 32, generator=g)
    z = torch.randn(1, 8, 2, 2, 2, generator=g)
    with torch.no_grad():
        r_mean = ref.encode(video).latent_dist.mean
        r_dec = ref.decode(z).sample
        o_mean, o_dec = ours.encode(video), ours.decode(z)
    assert o_mean.shape == (1, 8, 2, 2, 2)
    assert_close(o_mean, r_mean)
    assert o_dec.shape == (1, 3, 9, 32, 32)
    assert_close(o_dec, r_dec)


def test_tiled_decode_matches_diffusers():
    diffusers = diffusers_or_skip()
    torch.manual_seed(0)
    ref = perturbed(diffusers.AutoencoderKLLTX2Video(**TINY, spatial_compression_ratio=16,
                                                     temporal_compression_ratio=8))
    ours = ours_from(ref, LTX2VideoVAEConfig, AutoencoderKLLTX2Video)
    # Tiles of 48 px every 32 px (latent 3 every 2) over a 6x8 latent: overlaps blended both ways (every edge tile
    # keeps 2 latent pixels: the decoder's reflect padding needs 2).
    ref.enable_tiling(tile_sample_min_height=48, tile_sample_min_width=48, tile_sample_stride_height=32,
                      tile_sample_stride_width=32)
    ours.enable_tiling((48, 48), (32, 32))
    z = torch.randn(1, 8, 2, 6, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        r, o = ref.decode(z).sample, ours.decode(z)
    assert o.shape == (1, 3, 9, 96, 128)
    assert_close(o, r)
    ours.disable_tiling()
    with torch.no_grad():
        assert (ours.decode(z) - o).abs().max() > 1e-4  # tiling does change the result (the test is not vacuous)
    with pytest.raises(ValueError, match="multiples"):
        ours.enable_tiling((40, 48), (32, 32))

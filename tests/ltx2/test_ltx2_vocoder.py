"""LTX-2 vocoder: fp32 parity with Diffusers' LTX2Vocoder on tiny configs (HiFi-GAN and Snake/anti-aliased)."""

from __future__ import annotations

import pytest
import torch
from ltx2_helpers import assert_close, diffusers_or_skip, ours_from, perturbed

from fastvideo.configs.models.audio.ltx2_vocoder import LTX2VocoderConfig
from fastvideo.models.audio.ltx2_vocoder import LTX2Vocoder

TINY = dict(in_channels=2 * 4, hidden_channels=16, out_channels=2, upsample_kernel_sizes=[4, 4],
            upsample_factors=[2, 2], resnet_kernel_sizes=[3, 5], resnet_dilations=[[1, 3], [1, 2]])


@pytest.mark.parametrize("overrides", [{}, {"act_fn": "snakebeta", "antialias": True, "final_act_fn": None,
                                            "final_bias": False}], ids=["ltx2.0", "snakebeta"])
def test_vocoder_matches_diffusers_fp32(overrides):
    diffusers_or_skip()
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder as Ref

    torch.manual_seed(0)
    ref = perturbed(Ref(**{**TINY, **overrides}))
    ours = ours_from(ref, LTX2VocoderConfig, LTX2Vocoder)
    mel = torch.randn(2, 2, 7, 4, generator=torch.Generator().manual_seed(1))  # [B, stereo, T, mel bins]
    with torch.no_grad():
        r, o = ref(mel), ours(mel)
    assert o.shape == (2, 2, 7 * ours.hop_samples)
    assert_close(o, r)

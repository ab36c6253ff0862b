"""LTX-2 text connectors: fp32 parity with Diffusers' LTX2TextConnectors on tiny configs."""

from __future__ import annotations

import pytest
import torch
from ltx2_helpers import assert_close, diffusers_or_skip, ours_from, perturbed

from fastvideo.configs.models.encoders.ltx2_connectors import LTX2TextConnectorsConfig
from fastvideo.models.encoders.ltx2_connectors import LTX2TextConnectors

TINY = dict(
    caption_channels=16, text_proj_in_factor=3, video_connector_num_attention_heads=2,
    video_connector_attention_head_dim=8, video_connector_num_layers=2, video_connector_num_learnable_registers=4,
    audio_connector_num_attention_heads=2, audio_connector_attention_head_dim=8, audio_connector_num_layers=1,
    audio_connector_num_learnable_registers=4,
)


def _reference(**overrides):
    diffusers_or_skip()
    from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors as Ref

    torch.manual_seed(0)
    return perturbed(Ref(**{**TINY, **overrides}))


def _inputs(seed=1, seq=8):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(2, seq, 16 * 3, generator=g) * 3
    mask = torch.ones(2, seq, dtype=torch.int64)
    mask[0, :5] = 0  # left padding, as Gemma's tokenizer pads for LTX-2
    mask[1, :2] = 0
    return h, mask


@pytest.mark.parametrize("overrides", [
    {},
    {"video_connector_num_learnable_registers": None, "audio_connector_num_learnable_registers": None},
    {"per_modality_projections": True, "video_hidden_dim": 16, "audio_hidden_dim": 16, "proj_bias": True,
     "video_gated_attn": True, "audio_gated_attn": True},
], ids=["ltx2.0", "no-registers", "per-modality"])
def test_connectors_match_diffusers_fp32(overrides):
    ref = _reference(**overrides)
    ours = ours_from(ref, LTX2TextConnectorsConfig, LTX2TextConnectors)
    h, mask = _inputs()
    with torch.no_grad():
        rv, ra, rm = ref(h, mask, padding_side="left")
        ov, oa, om = ours(h, mask, padding_side="left")
    assert_close(ov, rv)
    assert_close(oa, ra)
    assert torch.equal(om, rm)


def test_register_count_must_divide_text_length():
    ref = _reference()
    ours = ours_from(ref, LTX2TextConnectorsConfig, LTX2TextConnectors)
    h, mask = _inputs(seq=6)
    with pytest.raises(ValueError, match="multiple"):
        ours(h, mask)

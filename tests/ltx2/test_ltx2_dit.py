"""LTX-2 DiT: fp32 parity with Diffusers' LTX2VideoTransformer3DModel on tiny configs, and its key mappings."""

from __future__ import annotations

import pytest
import torch
from ltx2_helpers import assert_close, diffusers_or_skip, ours_from, perturbed

from fastvideo.configs.models.dits.ltx2 import LTX2VideoConfig
from fastvideo.models.dits.ltx2 import LTX2VideoTransformer3DModel

TINY = dict(
    in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, cross_attention_dim=16,
    audio_in_channels=4, audio_out_channels=4, audio_num_attention_heads=2, audio_attention_head_dim=4,
    audio_cross_attention_dim=8, num_layers=2, caption_channels=16,
)


def _reference(**overrides):
    diffusers = diffusers_or_skip()
    torch.manual_seed(0)
    return perturbed(diffusers.LTX2VideoTransformer3DModel(**{**TINY, **overrides}))


def _inputs(batch=2, frames=2, height=3, width=4, audio_frames=5, text=6, per_token_t=False, seed=1):
    g = torch.Generator().manual_seed(seed)
    s = frames * height * width
    t = torch.rand(batch, generator=g) * 1000
    if per_token_t:
        t = t[:, None].expand(batch, s).clone()
        t[:, : height * width] = 0.0  # a clean first frame (image-to-video)
    return dict(
        hidden_states=torch.randn(batch, s, 4, generator=g),
        audio_hidden_states=torch.randn(batch, audio_frames, 4, generator=g),
        encoder_hidden_states=torch.randn(batch, text, 16, generator=g),
        audio_encoder_hidden_states=torch.randn(batch, text, 16, generator=g),
        timestep=t,
        audio_timestep=t[:, 0] if per_token_t else None,
        num_frames=frames, height=height, width=width, audio_num_frames=audio_frames, fps=24.0,
    )


@pytest.mark.parametrize("per_token_t", [False, True])
@pytest.mark.parametrize("cross_timestep", [False, True])
def test_dit_matches_diffusers_fp32(per_token_t, cross_timestep):
    ref = _reference()
    ours = ours_from(ref, LTX2VideoConfig, LTX2VideoTransformer3DModel)
    kw = _inputs(per_token_t=per_token_t)
    sigma = kw["timestep"].flatten()[:: kw["timestep"].numel() // 2][:2] if per_token_t else kw["timestep"]
    with torch.no_grad():
        rv, ra = ref(**kw, sigma=sigma, use_cross_timestep=cross_timestep, return_dict=False)
        ov, oa = ours(**kw, sigma=sigma, use_cross_timestep=cross_timestep)
    assert_close(ov, rv)
    assert_close(oa, ra)


def test_dit_text_mask_and_isolation():
    ref = _reference()
    ours = ours_from(ref, LTX2VideoConfig, LTX2VideoTransformer3DModel)
    kw = _inputs()
    mask = torch.ones(2, 6)
    mask[0, :3] = 0
    with torch.no_grad():
        for iso in (False, True):
            rv, ra = ref(**kw, encoder_attention_mask=mask, audio_encoder_attention_mask=mask,
                         isolate_modalities=iso, return_dict=False)
            ov, oa = ours(**kw, encoder_attention_mask=mask, audio_encoder_attention_mask=mask, isolate_modalities=iso)
            assert_close(ov, rv)
            assert_close(oa, ra)


def test_dit_gated_and_cross_attn_mod_matches_diffusers():
    """LTX-2.3's options that keep interleaved RoPE: per-head gates and adaLN of the text attention."""
    ref = _reference(gated_attn=True, audio_gated_attn=True, cross_attn_mod=True, audio_cross_attn_mod=True)
    ours = ours_from(ref, LTX2VideoConfig, LTX2VideoTransformer3DModel)
    kw = _inputs()
    with torch.no_grad():
        rv, ra = ref(**kw, sigma=kw["timestep"], return_dict=False)
        ov, oa = ours(**kw, sigma=kw["timestep"])
    assert_close(ov, rv)
    assert_close(oa, ra)


def test_broken_mapping_is_caught():
    """Swapping two same-shaped weights loads without complaint but changes the output."""
    ref = _reference()
    sd = dict(ref.state_dict())
    k_q, k_k = "transformer_blocks.0.attn2.to_k.weight", "transformer_blocks.0.attn2.to_v.weight"
    sd[k_q], sd[k_k] = sd[k_k], sd[k_q]
    ours = ours_from(ref, LTX2VideoConfig, LTX2VideoTransformer3DModel, state_dict=sd)
    kw = _inputs()
    with torch.no_grad():
        rv, _ = ref(**kw, return_dict=False)
        ov, _ = ours(**kw)
    assert (ov - rv).abs().max() > 1e-3


def test_unsupported_settings_are_refused():
    with pytest.raises(ValueError, match="split"):
        LTX2VideoConfig(rope_type="split")

"""Wan2.2 DiT: parity with Diffusers' WanTransformer3DModel on tiny TI2V-5B / A14B-shaped configs (fp32, 1e-4).

TI2V-5B is the Wan DiT with 48 latent channels and per-token timesteps (``timestep`` [B, S]: Diffusers'
``expand_timesteps``, the tokens of a given first frame at timestep 0).  A14B is two Wan2.1-shaped experts; the
I2V expert takes 36 channels and has no image embedder.
"""

from __future__ import annotations

import pytest
import torch

from tests.models.test_wan_dit import FP32_ATOL, FP32_RTOL, _ours, _reference

TI2V = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=48, out_channels=48,
            text_dim=32, freq_dim=32, ffn_dim=64, num_layers=2)
I2V_A14B = dict(TI2V, in_channels=36, out_channels=16)  # 16 noise + 4 mask + 16 image latents, no image_dim


def _per_token_timesteps(batch: int, frames: int, h: int, w: int, t: float) -> torch.Tensor:
    """Diffusers' TI2V timesteps: the first latent frame's tokens at 0 (a given image), the rest at ``t``."""
    mask = torch.ones(frames, h // 2, w // 2)
    mask[0] = 0
    return (mask * t).flatten()[None].expand(batch, -1)


@pytest.fixture(scope="module")
def ti2v_ref():
    return _reference(TI2V, seed=3)


@torch.no_grad()
@pytest.mark.parametrize("kind", ["per_token", "uniform_per_token", "scalar"])
def test_ti2v_fp32_parity(ti2v_ref, kind):
    ours, _ = _ours(ti2v_ref)
    g = torch.Generator().manual_seed(20)
    x, ctx = torch.randn(2, 48, 3, 8, 8, generator=g), torch.randn(2, 7, 32, generator=g)
    t = {"per_token": _per_token_timesteps(2, 3, 8, 8, 731.0),
         "uniform_per_token": torch.full((2, 3 * 4 * 4), 731.0),
         "scalar": torch.tensor([731.0, 12.5])}[kind]
    expected = ti2v_ref(x, t, ctx, return_dict=False)[0]
    got = ours(x, t, ctx)
    assert got.shape == expected.shape == (2, 48, 3, 8, 8)
    torch.testing.assert_close(got, expected, atol=FP32_ATOL, rtol=FP32_RTOL)


@torch.no_grad()
def test_per_token_timesteps_change_only_by_token(ti2v_ref):
    """Tokens at timestep 0 and at t get different modulation: a per-token run is not the uniform one."""
    ours, _ = _ours(ti2v_ref)
    g = torch.Generator().manual_seed(21)
    x, ctx = torch.randn(1, 48, 3, 8, 8, generator=g), torch.randn(1, 7, 32, generator=g)
    mixed = ours(x, _per_token_timesteps(1, 3, 8, 8, 500.0), ctx)
    uniform = ours(x, torch.tensor([500.0]), ctx)
    assert not torch.allclose(mixed, uniform, atol=1e-3)


@torch.no_grad()
def test_i2v_a14b_expert_fp32_parity():
    ref = _reference(I2V_A14B, seed=4)
    ours, _ = _ours(ref)
    assert ours.condition_embedder.image_embedder is None and not ours.blocks[0].cross_attn.has_image_kv
    g = torch.Generator().manual_seed(22)
    x, ctx = torch.randn(1, 36, 3, 8, 8, generator=g), torch.randn(1, 7, 32, generator=g)
    t = torch.tensor([900.0])
    torch.testing.assert_close(ours(x, t, ctx), ref(x, t, ctx, return_dict=False)[0], atol=FP32_ATOL, rtol=FP32_RTOL)


def test_per_token_timestep_shape_is_checked(ti2v_ref):
    ours, _ = _ours(ti2v_ref)
    x, ctx = torch.zeros(1, 48, 3, 8, 8), torch.zeros(1, 7, 32)
    with pytest.raises(ValueError, match=r"one per video token, \[1, 48\]"):
        ours(x, torch.zeros(1, 47), ctx)

"""The VAE's channels-last path (used on CUDA) computes the same function as the default layout."""

import torch

from fastvideo.models.vaes.wan import RMSNorm


def test_rms_norm_channels_last_matches_default_layout():
    torch.manual_seed(0)
    norm = RMSNorm(32)
    norm.gamma.data = torch.randn_like(norm.gamma)
    x = torch.randn(2, 32, 3, 8, 8) * 3
    ref = norm(x)
    got = norm(x.contiguous(memory_format=torch.channels_last_3d))
    assert got.is_contiguous(memory_format=torch.channels_last_3d)
    assert torch.allclose(got, ref, atol=1e-5, rtol=1e-5)


def test_use_channels_last_keeps_decode_and_encode(tiny_t2v):
    from fastvideo import load_component

    vae = load_component(str(tiny_t2v), "vae")
    z = torch.randn(1, 16, 3, 4, 6)
    x = torch.rand(1, 3, 5, 32, 48) * 2 - 1
    ref_dec, ref_enc = vae.decode(z), vae.encode(x).mean
    vae.use_channels_last()
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last_3d)
               for m in vae.modules() if isinstance(m, torch.nn.Conv3d))
    assert torch.allclose(vae.decode(z), ref_dec, atol=1e-5)
    assert torch.allclose(vae.encode(x).mean, ref_enc, atol=1e-5)

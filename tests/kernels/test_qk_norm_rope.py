"""The fused q/k RMSNorm + RoPE Triton kernel against the model's unfused path."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from fastvideo.models.dits.wan import apply_rope, rope_cos_sin

HAS_TRITON = importlib.util.find_spec("triton") is not None


def unfused(qkv, wq, wk, cos, sin, eps, heads):
    q, k, _ = qkv.chunk(3, dim=-1)
    dim = q.shape[-1]
    return tuple(apply_rope(F.rms_norm(t, (dim,), w, eps).unflatten(2, (heads, -1)), cos, sin)
                 for t, w in ((q, wq), (k, wk)))


def case(device, dtype, batch=2, grid=(3, 4, 5), heads=4, head_dim=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    dim = heads * head_dim
    s = grid[0] * grid[1] * grid[2]
    qkv = torch.randn(batch, s, 3 * dim, generator=g).to(device, dtype)
    wq, wk = ((torch.randn(dim, generator=g) * 0.5 + 1).to(device, dtype) for _ in range(2))
    cos, sin = rope_cos_sin(grid, head_dim, device)
    return qkv, wq, wk, cos, sin, 1e-6, heads


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
def test_kernel_matches_unfused_path_in_triton_interpreter():
    """Indexing, reduction and rotation checked exactly in fp32 on the CPU (TRITON_INTERPRET=1), batch 2:
    the whole-row kernel with 4 heads of 24 channels (48 pairs a row: a masked power-of-two block), and the
    chunked kernel with 6 heads of 16 (three chunks of 32 channels), each also with the other kernel."""
    code = textwrap.dedent("""
        import torch
        from fastvideo.kernels import policy
        from fastvideo.kernels import qk_norm_rope as m
        from tests.kernels.test_qk_norm_rope import case, unfused
        for heads, head_dim, chunked in ((4, 24, True), (6, 16, True), (6, 16, False)):
            args = case("cpu", torch.float32, heads=heads, head_dim=head_dim)
            with policy.use(qk_chunked=chunked):
                q, k = m.qk_norm_rope(*args)
            rq, rk = unfused(*args)
            assert q.shape == rq.shape == (2, 60, heads, head_dim), q.shape
            torch.testing.assert_close(q, rq, atol=2e-6, rtol=2e-6)
            torch.testing.assert_close(k, rk, atol=2e-6, rtol=2e-6)
        assert m.chunk_size(96, 16) == 32 and m.chunk_size(96, 24) == 0 and m.chunk_size(1536, 128) == 512
        print("ok")
    """)
    env = dict(os.environ, TRITON_INTERPRET="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]


def test_unavailable_on_cpu_tensors_and_layout_checked():
    from fastvideo.kernels import qk_norm_rope as m

    qkv, wq, wk, cos, sin, eps, heads = case("cpu", torch.float32)
    assert not m.available(qkv)  # the model takes the unfused path on the CPU
    with pytest.raises(ValueError, match="rows packed"):
        m.qk_norm_rope(qkv.transpose(0, 1).contiguous().transpose(0, 1), wq, wk, cos, sin, eps, heads)
    with pytest.raises(ValueError, match="cos/sin must be float32"):
        m.qk_norm_rope(qkv, wq, wk, cos.double(), sin, eps, heads)


@pytest.mark.gpu
def test_kernel_matches_unfused_path_on_cuda_bf16():
    from fastvideo.kernels import qk_norm_rope as m

    args = case("cuda", torch.bfloat16, grid=(5, 6, 8), heads=12, head_dim=128)
    q, k = m.qk_norm_rope(*args)
    rq, rk = unfused(*args)
    qkv, wq, wk, cos, sin, eps, heads = args
    eq, ek = unfused(qkv.double(), wq.double(), wk.double(), cos.double(), sin.double(), eps, heads)  # exact
    for ours, plain, exact in ((q, rq, eq), (k, rk, ek)):
        assert ours.shape == plain.shape and ours.dtype == torch.bfloat16
        # Only rounding differs (where the norm rounds to bf16): no further from the exact result than the
        # unfused path, and never more than a couple of bf16 steps of the values' scale from it.
        assert (ours.double() - exact).norm() <= 1.1 * (plain.double() - exact).norm()
        assert (ours.float() - plain.float()).abs().max() <= 2**-6 * plain.float().abs().max()


@pytest.mark.gpu
def test_wan_dit_forward_fused_matches_unfused_on_cuda():
    from fastvideo.configs.models.dits.wan import WanVideoConfig
    from fastvideo.kernels import policy
    from fastvideo.models.dits.wan import WanTransformer3DModel

    cfg = WanVideoConfig(num_attention_heads=2, attention_head_dim=24, ffn_dim=64, num_layers=2, text_dim=32,
                         freq_dim=16, in_channels=4, out_channels=4)
    torch.manual_seed(0)
    model = WanTransformer3DModel(cfg).to("cuda", torch.bfloat16).eval()
    x = torch.randn(1, 4, 3, 8, 8, device="cuda", dtype=torch.bfloat16)
    t = torch.tensor([500.0], device="cuda")
    ctx = torch.randn(1, 7, 32, device="cuda", dtype=torch.bfloat16)
    with torch.inference_mode():
        fused = model(x, t, ctx)
        with policy.use(qk_norm_rope=False):
            plain = model(x, t, ctx)
    assert ((fused.float() - plain.float()).norm() / plain.float().norm()) < 1e-2

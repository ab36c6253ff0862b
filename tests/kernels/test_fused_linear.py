"""Residual updates in the GEMM epilogue (fastvideo/kernels/fused_linear.py) against the model's plain math."""

import importlib.util

import pytest
import torch

from fastvideo.kernels import fused_linear
from fastvideo.models.dits import wan

needs_quack = pytest.mark.skipif(importlib.util.find_spec("quack") is None,
                                 reason="needs quack-kernels (installed with flash-attn-4)")


def test_not_available_on_cpu_or_under_autograd():
    x = torch.zeros(2, 3, dtype=torch.bfloat16)
    assert not fused_linear.available(x)  # CPU
    if torch.cuda.is_available():
        with torch.enable_grad():
            assert not fused_linear.available(x.cuda().requires_grad_())


def test_block_paths_agree_on_cpu(monkeypatch):
    """The block's structure (attend -> linear_residual, no pending update when fused) is the model's math:
    with the fused kernel swapped for its plain twin, outputs equal the unfused path bit for bit."""
    from fastvideo.configs.models.dits.wan import WanVideoConfig
    from fastvideo.testing.tiny import TINY_DIT

    cfg = WanVideoConfig(**TINY_DIT)
    torch.manual_seed(0)
    model = wan.WanTransformer3DModel(cfg).eval()
    x, t, text = torch.randn(2, cfg.in_channels, 3, 8, 8), torch.tensor([500.0, 20.0]), torch.randn(2, 7, cfg.text_dim)
    with torch.no_grad():
        plain = model(x, t, text)
        twin = lambda h, linear, x, gate=None: (wan.add_gated(x, linear(h), gate) if gate is not None  # noqa: E731
                                                else x + linear(h))
        monkeypatch.setattr(fused_linear, "available", lambda x: True)
        monkeypatch.setattr(fused_linear, "linear_residual", twin)
        fused_structure = model(x, t, text)
    assert torch.equal(plain, fused_structure)


def _rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.mark.gpu
@needs_quack
def test_linear_residual_matches_plain_math_on_cuda():
    g = torch.Generator(device="cuda").manual_seed(0)
    b, s, k, n = 2, 300, 256, 192  # two samples with different gates; rows not a multiple of the tile
    h = torch.randn(b, s, k, device="cuda", generator=g).bfloat16()
    x = torch.randn(b, s, n, device="cuda", generator=g).bfloat16()
    gate = torch.randn(b, 1, n, device="cuda", generator=g)
    linear = torch.nn.Linear(k, n).cuda().bfloat16()
    with torch.inference_mode():
        assert fused_linear.available(x)
        for g_ in (gate, None):
            ours = fused_linear.linear_residual(h, linear, x, g_)
            plain = wan.add_gated(x, linear(h), g_) if g_ is not None else x + linear(h)
            w, bias = linear.weight.double(), linear.bias.double()
            exact = x.double() + (h.double() @ w.t() + bias) * (g_.double() if g_ is not None else 1)
            assert ours.shape == x.shape and ours.dtype == x.dtype
            # rounded once instead of twice: no further from the exact result than the plain path
            assert _rel(ours, exact) <= 1.05 * _rel(plain, exact)
            assert _rel(ours, plain) < 1e-2


@pytest.mark.gpu
@needs_quack
def test_dit_forward_fused_residuals_match_unfused_on_cuda(monkeypatch):
    from fastvideo.configs.models.dits.wan import WanVideoConfig

    cfg = WanVideoConfig(num_attention_heads=2, attention_head_dim=64, ffn_dim=256, num_layers=2, text_dim=64,
                         freq_dim=32, in_channels=4, out_channels=4)
    torch.manual_seed(0)
    model = wan.WanTransformer3DModel(cfg).to("cuda", torch.bfloat16).eval()
    x = torch.randn(2, 4, 3, 16, 16, device="cuda", dtype=torch.bfloat16)
    t = torch.tensor([500.0, 900.0], device="cuda")
    ctx = torch.randn(2, 7, 64, device="cuda", dtype=torch.bfloat16)
    with torch.inference_mode():
        fused = model(x, t, ctx)
        compiled = torch.compile(model.blocks[0], fullgraph=True)  # quack's op traces into one graph
        rope = model.rope((3, 8, 8), x.device)
        tokens, _ = model.patchify(x)
        temb, proj = model.condition_embedder.embed_time(t, model.dtype)
        context, _ = model.condition_embedder.embed_context(ctx, None)
        eager_block = model.blocks[0](tokens, context, None, proj, rope)
        compiled_block = compiled(tokens, context, None, proj, rope)
        monkeypatch.setattr(fused_linear, "ENABLED", False)
        plain = model(x, t, ctx)
    assert eager_block[1] is None and compiled_block[1] is None
    assert _rel(compiled_block[0], eager_block[0]) < 1e-2
    assert _rel(fused, plain) < 1e-2


@pytest.mark.gpu
@needs_quack
def test_linear_gelu_matches_plain_math_on_cuda():
    g = torch.Generator(device="cuda").manual_seed(1)
    h = torch.randn(2, 300, 256, device="cuda", generator=g).bfloat16()
    linear = torch.nn.Linear(256, 512).cuda().bfloat16()
    with torch.inference_mode():
        ours = fused_linear.linear_gelu(h, linear)
        plain = torch.nn.functional.gelu(linear(h), approximate="tanh")
        exact = torch.nn.functional.gelu(h.double() @ linear.weight.double().t() + linear.bias.double(),
                                         approximate="tanh")
    assert ours.shape == plain.shape and ours.dtype == torch.bfloat16
    assert _rel(ours, exact) <= 1.5 * _rel(plain, exact)


def test_a_failing_quack_import_falls_back_with_a_warning(monkeypatch):
    import sys

    monkeypatch.setattr(fused_linear, "_EPILOGUES", False)
    monkeypatch.setitem(sys.modules, "fastvideo.kernels._quack_epilogues", None)  # import raises ImportError
    with pytest.warns(RuntimeWarning, match="quack's GEMM epilogues are unavailable"):
        assert fused_linear._epilogues() is None
    assert fused_linear._epilogues() is None  # decided once


def test_plain_math_turns_every_fused_kernel_off(monkeypatch):
    """Inside ``plain_math`` (the parity runner's hooked run) no fused kernel is chosen, even on a GPU:
    the block calls its attention and FFN modules (so their hooks fire) and the MLP calls fc_in."""
    from fastvideo import kernels
    from fastvideo.kernels import qk_norm_rope

    monkeypatch.setattr(fused_linear, "HAS_QUACK", True)
    monkeypatch.setattr(qk_norm_rope, "HAS_TRITON", True)
    cuda_like = torch.empty(0, device="meta", dtype=torch.bfloat16)
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    with torch.inference_mode():
        assert qk_norm_rope.available(cuda_like)
        with pytest.raises(RuntimeError), kernels.plain_math():
            assert not kernels.fused_allowed()
            assert not fused_linear.available(cuda_like) and not qk_norm_rope.available(cuda_like)
            raise RuntimeError
    assert kernels.fused_allowed()

"""Residual updates in the GEMM epilogue (fastvideo/kernels/fused_linear.py) against the model's plain math."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from fastvideo.kernels import fused_linear, policy
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


def twin_gemm(epilogue, a, w, c=None, **ops):
    """Each ``_quack_epilogues`` function in plain torch (fp32 math on ``a @ w^T``, rounded once): what
    ``fused_linear._gemm`` computes, on any device."""
    acc = a.float() @ w.float().t()
    name = epilogue.removesuffix("_epi")
    stats = name.endswith("_stats")
    name = name.removesuffix("_stats")
    col = {k: v.t() for k, v in ops.items() if k in ("s", "t", "second")}  # (1, M) -> (M, 1)
    if name == "gated_residual":
        y = c.float() + (acc + ops["bias"].float()) * ops["gate"]
    elif name == "gated_residual_pair":
        y = c.float() + (acc + ops["bias"].float()) * (ops["gate0"] + col["second"] * (ops["gate1"] - ops["gate0"]))
    elif name == "bias_residual":
        y = c.float() + (acc + ops["bias"].float())
    elif name == "bias_gelu":
        y = torch.nn.functional.gelu(acc + ops["bias"].float(), approximate="tanh")
    elif name in ("norm_linear", "norm_linear_gelu"):
        y = acc * col["s"] - col["t"] * ops["wg"] + ops["wb"]
        y = torch.nn.functional.gelu(y, approximate="tanh") if name == "norm_linear_gelu" else y
    else:
        raise AssertionError(f"no twin for {epilogue}")
    out = {"D": y.to(a.dtype)}
    if stats:
        out["hsum"], out["sqsum"] = y.sum(-1, keepdim=True), y.square().sum(-1, keepdim=True)
    return out


@pytest.mark.parametrize("affine", [False, True])
def test_folded_layer_norm_is_the_model_math(monkeypatch, affine):
    """norm_linear's algebra (fold_norm, norm_scales, the epilogue) against LayerNorm -> gain/shift -> Linear,
    on a stream with a large mean (the cancellation the fold has to survive).  The fold computes in fp32, as on
    the GPU: agreement to fp32 precision, well below a bf16 rounding (4e-3)."""
    monkeypatch.setattr(fused_linear, "_gemm", twin_gemm)
    torch.manual_seed(0)
    k, n = 64, 48
    x = torch.randn(2, 10, k, dtype=torch.float64) * 3 + 20
    linear = torch.nn.Linear(k, n).double()
    norm = torch.nn.LayerNorm(k, 1e-6, elementwise_affine=affine).double()
    gain, shift = torch.randn(k, dtype=torch.float64), torch.randn(k, dtype=torch.float64)
    if affine:  # the cross-attention norm: LN's own weight and bias are the gain and shift
        torch.nn.init.normal_(norm.weight)
        torch.nn.init.normal_(norm.bias)
        gain, shift = norm.weight, norm.bias
        expected = linear(norm(x))
    else:  # adaLN: LN(x) * (1 + scale) + shift
        expected = linear(norm(x) * gain + shift)
    with torch.no_grad():
        ours = fused_linear.norm_linear(x, fused_linear.row_stats(x), linear, gain, shift, 1e-6)
        gelu = fused_linear.norm_linear(x, fused_linear.row_stats(x), linear, gain, shift, 1e-6, gelu=True)
        expected = expected.detach()
    assert ours.shape == expected.shape
    assert _rel(ours, expected) < 1e-5
    assert _rel(gelu, torch.nn.functional.gelu(expected, approximate="tanh")) < 1e-5


def _fold_twin(w, gain, shift, bias):
    """fold_norm's plain-torch path (the CPU's), for the kernel tests."""
    linear = torch.nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
    with torch.no_grad():
        linear.weight.data, linear.bias = w, None if bias is None else torch.nn.Parameter(bias)
        return fused_linear.fold_norm(linear, gain, shift)


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_fold_kernel_matches_the_torch_fold_in_triton_interpreter():
    """The one-pass fold kernel (W * gain rounded, its row sums, W @ shift + b) under Triton's CPU
    interpreter: 37 x 100 fp32 weights (neither a multiple of the 8-row / 64-column blocks: masked tails), with
    and without shift and bias, equal to the torch fold; a kernel that dropped the bias or a column
    chunk would be off by far more than the fp32 summation order (1e-5).  (fp32: the interpreter rounds to
    bf16 toward zero, the GPU to nearest; the bf16 rounding is checked exactly on the GPU.)"""
    code = textwrap.dedent("""
        import torch
        from fastvideo.kernels import fused_linear as m, policy
        from tests.kernels.test_fused_linear import _fold_twin
        policy.set_policy(policy.current().replace(fold_block_n=8, fold_block_k=64))
        g = torch.Generator().manual_seed(0)
        w = torch.randn(37, 100, generator=g)
        gain, shift, bias = torch.randn(100, generator=g) + 1, torch.randn(100, generator=g), torch.randn(37, generator=g)
        for sh, b in ((shift, bias), (None, None), (shift, None)):
            folded, wg, wb = m.fold_weights(w, gain, sh, b)
            tf, twg, twb = _fold_twin(w, gain, sh, b)
            assert folded.dtype == torch.float32 and wg.shape == wb.shape == (1, 37), (wg.shape, wb.shape)
            assert torch.equal(folded, tf)
            torch.testing.assert_close(wg, twg, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(wb, twb, atol=1e-5, rtol=1e-5)
        print("ok")
    """)
    env = dict(os.environ, TRITON_INTERPRET="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]


@pytest.mark.gpu
def test_fold_kernel_matches_the_torch_fold_on_cuda():
    g = torch.Generator(device="cuda").manual_seed(1)
    w = torch.randn(4608, 1536, device="cuda", generator=g).bfloat16()
    gain, shift = torch.randn(1536, device="cuda", generator=g) * 0.3 + 1, torch.randn(1536, device="cuda", generator=g)
    bias = torch.randn(4608, device="cuda", generator=g).bfloat16()
    folded, wg, wb = fused_linear.fold_weights(w, gain, shift, bias)
    tf, twg, twb = _fold_twin(w.cpu(), gain.cpu(), shift.cpu(), bias.cpu())
    assert torch.equal(folded.cpu(), tf)
    torch.testing.assert_close(wg.cpu(), twg, atol=1e-3, rtol=1e-5)
    torch.testing.assert_close(wb.cpu(), twb, atol=1e-3, rtol=1e-5)


def test_row_stats_need_one_gate_for_the_batch(monkeypatch):
    monkeypatch.setattr(fused_linear, "_gemm", twin_gemm)
    h, x, linear = torch.randn(2, 5, 8), torch.randn(2, 5, 6), torch.nn.Linear(8, 6)
    with pytest.raises(ValueError, match="shared gate only"):
        fused_linear.linear_residual(h, linear, x, torch.randn(2, 1, 6), stats=True)
    out, stats = fused_linear.linear_residual(h, linear, x, torch.randn(1, 1, 6), stats=True)
    assert torch.allclose(stats.hsum.sum(-1), out.reshape(10, 6).sum(-1), atol=1e-5)


def _tiny_model():
    from fastvideo.configs.models.dits.wan import WanVideoConfig
    from fastvideo.testing.tiny import TINY_DIT

    cfg = WanVideoConfig(**TINY_DIT)
    torch.manual_seed(0)
    return wan.WanTransformer3DModel(cfg).eval(), cfg


def test_block_folds_its_norms_when_the_batch_shares_a_timestep(monkeypatch):
    """With the GEMMs swapped for their plain twins, the fused block path (residuals in the epilogues, each
    LayerNorm folded into the next GEMM, its statistics handed from block to block) computes the model's
    math; statistics are summed over the stream only once, before the first block."""
    model, cfg = _tiny_model()
    x, text = torch.randn(2, cfg.in_channels, 3, 8, 8), torch.randn(2, 7, cfg.text_dim)
    t = torch.tensor(500.0).expand(2)  # one timestep for the batch (the denoising loop's CFG pair)
    calls = {"row_stats": 0, "gemm": []}
    row_stats = fused_linear.row_stats

    def counted_stats(x):
        calls["row_stats"] += 1
        return row_stats(x)

    def recorded_gemm(epilogue, *args, **ops):
        calls["gemm"].append(epilogue)
        return twin_gemm(epilogue, *args, **ops)

    with torch.no_grad():
        plain = model(x, t, text)
        # embedded once or per sample: the same math (a batch-1 matmul may round the last bit differently)
        assert _rel(model(x, torch.tensor([500.0, 500.0]), text), plain) < 1e-6
        monkeypatch.setattr(fused_linear, "available", lambda x: True)
        monkeypatch.setattr(fused_linear, "_gemm", recorded_gemm)
        monkeypatch.setattr(fused_linear, "row_stats", counted_stats)
        folded = model(x, t, text)
    assert calls["row_stats"] == 1
    per_block = ["norm_linear_epi", "gated_residual_stats_epi", "norm_linear_epi", "bias_residual_stats_epi",
                 "norm_linear_gelu_epi", "gated_residual_stats_epi"]
    assert calls["gemm"] == per_block * cfg.num_layers
    assert _rel(folded, plain) < 1e-4


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
def test_epilogues_match_their_twins_on_cuda():
    """Every quack epilogue against ``twin_gemm`` (the same fp32 math in torch), stats sums included."""
    g = torch.Generator(device="cuda").manual_seed(2)
    m, k, n = 300, 256, 192  # rows not a multiple of the tile

    def rnd(*shape, scale=1.0):
        return torch.randn(*shape, device="cuda", generator=g) * scale

    a, w, c = rnd(m, k).bfloat16(), rnd(n, k, scale=k**-0.5).bfloat16(), (rnd(m, n) + 3).bfloat16()
    row = {"bias": rnd(1, n).bfloat16(), "gate": rnd(1, n), "wg": rnd(1, n), "wb": rnd(1, n)}
    col = {"s": rnd(1, m).abs() + 0.5, "t": rnd(1, m)}
    cases = {
        "gated_residual_stats_epi": (c, {"bias": row["bias"], "gate": row["gate"]}),
        "bias_residual_stats_epi": (c, {"bias": row["bias"]}),
        "norm_linear_epi": (None, {**col, "wg": row["wg"], "wb": row["wb"]}),
        "norm_linear_gelu_epi": (None, {**col, "wg": row["wg"], "wb": row["wb"]}),
    }
    with torch.inference_mode():
        for name, (c_, ops) in cases.items():
            ours, twin = fused_linear._gemm(name, a, w, c_, **ops), twin_gemm(name, a, w, c_, **ops)
            assert ours["D"].shape == (m, n) and ours["D"].dtype == torch.bfloat16, name
            assert _rel(ours["D"], twin["D"]) < 5e-3, name
            for stat in ("hsum", "sqsum") if "stats" in name else ():  # partial sums: one per column tile
                assert ours[stat].shape[0] == m, (name, stat)
                assert _rel(ours[stat].sum(-1), twin[stat].sum(-1)) < 1e-3, (name, stat)


@pytest.mark.gpu
@needs_quack
def test_folded_norm_is_as_close_to_exact_as_the_plain_path_on_cuda():
    g = torch.Generator(device="cuda").manual_seed(3)
    k, n = 256, 384
    x = (torch.randn(2, 150, k, device="cuda", generator=g) * 2 + 5).bfloat16()
    linear = torch.nn.Linear(k, n).cuda().bfloat16()
    scale, shift = torch.randn(k, device="cuda", generator=g) * 0.3, torch.randn(k, device="cuda", generator=g)
    norm = wan.FP32LayerNorm(k, 1e-6, elementwise_affine=False)
    with torch.inference_mode():
        ours = fused_linear.norm_linear(x, fused_linear.row_stats(x), linear, 1 + scale, shift, 1e-6)
        plain = linear(wan.modulate(norm, x, shift, scale))
        xd = x.double()
        ln = (xd - xd.mean(-1, keepdim=True)) / (xd.var(-1, unbiased=False, keepdim=True) + 1e-6).sqrt()
        exact = (ln * (1 + scale.double()) + shift.double()) @ linear.weight.double().t() + linear.bias.double()
    assert _rel(ours, exact) <= 1.5 * _rel(plain, exact)


def _small_cuda_dit(t: torch.Tensor):
    """A two-block bf16 DiT on CUDA, forward inputs for timestep(s) ``t``, and its first block's inputs."""
    from fastvideo.configs.models.dits.wan import WanVideoConfig

    cfg = WanVideoConfig(num_attention_heads=2, attention_head_dim=64, ffn_dim=256, num_layers=2, text_dim=64,
                         freq_dim=32, in_channels=4, out_channels=4)
    torch.manual_seed(0)
    model = wan.WanTransformer3DModel(cfg).to("cuda", torch.bfloat16).eval()
    x = torch.randn(2, 4, 3, 16, 16, device="cuda", dtype=torch.bfloat16)
    ctx = torch.randn(2, 7, 64, device="cuda", dtype=torch.bfloat16)
    with torch.inference_mode():
        tokens, _ = model.patchify(x)
        _, proj = model.condition_embedder.embed_time(t[:1] if t.stride(0) == 0 else t, model.dtype)
        context, _ = model.condition_embedder.embed_context(ctx, None)
    return model, (x, t, ctx), (tokens, context, None, proj, model.rope((3, 8, 8), x.device))


@pytest.mark.gpu
@needs_quack
def test_dit_forward_fused_residuals_match_unfused_on_cuda():
    model, inputs, block_inputs = _small_cuda_dit(torch.tensor([500.0, 900.0], device="cuda"))
    with torch.inference_mode():
        fused = model(*inputs)
        eager_block = model.blocks[0](*block_inputs)
        compiled_block = torch.compile(model.blocks[0], fullgraph=True)(*block_inputs)  # quack's op: one graph
        with policy.use(gemm_epilogues=False):
            plain = model(*inputs)
    assert eager_block[1] is None and compiled_block[1] is None  # two timesteps: residual epilogues, no fold
    assert _rel(compiled_block[0], eager_block[0]) < 1e-2
    assert _rel(fused, plain) < 1e-2


@pytest.mark.gpu
@needs_quack
def test_dit_forward_folded_norms_match_unfused_on_cuda():
    """One timestep for the batch (the CFG pair): every LayerNorm folded into its GEMM, eager and compiled."""
    model, inputs, block_inputs = _small_cuda_dit(torch.tensor(700.0, device="cuda").expand(2))
    with torch.inference_mode():
        folded = model(*inputs)
        eager_block = model.blocks[0](*block_inputs)
        compiled_block = torch.compile(model.blocks[0], fullgraph=True)(*block_inputs)
        with policy.use(norm_fold=False):
            unfolded = model(*inputs)
        with policy.use(gemm_epilogues=False):
            plain = model(*inputs)
    assert isinstance(eager_block[1], fused_linear.RowStats) and isinstance(compiled_block[1], fused_linear.RowStats)
    exact_stats = fused_linear.row_stats(eager_block[0])
    assert _rel(eager_block[1].sqsum.sum(-1), exact_stats.sqsum.sum(-1)) < 1e-2
    assert _rel(compiled_block[0], eager_block[0]) < 1e-2
    assert _rel(folded, plain) < 1e-2 and _rel(unfolded, plain) < 1e-2


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

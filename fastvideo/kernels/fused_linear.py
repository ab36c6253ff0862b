"""Linear layers with their next step in the GEMM's epilogue (quack's CuTe-DSL GEMMs, CUDA).

The same math as the model's unfused path::

    linear_residual(h, linear, x, gate) == add_gated(x, linear(h), gate)   # x + gate * (h @ W^T + b)
    linear_residual(h, linear, x)       == x + linear(h)
    linear_gelu(h, linear)              == gelu_tanh(linear(h))

but each in one kernel.  For the residual updates the GEMM reads ``x`` as its C operand and writes the
updated residual stream, in fp32 and rounded once (the unfused form rounds ``linear(h)`` to the model
dtype first), so the update is never written out and the norm kernel that follows reads one tensor
instead of two.  On an H100 at Wan2.1-1.3B's 480p shape (``benchmarks/quack_gemms.py``, one call each):
an attention output projection with its gated residual 0.27 ms against 0.38-0.41 ms as cuBLASLt plus a
fused elementwise kernel; the FFN down projection with its gated residual 1.29-1.34 ms against 1.36-1.47;
the FFN up projection with bias + GELU 1.28 ms against 1.51 ms in cuBLASLt's GELU epilogue.  In the
compiled DiT forward the three residual updates and the GELU took 7 ms off 444-451 ms
(``docs/benchmarks/README.md``, runs 21 and 23).

With one modulation for the whole batch (one timestep: the denoising loop), the LayerNorms go too::

    norm_linear(x, stats, linear, gain, shift, eps) == linear(LN(x) * gain + shift)

The GEMM runs over the raw residual stream ``x`` with ``gain`` folded into the weight; the per-row
mean and rstd come from ``stats`` (:class:`RowStats`: row sums of ``x`` and ``x**2``, which the residual
GEMM that wrote ``x`` summed in its epilogue) and are applied in the epilogue, with ``shift`` and the bias
(algebra in ``_quack_epilogues``).  No norm kernel reads and writes the stream.  The folded weights (the
gain is the timestep's modulation, so they change every forward) come from one Triton kernel that reads each
weight row once (:func:`fold_weights`): 9.6 / 17.4 us for the q/k/v / FFN-up weights on an H200 against
17.0 / 30.7 us for Inductor's fusion of the torch form (run 43).  Measured in the compiled forward: the
CFG pair 850-853 ms against 865-871 ms with the norms as kernels (H100, run 31); batch 1 439 against
442 ms (H200, run 37) and within noise on H100s (runs 27-29), under a GPU that is power-capped while the
forward runs (docs/benchmarks/README.md, run 40).

quack (``quack-kernels``) comes with flash-attn-4 (``pip install "fastvideo-studio[fa4]"``).
:func:`available` says whether the fused path can run on a tensor: quack importable, a CUDA tensor on
compute capability 9.x or 10.x, 16-bit, inference (no autograd).  The kernel policy
(:mod:`fastvideo.kernels.policy`: ``gemm_epilogues``, ``gelu_epilogue``, ``norm_fold``, ``fold_kernel`` and the
fold kernel's launch shape) switches parts of it off (``benchmarks/dit_variants.py`` compares).  The layers
that use it are in :mod:`fastvideo.layers` (``residual``, ``mlp``).
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import NamedTuple

import torch
from torch import nn

from fastvideo.attention.backends.flash4 import SUPPORTED_MAJORS  # quack's GEMMs: the same CuTe DSL archs
from fastvideo.kernels import policy

HAS_QUACK = importlib.util.find_spec("quack") is not None  # (found, not imported: that happens on first use)
HAS_TRITON = importlib.util.find_spec("triton") is not None


def available(x: torch.Tensor) -> bool:
    p = policy.current()
    return (p.gemm_epilogues and not p.plain and HAS_QUACK and x.is_cuda and x.dtype in (torch.bfloat16, torch.float16)
            and not torch.is_grad_enabled() and torch.cuda.get_device_capability(x.device)[0] in SUPPORTED_MAJORS
            and _epilogues() is not None)


_EPILOGUES: object = False  # False: not imported yet; None: the import failed


def _epilogues():
    """quack's epilogue module, imported on first use (a global, which torch.compile reads as a constant);
    None, with one warning, where quack or its CuTe DSL does not import (a version this code was not
    written against: the ``fa4`` extra pins the tested ones)."""
    global _EPILOGUES
    if _EPILOGUES is False:
        try:
            from fastvideo.kernels import _quack_epilogues

            _EPILOGUES = _quack_epilogues
        except Exception as exc:  # noqa: BLE001 -- any import-time failure means: take the plain path
            warnings.warn(f"quack's GEMM epilogues are unavailable ({type(exc).__name__}: {exc}); the DiT uses "
                          "cuBLASLt and separate residual updates. Reinstall with: pip install "
                          "'fastvideo-studio[fa4]'", RuntimeWarning, stacklevel=2)
            _EPILOGUES = None
    return _EPILOGUES


def _gemm(epilogue: str, a: torch.Tensor, w: torch.Tensor, c: torch.Tensor | None = None, **operands) -> dict:
    """One quack GEMM ``a @ w^T`` with the named epilogue of ``_quack_epilogues`` (``a`` [M, K], ``w`` [N, K]);
    returns its outputs by name ("D", and any reduces).  The tests swap in a plain-torch twin here."""
    if epilogue.endswith("_stats_epi"):
        d, hsum, sqsum = _gemm_residual_stats(epilogue, a, w, c, operands["bias"], operands.get("gate"))
        return {"D": d, "hsum": hsum, "sqsum": sqsum}
    # (quack's functional form: under torch.compile its caller-owned-output form fails in quack 0.6.5)
    return getattr(_epilogues(), epilogue)(a, w.t(), c, tuned=False, **operands)  # (K, N) view: either layout


@torch.library.custom_op("fastvideo::gemm_residual_stats", mutates_args=())
def _gemm_residual_stats(epilogue: str, a: torch.Tensor, w: torch.Tensor, c: torch.Tensor, bias: torch.Tensor,
                         gate: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The residual GEMMs with row sums, as our own custom op: torch.compile cannot trace quack 0.6.5's call
    of a GEMM with reduces (it records the config's ``__dict__``, which Dynamo does not constant-fold), so
    the graph holds this op and quack runs eagerly inside it.  The sums come back as quack's per-column-tile
    partials [M, tiles], which the next norm's (compiled) statistics kernel adds up: no extra launch."""
    config, tiles = _stats_config(a.device, w.shape[0])
    hsum, sqsum = (a.new_empty(a.shape[0], tiles, dtype=torch.float32) for _ in range(2))
    ops = {"bias": bias} if gate is None else {"bias": bias, "gate": gate}
    out = getattr(_epilogues(), epilogue)(a, w.t(), c, tuned=False, config=config, hsum=hsum, sqsum=sqsum, **ops)
    return out["D"], hsum, sqsum


@_gemm_residual_stats.register_fake
def _(epilogue, a, w, c, bias, gate):
    _, tiles = _stats_config(a.device, w.shape[0])
    partials = a.new_empty(a.shape[0], tiles, dtype=torch.float32)
    return c.new_empty(a.shape[0], w.shape[0]), partials, torch.empty_like(partials)


_CONFIGS: dict = {}


def _stats_config(device: torch.device, n: int):
    """quack's default GEMM config for the device (one object per device: quack keys its launch cache on the
    config's identity) and the number of column tiles, one partial sum each, over ``n`` output columns."""
    key = torch.cuda.get_device_capability(device)
    if key not in _CONFIGS:
        from quack.gemm_config import default_config

        _CONFIGS[key] = default_config(device)
    config = _CONFIGS[key]
    return config, -(-n // config.tile_n)


class RowStats(NamedTuple):
    """Per-row sums of the residual stream and of its squares, written by the GEMM that produced it: what
    the next LayerNorm needs (:func:`norm_linear`).  fp32 [M, P]: P partial sums per row (one per GEMM
    column tile), added up where they are used."""

    hsum: torch.Tensor
    sqsum: torch.Tensor


def row_stats(x: torch.Tensor) -> RowStats:
    """:class:`RowStats` of a tensor no stats-writing GEMM produced (the first block's input)."""
    flat = x.reshape(-1, x.shape[-1]).float()
    return RowStats(flat.sum(-1, keepdim=True), flat.square().sum(-1, keepdim=True))


def linear_residual(h: torch.Tensor, linear: nn.Linear, x: torch.Tensor, gate: torch.Tensor | None = None,
                    stats: bool = False):
    """``x + gate * linear(h)`` (``x + linear(h)`` without a gate) in one GEMM.

    ``h`` [B, S, K], ``x`` [B, S, N] in the weight's dtype; ``gate`` [B, 1, N] (fp32, per sample) or
    [1, 1, N] (shared).  The samples' rows are stacked into one GEMM; with per-sample gates each row takes
    its sample's gate (two samples per GEMM).  With ``stats`` (no per-sample gates) it returns
    ``(out, RowStats(out))``.
    """
    b, s, n = x.shape
    per_sample = gate is not None and gate.shape[0] > 1
    if per_sample and stats:
        raise ValueError("row stats are written for a shared gate only (one modulation for the whole batch)")
    if per_sample and b > 2:  # two samples at a time (more only with several videos per prompt)
        return torch.cat([linear_residual(h[i:i + 2], linear, x[i:i + 2], gate[i:i + 2]) for i in range(0, b, 2)])
    a, c = h.reshape(b * s, h.shape[-1]), x.reshape(b * s, n)
    bias = linear.bias[None] if linear.bias is not None else x.new_zeros(1, n)
    suffix = "_stats_epi" if stats else "_epi"
    if gate is None:
        out = _gemm("bias_residual" + suffix, a, linear.weight, c, bias=bias)
    elif not per_sample:
        out = _gemm("gated_residual" + suffix, a, linear.weight, c, bias=bias, gate=gate.reshape(1, n).float())
    else:
        second = (torch.arange(b * s, device=x.device) >= s).float()[None]
        gate = gate.reshape(2, n).float()
        out = _gemm("gated_residual_pair_epi", a, linear.weight, c, bias=bias, gate0=gate[:1], gate1=gate[1:],
                    second=second)
    d = out["D"].view(b, s, n)
    return (d, RowStats(out["hsum"], out["sqsum"])) if stats else d


def fold_norm(linear: nn.Linear, gain: torch.Tensor, shift: torch.Tensor | None):
    """The weights of ``linear(norm * gain + shift)`` for a GEMM over the un-normalised input:
    ``(W * gain)`` in the weight's dtype, its row sums ``wg`` and ``wb = W @ shift + b`` (fp32 [1, N]).

    On CUDA, with the policy's ``fold_kernel``, one Triton kernel (each weight read once; launch: the policy's
    ``fold_block_n`` weight rows per program, read in ``fold_block_k``-column chunks; benchmarks/fold_norm.py
    times other shapes); else the plain torch ops below, as Inductor compiles them."""
    w = linear.weight
    if policy.current().fold_kernel and w.is_cuda and HAS_TRITON:
        return fold_weights(w, gain, shift, linear.bias)
    folded = (w.float() * gain.reshape(1, -1)).to(w.dtype)
    wg = folded.float().sum(-1)
    wb = (w.float() * shift.reshape(1, -1)).sum(-1) if shift is not None else torch.zeros_like(wg)
    if linear.bias is not None:
        wb = wb + linear.bias.float()
    return folded, wg[None], wb[None]


def fold_weights(w: torch.Tensor, gain: torch.Tensor, shift: torch.Tensor | None, bias: torch.Tensor | None):
    """:func:`fold_norm`'s result from the Triton kernel (``_fold_norm_triton``; any device under Triton's
    interpreter): ``w`` [N, K] contiguous, ``gain``/``shift`` [K], ``bias`` [N]."""
    n, k = w.shape
    gain = gain.reshape(k).float().contiguous()
    shift = gain.new_zeros(k) if shift is None else shift.reshape(k).float().contiguous()
    bias = gain.new_zeros(n) if bias is None else bias
    folded, wg, wb = _fold_op()(w.contiguous(), gain, shift, bias)
    return folded, wg[None], wb[None]


_FOLD_OP = None


def _fold_op():
    """The fold as a ``torch.library`` Triton op (torch.compile sees the kernel), built on first use; a
    module global, which torch.compile reads as a constant."""
    global _FOLD_OP
    if _FOLD_OP is None:
        import triton
        from torch.library import triton_op, wrap_triton

        from fastvideo.kernels._fold_norm_triton import _fold_norm_kernel

        @triton_op("fastvideo::fold_norm", mutates_args=())
        def fold_norm_op(w: torch.Tensor, gain: torch.Tensor, shift: torch.Tensor,
                         bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            n, k = w.shape
            folded = torch.empty_like(w)
            wg = torch.empty(n, device=w.device, dtype=torch.float32)
            wb = torch.empty_like(wg)
            kernel = _fold_norm_kernel
            if isinstance(kernel, triton.runtime.JITFunction):  # not under Triton's CPU interpreter (the tests)
                kernel = wrap_triton(kernel)
            p = policy.current()
            kernel[(triton.cdiv(n, p.fold_block_n),)](w, gain, shift, bias, folded, wg, wb, n, K_COLS=k,
                                                      BLOCK_N=p.fold_block_n, BLOCK_K=p.fold_block_k,
                                                      num_warps=p.fold_num_warps)
            return folded, wg, wb

        _FOLD_OP = fold_norm_op
    return _FOLD_OP


def norm_scales(stats: RowStats, dim: int, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """LayerNorm's per-row ``s = rstd`` and ``t = rstd * mean`` (fp32 [1, M]) from :class:`RowStats`."""
    mean = stats.hsum.sum(-1) / dim
    var = (stats.sqsum.sum(-1) / dim - mean * mean).clamp_min(0)
    s = torch.rsqrt(var + eps)
    return s[None], (s * mean)[None]


def norm_linear(x: torch.Tensor, stats: RowStats, linear: nn.Linear, gain: torch.Tensor,
                shift: torch.Tensor | None, eps: float, gelu: bool = False) -> torch.Tensor:
    """``linear(LN(x) * gain + shift)`` (then tanh-GELU with ``gelu``) in one GEMM over ``x`` itself: the
    LayerNorm (no affine of its own; ``gain``/``shift`` [K] fp32, one for the whole batch) is folded into
    the weight and the epilogue (``_quack_epilogues``), its statistics come from ``stats``."""
    s, t = norm_scales(stats, x.shape[-1], eps)
    w, wg, wb = fold_norm(linear, gain, shift)
    out = _gemm("norm_linear_gelu_epi" if gelu else "norm_linear_epi", x.reshape(-1, x.shape[-1]), w,
                s=s, t=t, wg=wg, wb=wb)["D"]
    return out.view(*x.shape[:-1], -1)


def gelu_available(x: torch.Tensor) -> bool:
    """The FFN up projection's bias + tanh-GELU in quack's epilogue (policy ``gelu_epilogue``) instead of
    cuBLASLt's."""
    return policy.current().gelu_epilogue and available(x)


def linear_gelu(h: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
    """``gelu_tanh(linear(h))`` in one GEMM (``h`` [..., K] in the weight's dtype)."""
    out = _gemm("bias_gelu_epi", h.reshape(-1, h.shape[-1]), linear.weight, bias=linear.bias[None])["D"]
    return out.view(*h.shape[:-1], -1)

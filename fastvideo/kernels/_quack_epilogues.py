"""GEMM epilogues for quack's CuTe-DSL GEMMs (imported only where quack is installed: the ``fa4`` extra).

Each is a plain function over the fp32 accumulator ``acc`` (quack's ``@gemm_epilogue`` contract),
compiled into the GEMM's epilogue: ``c`` is the GEMM's C operand (the residual stream), ``bias``,
``gate*`` are row vectors (1, N) and ``second`` a column vector (1, M); reduces (``hsum``, ``sqsum``)
are per-row sums, one partial per column tile.  They live at module level in an importable module
because quack's compile workers, and the custom op it records under ``torch.compile``, find an epilogue
again by importing it.  ``fused_linear`` calls them.
"""

from __future__ import annotations

import cutlass.cute as cute
from quack.epilogue.frontend import gemm_epilogue
from quack.epilogue.ops import ColVecLoad, ColVecReduce, RowVecLoad

_SQRT_2_OVER_PI = 0.7978845608028654
_GELU_CUBIC = 0.044715 * _SQRT_2_OVER_PI


def _gelu_tanh(x):
    """tanh-GELU (tanh from the hardware approximation)."""
    t = cute.math.tanh(x * (_SQRT_2_OVER_PI + _GELU_CUBIC * x * x), fastmath=True)
    return 0.5 * (x * t + x)


@gemm_epilogue(ops={"bias": RowVecLoad("bias"), "gate": RowVecLoad("gate")})
def gated_residual_epi(acc, c, bias, gate):
    """A Wan block's gated residual update ``x + gate * (h @ W^T + b)``, rounded once."""
    return {"D": c + (acc + bias) * gate}


@gemm_epilogue(ops={"bias": RowVecLoad("bias"), "gate0": RowVecLoad("gate0"), "gate1": RowVecLoad("gate1"),
                    "second": ColVecLoad("second")})
def gated_residual_pair_epi(acc, c, bias, gate0, gate1, second):
    """``gated_residual_epi`` for two samples stacked along the rows (a CFG pair): ``second`` is 0 on the
    first sample's rows and 1 on the second's, so each row takes its sample's gate (the second's to
    within one fp32 rounding of ``gate1 - gate0``)."""
    return {"D": c + (acc + bias) * (gate0 + second * (gate1 - gate0))}


@gemm_epilogue(ops={"bias": RowVecLoad("bias")})
def bias_residual_epi(acc, c, bias):
    """The ungated residual update ``x + (h @ W^T + b)`` (cross-attention's output projection)."""
    return {"D": c + (acc + bias)}


@gemm_epilogue(ops={"bias": RowVecLoad("bias")})
def bias_gelu_epi(acc, bias):
    """``gelu_tanh(h @ W^T + b)``: the FFN's first projection (tanh from the hardware approximation)."""
    return {"D": _gelu_tanh(acc + bias)}


# --- LayerNorm folded into the GEMMs around it (fused_linear.norm_linear) -----------------------------
# The residual GEMMs also write per-row partial sums of the new residual stream and of its squares (one
# per CTA column tile, added up by the next norm's statistics kernel), from which the next GEMM's LayerNorm statistics come
# without another pass over the stream.  That next GEMM multiplies the raw stream by a weight with the
# norm's per-channel gain folded in and applies the per-row statistics in its epilogue:
#     LN(x) * g + h @ W^T + b  ==  s * (x @ (W * g)^T) - t * rowsum(W * g) + (W @ h + b)
# with s = rstd and t = rstd * mean per row (the (1, M) column vectors) and the two (1, N) row vectors
# wg = rowsum(W * g), wb = W @ h + b.


def _stats():
    return {"hsum": ColVecReduce("hsum"), "sqsum": ColVecReduce("sqsum", scaled=True)}


@gemm_epilogue(ops={"bias": RowVecLoad("bias"), "gate": RowVecLoad("gate")}, reduces=_stats())
def gated_residual_stats_epi(acc, c, bias, gate):
    """``gated_residual_epi`` that also sums each row of the result and of its squares."""
    y = c + (acc + bias) * gate
    return {"D": y, "hsum": y, "sqsum": (y, y)}


@gemm_epilogue(ops={"bias": RowVecLoad("bias")}, reduces=_stats())
def bias_residual_stats_epi(acc, c, bias):
    """``bias_residual_epi`` that also sums each row of the result and of its squares."""
    y = c + (acc + bias)
    return {"D": y, "hsum": y, "sqsum": (y, y)}


def _norm_ops():
    return {"s": ColVecLoad("s"), "t": ColVecLoad("t"), "wg": RowVecLoad("wg"), "wb": RowVecLoad("wb")}


@gemm_epilogue(ops=_norm_ops())
def norm_linear_epi(acc, s, t, wg, wb):
    """``(LN(x) * g + h) @ W^T + b`` from ``acc = x @ (W * g)^T``."""
    return {"D": acc * s - t * wg + wb}


@gemm_epilogue(ops=_norm_ops())
def norm_linear_gelu_epi(acc, s, t, wg, wb):
    """``gelu_tanh`` of ``norm_linear_epi`` (the FFN's first projection)."""
    return {"D": _gelu_tanh(acc * s - t * wg + wb)}

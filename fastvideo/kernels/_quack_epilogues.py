"""GEMM epilogues for quack's CuTe-DSL GEMMs (imported only where quack is installed: the ``fa4`` extra).

Each is a plain function over the fp32 accumulator ``acc`` (quack's ``@gemm_epilogue`` contract),
compiled into the GEMM's epilogue: ``c`` is the GEMM's C operand (the residual stream), ``bias``,
``gate*`` are row vectors (1, N) and ``second`` a column vector (1, M).  They live at module level in an
importable module because quack's compile workers, and the custom op it records under
``torch.compile``, find an epilogue again by importing it.  ``fused_linear`` calls them.
"""

from __future__ import annotations

import cutlass.cute as cute
from quack.epilogue.frontend import gemm_epilogue
from quack.epilogue.ops import ColVecLoad, RowVecLoad

_SQRT_2_OVER_PI = 0.7978845608028654
_GELU_CUBIC = 0.044715 * _SQRT_2_OVER_PI


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
    x = acc + bias
    t = cute.math.tanh(x * (_SQRT_2_OVER_PI + _GELU_CUBIC * x * x), fastmath=True)
    return {"D": 0.5 * (x * t + x)}

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

quack (``quack-kernels``) comes with flash-attn-4 (``pip install "fastvideo-studio[fa4]"``).
:func:`available` says whether the fused path can run on a tensor: quack importable, a CUDA tensor on
compute capability 9.x or 10.x, 16-bit, inference (no autograd).  ``ENABLED`` and ``GELU_EPILOGUE``
switch it off (``benchmarks/dit_variants.py`` compares).
"""

from __future__ import annotations

import importlib.util
import warnings

import torch
from torch import nn

from fastvideo.attention.backends.flash4 import SUPPORTED_MAJORS  # quack's GEMMs: the same CuTe DSL archs
from fastvideo.kernels import fused_allowed

#: Off: the model takes the unfused path (benchmarks/dit_variants.py's "no-quack" variant).
ENABLED = True


HAS_QUACK = importlib.util.find_spec("quack") is not None  # (found, not imported: that happens on first use)


def available(x: torch.Tensor) -> bool:
    return (ENABLED and HAS_QUACK and fused_allowed() and x.is_cuda and x.dtype in (torch.bfloat16, torch.float16)
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


def linear_residual(h: torch.Tensor, linear: nn.Linear, x: torch.Tensor,
                    gate: torch.Tensor | None = None) -> torch.Tensor:
    """``x + gate * linear(h)`` (``x + linear(h)`` without a gate) in one GEMM.

    ``h`` [B, S, K], ``x`` [B, S, N] in the weight's dtype; ``gate`` [B, 1, N] (fp32, per sample).
    The samples' rows are stacked into one GEMM; each takes its own gate (two samples per GEMM).
    """
    b, s, n = x.shape
    if gate is not None and b > 2:  # two samples at a time (more only with several videos per prompt)
        return torch.cat([linear_residual(h[i:i + 2], linear, x[i:i + 2], gate[i:i + 2]) for i in range(0, b, 2)])
    epi = _epilogues()
    a, c = h.reshape(b * s, h.shape[-1]), x.reshape(b * s, n)
    w = linear.weight.t()  # (K, N) view: quack takes either physical layout
    bias = linear.bias[None] if linear.bias is not None else x.new_zeros(1, n)
    # (quack's functional form: under torch.compile its caller-owned-output form fails in quack 0.6.5)
    if gate is None:
        out = epi.bias_residual_epi(a, w, c, tuned=False, bias=bias)
    elif b == 1:
        out = epi.gated_residual_epi(a, w, c, tuned=False, bias=bias, gate=gate.reshape(1, n).float())
    else:
        second = (torch.arange(b * s, device=x.device) >= s).float()[None]
        gate = gate.reshape(2, n).float()
        out = epi.gated_residual_pair_epi(a, w, c, tuned=False, bias=bias, gate0=gate[:1], gate1=gate[1:],
                                          second=second)
    return out["D"].view(b, s, n)


#: The FFN up projection's bias + tanh-GELU in quack's epilogue instead of cuBLASLt's.
GELU_EPILOGUE = True


def gelu_available(x: torch.Tensor) -> bool:
    return GELU_EPILOGUE and available(x)


def linear_gelu(h: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
    """``gelu_tanh(linear(h))`` in one GEMM (``h`` [..., K] in the weight's dtype)."""
    flat = h.reshape(-1, h.shape[-1])
    out = _epilogues().bias_gelu_epi(flat, linear.weight.t(), tuned=False, bias=linear.bias[None])["D"]
    return out.view(*h.shape[:-1], -1)

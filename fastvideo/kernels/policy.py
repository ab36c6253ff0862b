"""Which fused kernels run, and with what launch shapes: one :class:`KernelPolicy` for the process.

Every switch the kernels and the layers read lives here (no module globals to assign)::

    from fastvideo.kernels import policy

    policy.current().norm_fold                   # read
    with policy.use(norm_fold=False):            # change some fields for a while (nests; restored on exit)
        ...
    with policy.use(plain=True):                 # no fused kernel at all (= fastvideo.kernels.plain_math())
        ...
    previous = policy.set_policy(policy.KernelPolicy(gemm_epilogues=False))   # for the rest of a run

The policy is a frozen dataclass held in a module global: ``torch.compile`` reads it as a constant and guards
on the fields a graph used, so a graph compiled under one policy is recompiled (not silently reused) under
another.  It is process-wide, not per thread (as the kernels' switches always were).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator


@dataclasses.dataclass(frozen=True)
class KernelPolicy:
    """The kernel switches.  Defaults: every fused kernel on where it can run (each also checks its device)."""

    #: No fused kernel anywhere: the layers' plain PyTorch math, every submodule called (the parity
    #: runner's hooked run; :func:`fastvideo.kernels.plain_math`).
    plain: bool = False

    # -- fastvideo.kernels.fused_linear (quack's GEMM epilogues, CUDA) --
    #: Residual updates (and the norm fold, the GELU) in quack's GEMM epilogues; off: cuBLASLt and separate
    #: elementwise kernels (benchmarks/dit_variants.py's "no-quack" variant).
    gemm_epilogues: bool = True
    #: The FFN up projection's bias + tanh-GELU in quack's epilogue instead of cuBLASLt's ("cublaslt-gelu").
    gelu_epilogue: bool = True
    #: With one modulation for the batch, each LayerNorm folded into the GEMM after it ("no-fold": off).
    norm_fold: bool = True
    #: The folded weights from one Triton kernel (each weight read once); off: plain torch ops ("fold-torch").
    fold_kernel: bool = True
    #: The fold kernel's launch: weight rows per program, columns per chunk, warps (benchmarks/fold_norm.py).
    fold_block_n: int = 8
    fold_block_k: int = 512
    fold_num_warps: int = 4

    # -- fastvideo.kernels.qk_norm_rope (Triton, CUDA) --
    #: The fused q/k RMSNorm + RoPE kernel; off: the unfused torch path ("unfused-qk").
    qk_norm_rope: bool = True
    #: The whole-row kernel's launch: rows per program, warps ("qk-b<rows>w<warps>" variants).
    qk_block: int = 4
    qk_num_warps: int = 8
    #: The chunked kernel (whole-head chunks, q and k in separate programs) where the head size allows;
    #: off: the whole-row kernel everywhere ("qk-rows").  Its launch shape.
    qk_chunked: bool = True
    qk_chunked_block: int = 4
    qk_chunked_num_warps: int = 4

    def replace(self, **changes) -> KernelPolicy:
        """A copy with some fields changed (an unknown field name raises TypeError)."""
        return dataclasses.replace(self, **changes)


DEFAULT = KernelPolicy()

_CURRENT = DEFAULT  # a module global: torch.compile reads it as a constant (with guards)


def current() -> KernelPolicy:
    """The policy in force."""
    return _CURRENT


def set_policy(policy: KernelPolicy) -> KernelPolicy:
    """Put ``policy`` in force until changed again; returns the one it replaces."""
    global _CURRENT
    if not isinstance(policy, KernelPolicy):
        raise TypeError(f"expected a KernelPolicy, got {type(policy).__name__}")
    previous, _CURRENT = _CURRENT, policy
    return previous


@contextlib.contextmanager
def use(policy: KernelPolicy | None = None, /, **changes) -> Iterator[KernelPolicy]:
    """Within the ``with`` block: ``policy`` (default: the current one) with ``changes`` applied; the
    previous policy is restored on exit, also on an exception.  Yields the policy in force."""
    new = (policy if policy is not None else current()).replace(**changes)
    previous = set_policy(new)
    try:
        yield new
    finally:
        set_policy(previous)


#: The same as :func:`use` (``with kernel_policy(norm_fold=False): ...``).
kernel_policy = use

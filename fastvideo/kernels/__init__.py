"""Fused GPU kernels for hot spots that torch.compile leaves slow; each has a pure-torch twin in the layers
(:mod:`fastvideo.layers`).

Which of them run is one :class:`~fastvideo.kernels.policy.KernelPolicy` (``policy.current()``,
``policy.use(**changes)``).  :func:`plain_math` turns them all off for a while: the model then runs its
reference path and calls every submodule (the parity runner's per-module comparison hooks them), on any device.
"""

from __future__ import annotations

from fastvideo.kernels import policy
from fastvideo.kernels.policy import KernelPolicy, current, kernel_policy, set_policy, use

__all__ = ["KernelPolicy", "current", "fused_allowed", "kernel_policy", "plain_math", "policy", "set_policy", "use"]


def fused_allowed() -> bool:
    """False inside :func:`plain_math` (``policy.current().plain``)."""
    return not policy.current().plain


def plain_math():
    """Within the ``with`` block, no fused kernel runs: the model's plain PyTorch math everywhere
    (``policy.use(plain=True)``)."""
    return use(plain=True)

"""Fused GPU kernels for hot spots that torch.compile leaves slow; each has a pure-torch twin in the model.

:func:`plain_math` turns them all off for a while: the model then runs its reference path and calls every
submodule (the parity runner's per-module comparison hooks them), on any device.
"""

from __future__ import annotations

import contextlib

_PLAIN = False


def fused_allowed() -> bool:
    """False inside :func:`plain_math`."""
    return not _PLAIN


@contextlib.contextmanager
def plain_math():
    """Within the ``with`` block, no fused kernel runs: the model's plain PyTorch math everywhere."""
    global _PLAIN
    saved, _PLAIN = _PLAIN, True
    try:
        yield
    finally:
        _PLAIN = saved

"""Attention backends and their selection.

Selection order: the explicit ``name`` argument, else the environment variable
``FASTVIDEO_ATTENTION_BACKEND``, else ``AUTO``.  ``AUTO`` takes, for each layer
role, the first available backend of :data:`AUTO_PREFERENCE` (the fastest
measured for that role's shapes).  A named backend applies to every layer, and
an unknown name or an unavailable backend is an error naming the available
ones -- never a silent fallback, so a benchmark cannot quietly run on the wrong
kernel.
"""

from __future__ import annotations

import os

from fastvideo.attention.backends.abstract import AttentionBackend
from fastvideo.attention.backends.flash import FlashAttnBackend
from fastvideo.attention.backends.flash4 import FlashAttn4Backend
from fastvideo.attention.backends.sdpa import TorchSDPABackend

ENV_VAR = "FASTVIDEO_ATTENTION_BACKEND"
AUTO = "AUTO"
DEFAULT_BACKEND = AUTO
ROLES = ("self", "cross")
#: What AUTO picks per layer role, first available wins.  Measured on an H100 at Wan2.1-1.3B's 480p shapes
#: (docs/benchmarks, run 8): self-attention over 32,760 video tokens, FlashAttention-4 693 TFLOP/s against
#: cuDNN SDPA's 581; cross-attention to 512 text tokens, cuDNN 0.23 ms against FlashAttention-4's 0.33 ms.
AUTO_PREFERENCE = {"self": ("FLASH_ATTN_4", "TORCH_SDPA"), "cross": ("TORCH_SDPA",)}

BACKENDS: dict[str, type[AttentionBackend]] = {
    TorchSDPABackend.name: TorchSDPABackend,
    FlashAttnBackend.name: FlashAttnBackend,
    FlashAttn4Backend.name: FlashAttn4Backend,
}


def available_backends() -> list[str]:
    return [name for name, cls in BACKENDS.items() if cls.is_available()]


def get_attn_backend(name: str | None = None, role: str = "self") -> AttentionBackend:
    """The backend called ``name`` (or from the env var, or AUTO's pick for ``role``: "self" or "cross")."""
    requested = name or os.environ.get(ENV_VAR) or DEFAULT_BACKEND
    key = requested.strip().upper()
    source = "argument" if name else (f"${ENV_VAR}" if os.environ.get(ENV_VAR) else "default")
    if key == AUTO:
        if role not in AUTO_PREFERENCE:
            raise ValueError(f"unknown attention role {role!r}; known: {list(AUTO_PREFERENCE)}")
        key = next(k for k in AUTO_PREFERENCE[role] if BACKENDS[k].is_available())  # TORCH_SDPA always is
        if key == FlashAttn4Backend.name:  # AUTO's pick hands what the kernel cannot take (fp32...) to SDPA
            return FlashAttn4Backend(fallback=TorchSDPABackend())
    if key not in BACKENDS:
        raise ValueError(
            f"unknown attention backend {requested!r} (from {source}); "
            f"known: {sorted(BACKENDS) + [AUTO]}, available here: {available_backends()}"
        )
    cls = BACKENDS[key]
    if not cls.is_available():
        raise ValueError(
            f"attention backend {key} (from {source}) is unavailable: {cls.unavailable_reason()}; "
            f"available here: {available_backends()}"
        )
    return cls()


__all__ = [
    "AUTO",
    "AUTO_PREFERENCE",
    "AttentionBackend",
    "BACKENDS",
    "DEFAULT_BACKEND",
    "ENV_VAR",
    "ROLES",
    "FlashAttn4Backend",
    "FlashAttnBackend",
    "TorchSDPABackend",
    "available_backends",
    "get_attn_backend",
]

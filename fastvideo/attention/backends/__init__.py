"""Attention backends and their selection.

Selection order: the explicit ``name`` argument, else the environment variable
``FASTVIDEO_ATTENTION_BACKEND``, else ``TORCH_SDPA``.  An unknown name or an
unavailable backend is an error naming the available ones -- never a silent
fallback, so a benchmark cannot quietly run on the wrong kernel.
"""

from __future__ import annotations

import os

from fastvideo.attention.backends.abstract import AttentionBackend
from fastvideo.attention.backends.flash import FlashAttnBackend
from fastvideo.attention.backends.sdpa import TorchSDPABackend

ENV_VAR = "FASTVIDEO_ATTENTION_BACKEND"
DEFAULT_BACKEND = "TORCH_SDPA"

BACKENDS: dict[str, type[AttentionBackend]] = {
    TorchSDPABackend.name: TorchSDPABackend,
    FlashAttnBackend.name: FlashAttnBackend,
}


def available_backends() -> list[str]:
    return [name for name, cls in BACKENDS.items() if cls.is_available()]


def get_attn_backend(name: str | None = None) -> AttentionBackend:
    """The backend called ``name`` (or from the env var, or the default)."""
    requested = name or os.environ.get(ENV_VAR) or DEFAULT_BACKEND
    key = requested.strip().upper()
    source = "argument" if name else (f"${ENV_VAR}" if os.environ.get(ENV_VAR) else "default")
    if key not in BACKENDS:
        raise ValueError(
            f"unknown attention backend {requested!r} (from {source}); "
            f"known: {sorted(BACKENDS)}, available here: {available_backends()}"
        )
    cls = BACKENDS[key]
    if not cls.is_available():
        raise ValueError(
            f"attention backend {key} (from {source}) is unavailable: {cls.unavailable_reason()}; "
            f"available here: {available_backends()}"
        )
    return cls()


__all__ = [
    "AttentionBackend",
    "BACKENDS",
    "DEFAULT_BACKEND",
    "ENV_VAR",
    "FlashAttnBackend",
    "TorchSDPABackend",
    "available_backends",
    "get_attn_backend",
]

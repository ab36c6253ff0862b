"""Token chunking of token-wise modules (the DiT's FFN and output head) for long sequences.

A token-wise module maps each token on its own, so running it over slices of the sequence and concatenating is
the same computation with a smaller working set: the FFN's hidden pair ``2 x S x ffn_dim`` becomes
``2 x chunk x ffn_dim`` (at 14B 720p, S = 75,600 tokens and ffn_dim 13,824: 4 GiB -> 432 MiB at 8,192 tokens).

:func:`chunk_tokens` replaces the module's ``forward`` on the instance (parameter names, state dicts and hooks
unchanged); :func:`unchunk_tokens` restores it.  Each output row is the same GEMM row as unchunked; whether the
BLAS library's blocking gives bit-equal rows for a different row count is the library's choice (the tests
compare).
"""

from __future__ import annotations

import torch
from torch import nn


def _chunked(module: nn.Module, chunk: int, dim: int):
    original = module.forward

    def forward(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        n = x.shape[dim]
        if n <= chunk:
            return original(x, *args, **kwargs)
        outs = [original(part, *args, **kwargs) for part in x.split(chunk, dim=dim)]
        return torch.cat(outs, dim=dim)

    forward._fastvideo_chunk = (original, chunk)  # type: ignore[attr-defined]
    return forward


def chunk_tokens(module: nn.Module, chunk: int | None, dim: int = 1) -> None:
    """Run ``module`` over ``chunk`` tokens (its first input's ``dim``) at a time; ``None`` restores it."""
    unchunk_tokens(module)
    if chunk:
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1 token, got {chunk}")
        module.forward = _chunked(module, int(chunk), dim)


def unchunk_tokens(module: nn.Module) -> None:
    info = getattr(module.__dict__.get("forward"), "_fastvideo_chunk", None)
    if info is not None:
        del module.forward


def token_chunk(module: nn.Module) -> int | None:
    info = getattr(module.__dict__.get("forward"), "_fastvideo_chunk", None)
    return info[1] if info else None


def chunk_dit(model: nn.Module, chunk: int | None) -> int:
    """Chunk every block's ``ffn`` and the ``head`` of a DiT (the modules that exist); returns how many."""
    count = 0
    for block in model.blocks._modules.values() if hasattr(model, "blocks") else ():
        if hasattr(block, "ffn"):
            chunk_tokens(block.ffn, chunk)
            count += 1
    if hasattr(model, "head"):
        chunk_tokens(model.head, chunk)
        count += 1
    return count

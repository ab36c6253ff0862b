"""``FLASH_ATTN``: the ``flash_attn`` package (FlashAttention-2/3), CUDA, fp16/bf16 only.

Its layout is already ``[B, S, H, D]``, so no transposes are needed.
"""

from __future__ import annotations

import importlib.util

import torch

from fastvideo.attention.backends.abstract import AttentionBackend


def _flash_attn_func():
    try:
        from flash_attn import flash_attn_func
    except Exception:  # ImportError, or a broken CUDA extension
        return None
    return flash_attn_func


class FlashAttnBackend(AttentionBackend):
    name = "FLASH_ATTN"

    @classmethod
    def is_available(cls) -> bool:
        return importlib.util.find_spec("flash_attn") is not None and _flash_attn_func() is not None

    @classmethod
    def unavailable_reason(cls) -> str:
        return "the flash_attn package is not installed or does not import"

    def __init__(self) -> None:
        self._fn = _flash_attn_func()
        if self._fn is None:
            raise ValueError(f"FLASH_ATTN backend unavailable: {self.unavailable_reason()}")

    def forward(self, query, key, value, *, scale=None):
        if query.dtype not in (torch.float16, torch.bfloat16):
            raise ValueError(f"FLASH_ATTN needs float16/bfloat16 inputs, got {query.dtype}; use TORCH_SDPA instead")
        return self._fn(query, key, value, dropout_p=0.0, softmax_scale=scale, causal=False)

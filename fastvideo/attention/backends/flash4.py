"""``FLASH_ATTN_4``: FlashAttention-4, the CuTe-DSL kernels of the ``flash-attn-4`` package.

Hopper (compute capability 9.x) and Blackwell (10.x) only, fp16/bf16 only.  Install with
``pip install "fastvideo-studio[fa4]"``.  Its layout is ours, ``[B, S, H, D]``, so no transposes.

The kernels are compiled just in time by the CuTe DSL on the first call for each
shape family (seconds; cached for the life of the process).  The call is wrapped
in a ``torch.library`` custom op so ``torch.compile`` keeps each transformer
block one graph around it instead of tracing into the DSL.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util

import torch

from fastvideo.attention.backends.abstract import AttentionBackend

SUPPORTED_MAJORS = (9, 10)


@functools.cache
def _interface():
    """``flash_attn.cute.interface``, imported on first use (it loads the CuTe DSL: a few seconds)."""
    return importlib.import_module("flash_attn.cute.interface")


@functools.cache
def _installed() -> bool:
    try:
        return importlib.util.find_spec("flash_attn.cute") is not None and importlib.util.find_spec("cutlass") is not None
    except (ImportError, ValueError):  # a parent package that is not a package
        return False


@torch.library.custom_op("fastvideo::flash_attn_4", mutates_args=())
def flash_attn_4(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float) -> torch.Tensor:
    out, _lse = _interface().flash_attn_func(query, key, value, softmax_scale=scale, causal=False)
    return out


@flash_attn_4.register_fake
def _(query, key, value, scale):
    # FlashAttention-4 allocates its output contiguous, whatever the query's strides (e.g. a sliced view).
    return query.new_empty(query.shape)


class FlashAttn4Backend(AttentionBackend):
    name = "FLASH_ATTN_4"

    @classmethod
    def is_available(cls) -> bool:
        return cls.unavailable_reason() == ""

    @classmethod
    def unavailable_reason(cls) -> str:
        if not torch.cuda.is_available():
            return "it needs an NVIDIA GPU of compute capability 9.x (Hopper) or 10.x (Blackwell); none is visible"
        major, minor = torch.cuda.get_device_capability()
        if major not in SUPPORTED_MAJORS:
            return f"it needs compute capability 9.x or 10.x, this GPU is {major}.{minor}"
        if not _installed():
            return 'the flash-attn-4 package is not installed (pip install "fastvideo-studio[fa4]")'
        return ""

    def __init__(self, fallback: AttentionBackend | None = None) -> None:
        """``fallback`` (AUTO gives TORCH_SDPA) takes the inputs the kernel cannot: fp32, odd head sizes.
        Without one, as when FLASH_ATTN_4 is named, such inputs are an error."""
        reason = self.unavailable_reason()
        if reason:
            raise ValueError(f"FLASH_ATTN_4 backend unavailable: {reason}")
        self.fallback = fallback

    @staticmethod
    def unsupported(query: torch.Tensor) -> str:
        """Why the kernel cannot take ``query`` ("" if it can)."""
        if query.dtype not in (torch.float16, torch.bfloat16):
            return f"FLASH_ATTN_4 needs float16/bfloat16 inputs, got {query.dtype}"
        if query.shape[-1] % 8 or query.shape[-1] > 256:
            return f"FLASH_ATTN_4 needs a head size that is a multiple of 8 up to 256, got {query.shape[-1]}"
        return ""

    def forward(self, query, key, value, *, scale=None):
        problem = self.unsupported(query)
        if problem:
            if self.fallback is not None:
                return self.fallback(query, key, value, scale=scale)
            raise ValueError(f"{problem}; use TORCH_SDPA (or AUTO) instead")
        if scale is None:
            scale = query.shape[-1] ** -0.5
        return flash_attn_4(query, key, value, float(scale))

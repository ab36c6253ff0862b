"""``TORCH_SDPA``: PyTorch's ``scaled_dot_product_attention`` (the default backend).

On CUDA the kernel is picked from an ordered preference list, cuDNN first (the
fastest on Hopper for long sequences), then FlashAttention-2, memory-efficient,
and the math fallback.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from fastvideo.attention.backends.abstract import AttentionBackend

try:  # torch >= 2.3
    from torch.nn.attention import SDPBackend, sdpa_kernel
except ImportError:  # pragma: no cover - old torch
    SDPBackend = None  # type: ignore[assignment]
    sdpa_kernel = None  # type: ignore[assignment]

CUDA_KERNEL_PREFERENCE = (
    ("CUDNN_ATTENTION", "FLASH_ATTENTION", "EFFICIENT_ATTENTION", "MATH") if SDPBackend is not None else ()
)


def _kernel_context(device: torch.device):
    if device.type != "cuda" or sdpa_kernel is None:
        return contextlib.nullcontext()
    kernels = [getattr(SDPBackend, k) for k in CUDA_KERNEL_PREFERENCE if hasattr(SDPBackend, k)]
    try:
        return sdpa_kernel(kernels, set_priority=True)
    except TypeError:  # torch without set_priority: the order is then torch's own
        return sdpa_kernel(kernels)


class TorchSDPABackend(AttentionBackend):
    name = "TORCH_SDPA"

    def forward(self, query, key, value, *, scale=None):
        # SDPA wants [B, H, S, D]; ours is [B, S, H, D].
        q, k, v = (t.transpose(1, 2) for t in (query, key, value))
        with _kernel_context(q.device):
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0, is_causal=False, scale=scale)
        return out.transpose(1, 2)

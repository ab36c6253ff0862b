"""Timing on the GPU: CUDA events around each call, warm-up first, medians reported."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def time_cuda(fn: Callable[[], object], warmup: int = 2, iters: int = 5,
              before: Callable[[], object] | None = None) -> dict[str, float]:
    """Median / min / max seconds of ``fn`` measured with CUDA events (host clock on CPU).  ``before``, if
    given, runs ahead of each timed call, outside the timed span."""
    for _ in range(warmup):
        fn()
    cuda = torch.cuda.is_available()
    times = []
    for _ in range(iters):
        if before is not None:
            before()
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        else:
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return summarize(times)


def summarize(times: list[float]) -> dict[str, float]:
    """Median / min / max of timed calls (seconds) and their count."""
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "iters": len(times)}


# Ceilings get a long warm-up: the first ~100 ms of a kernel's repeats run below its sustained rate
# (clocks ramp), and a ceiling read low makes the floor look easy (cuDNN SDPA read 560 TFLOP/s after
# 3 warm-up calls and 582-586 later in the same process).
CEILING_WARMUP = 10


def matmul_ceiling(n: int = 8192, dtype=torch.bfloat16, iters: int = 20) -> float:
    """FLOP/s of an n x n x n matrix product on random data."""
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    t = time_cuda(lambda: a @ b, warmup=CEILING_WARMUP, iters=iters)["median"]
    return 2 * n**3 / t


def _sdpa_kernels(name: str | None) -> list:
    """SDPA's kernel list for a name: "cudnn", "flash", "efficient" forced, or None for PyTorch's choice."""
    from torch.nn.attention import SDPBackend

    single = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
              "efficient": SDPBackend.EFFICIENT_ATTENTION}
    if name is None:
        return [*single.values(), SDPBackend.MATH]
    return [single[name]]


def attention_ceiling(heads: int, seq: int, head_dim: int, dtype=torch.bfloat16, backend: str | None = "cudnn",
                      iters: int = 20) -> float:
    """FLOP/s of attention at 1 x heads x seq x head_dim with the chosen kernel.

    ``backend``: an SDPA kernel ("cudnn", "flash", "efficient", or None for PyTorch's choice) or "fa4"
    (FlashAttention-4 through the FLASH_ATTN_4 backend).
    """
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    if backend == "fa4":
        from fastvideo.attention.backends.flash4 import FlashAttn4Backend

        attn = FlashAttn4Backend()
        q, k, v = (torch.randn(1, seq, heads, head_dim, device=dev, dtype=dtype) for _ in range(3))

        def run():
            attn(q, k, v)
    else:
        from torch.nn.attention import sdpa_kernel

        q, k, v = (torch.randn(1, heads, seq, head_dim, device=dev, dtype=dtype) for _ in range(3))
        kernels = _sdpa_kernels(backend)

        def run():
            with sdpa_kernel(kernels):
                torch.nn.functional.scaled_dot_product_attention(q, k, v)

    t = time_cuda(run, warmup=CEILING_WARMUP, iters=iters)["median"]
    return 4 * heads * seq * seq * head_dim / t


def sdpa_bshd(kernel: str):
    """SDPA on [B, S, H, D] inputs (the model's layout) with one kernel forced: "cudnn", "flash" or "efficient"."""
    from torch.nn.attention import sdpa_kernel

    forced = _sdpa_kernels(kernel)

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        with sdpa_kernel(forced):
            out = torch.nn.functional.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v)))
        return out.transpose(1, 2)

    return run

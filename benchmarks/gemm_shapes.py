"""The DiT's matrix products at their real shapes, against the matmul ceiling, in several formulations.

One process, one GPU, Wan2.1-T2V-1.3B at 480x832x81 (32,760 tokens, bf16):

1. the 8192^3 matmul rate over time (and FlashAttention-4's and cuDNN's at the model's self-attention):
   back-to-back calls, the rate of each ~100 ms window, so the clock ramp at the start and any
   throttling under sustained load show;
2. each projection of a block (q/k/v, output, cross-attention, FFN up with bias + GELU, FFN down) as
   ``F.linear`` (weight [N, K], what the model does), as ``addmm`` with the weight stored [K, N]
   contiguous (another cuBLAS layout, so another kernel choice), and for the FFN up: bias + GELU in
   cuBLASLt's epilogue, without it, and under ``torch.compile`` (default and max-autotune).

    python benchmarks/gemm_shapes.py --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastvideo.perf.bench import environment  # noqa: E402
from fastvideo.perf.timing import time_cuda  # noqa: E402

TOKENS, DIM, FFN = 32760, 1536, 8960
SHAPES = {"qkv": (DIM, 3 * DIM), "out": (DIM, DIM), "ffn_up": (DIM, FFN), "ffn_down": (FFN, DIM)}


def windows(fn, flop: float, seconds: float, window: int) -> list[float]:
    """TFLOP/s of each window of ``window`` back-to-back calls of ``fn`` (``flop`` each), for ``seconds``
    (after one untimed call, which may compile)."""
    fn()
    rates, t0 = [], time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(window):
            fn()
        end.record()
        end.synchronize()
        rates.append(flop * window / (start.elapsed_time(end) / 1e3) / 1e12)
    return rates


def ceiling_windows(seconds: float = 3.0, n: int = 8192) -> list[float]:
    """8192^3 products, 64 to a window (~0.1 s)."""
    a, b = (torch.randn(n, n, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    return windows(lambda: a @ b, 2 * n**3, seconds, window=64)


def attention_windows(kernel: str, seconds: float = 2.0) -> list[float]:
    """Self-attention over all tokens (12 heads x 128), 10 calls to a window (~0.1 s)."""
    q, k, v = (torch.randn(1, TOKENS, 12, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    if kernel == "fa4":
        from fastvideo.attention.backends.flash4 import FlashAttn4Backend

        attn = FlashAttn4Backend()
    else:
        from fastvideo.perf.timing import sdpa_bshd

        attn = sdpa_bshd(kernel)
    return windows(lambda: attn(q, k, v), 4 * 12 * TOKENS * TOKENS * 128, seconds, window=10)


def rate(fn, flop: float) -> float:
    return flop / time_cuda(fn, warmup=20, iters=30)["median"] / 1e12


def shapes() -> dict:
    x = torch.randn(TOKENS, DIM, device="cuda", dtype=torch.bfloat16)
    h = torch.randn(TOKENS, FFN, device="cuda", dtype=torch.bfloat16)
    out = {}
    for name, (k, n) in SHAPES.items():
        a = h if k == FFN else x
        w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5
        b = torch.randn(n, device="cuda", dtype=torch.bfloat16)
        wt = w.t().contiguous()
        flop = 2 * TOKENS * k * n
        row = {"linear_TN": rate(lambda: F.linear(a, w, b), flop),
               "addmm_NN": rate(lambda: torch.addmm(b, a, wt), flop),
               "mm_TN": rate(lambda: a @ w.t(), flop),
               "mm_NN": rate(lambda: a @ wt, flop)}
        if name == "ffn_up":
            row["addmm_gelu_TN"] = rate(lambda: torch._addmm_activation(b, a, w.t(), use_gelu=True), flop)
            row["addmm_gelu_NN"] = rate(lambda: torch._addmm_activation(b, a, wt, use_gelu=True), flop)

            def up(a, w, b):
                return F.gelu(F.linear(a, w, b), approximate="tanh")

            for mode in ("default", "max-autotune-no-cudagraphs"):
                try:
                    torch._dynamo.reset()
                    fn = torch.compile(up, mode=None if mode == "default" else mode, dynamic=False)
                    with torch.inference_mode():
                        fn(a, w, b)
                        row[f"compiled_{mode}"] = rate(lambda: fn(a, w, b), flop)
                except Exception as exc:  # report, keep the other numbers
                    row[f"compiled_{mode}"] = f"{type(exc).__name__}: {exc}"[:300]
        out[name] = row
        print(name, {k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", required=True)
    args = p.parse_args(argv)
    r = {"env": environment()}
    windows = ceiling_windows()
    r["ceiling_windows_tflops"] = windows
    print("8192^3 windows (TFLOP/s):", [round(w) for w in windows], flush=True)
    for kernel in ("fa4", "cudnn"):
        try:
            r[f"attention_{kernel}_windows_tflops"] = w = attention_windows(kernel)
            print(f"attention {kernel} windows:", [round(x) for x in w], flush=True)
        except Exception as exc:  # FlashAttention-4 not installed: say so, measure the rest
            r[f"attention_{kernel}_windows_tflops"] = f"{type(exc).__name__}: {exc}"[:300]
    r["shapes_tflops"] = shapes()
    r["ceiling_windows_after_tflops"] = ceiling_windows(1.0)
    print("8192^3 windows after:", [round(w) for w in r["ceiling_windows_after_tflops"]], flush=True)
    Path(args.json).write_text(json.dumps(r, indent=1) + "\n")


if __name__ == "__main__":
    main()

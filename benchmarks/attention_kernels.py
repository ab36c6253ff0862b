"""Attention kernels at Wan2.1's shapes: speed and agreement, one GPU, one process.

For self-attention (tokens x tokens) and cross-attention (tokens x 512 text tokens), batch 1
and the CFG pair, bf16, [B, S, H, D] as the model hands them over, each kernel available here
is timed (CUDA events, warm-up, median) and its output compared with an fp32 reference:

* ``cudnn`` / ``flash``: PyTorch SDPA with that kernel forced (the TORCH_SDPA backend prefers cuDNN);
* ``fa4``: FlashAttention-4 through the FLASH_ATTN_4 backend (when flash-attn-4 is installed).

    python benchmarks/attention_kernels.py [--heads 12 --tokens 32760] --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastvideo.attention.backends import FlashAttn4Backend  # noqa: E402
from fastvideo.perf.bench import environment, rel_l2  # noqa: E402
from fastvideo.perf.timing import sdpa_bshd, time_cuda  # noqa: E402


def reference(q, k, v, chunk=4096):
    """fp32 softmax(q k^T / sqrt(d)) v, in query chunks to bound memory."""
    outs = []
    for i in range(0, q.shape[1], chunk):
        qi = q[:, i:i + chunk].float().transpose(1, 2)
        s = (qi @ k.float().transpose(1, 2).transpose(-1, -2)) * q.shape[-1] ** -0.5
        outs.append((s.softmax(-1) @ v.float().transpose(1, 2)).transpose(1, 2))
    return torch.cat(outs, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--tokens", type=int, default=32760, help="480x832x81 -> 21x30x52 = 32760")
    ap.add_argument("--text", type=int, default=512)
    ap.add_argument("--json")
    args = ap.parse_args()
    kernels = {"cudnn": sdpa_bshd("cudnn"), "flash": sdpa_bshd("flash")}
    if FlashAttn4Backend.is_available():
        kernels["fa4"] = FlashAttn4Backend()
    else:
        print("FLASH_ATTN_4 unavailable:", FlashAttn4Backend.unavailable_reason())
    results = {"env": environment(), "shape": vars(args), "cases": {}}
    h, d = args.heads, args.head_dim
    g = torch.Generator(device="cuda").manual_seed(0)
    for case, batch, kv in (("self_b1", 1, args.tokens), ("self_b2", 2, args.tokens),
                            ("cross_b1", 1, args.text), ("cross_b2", 2, args.text)):
        q = torch.randn(batch, args.tokens, h, d, device="cuda", dtype=torch.bfloat16, generator=g)
        k, v = (torch.randn(batch, kv, h, d, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(2))
        ref = reference(q[:1], k[:1], v[:1])
        flop = 4 * batch * h * args.tokens * kv * d
        row = results["cases"][case] = {}
        for name, fn in kernels.items():
            t0 = time.perf_counter()
            out = fn(q, k, v)
            torch.cuda.synchronize()
            first = time.perf_counter() - t0
            t = time_cuda(lambda fn=fn: fn(q, k, v), warmup=10, iters=20)
            row[name] = {"ms": t["median"] * 1e3, "tflops": flop / t["median"] / 1e12, "first_call_s": first,
                         "rel_l2_vs_fp32": rel_l2(out[:1], ref)}
            print(f"{case:9s} {name:6s} {row[name]['ms']:8.3f} ms {row[name]['tflops']:6.1f} TFLOP/s "
                  f"rel_l2 {row[name]['rel_l2_vs_fp32']:.2e} first call {first:.1f} s", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

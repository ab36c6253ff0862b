"""What feeds the DiT's self-attention: the fused q/k norm + RoPE kernel, and FlashAttention-4's input layouts.

On one GPU at Wan2.1-1.3B 480p (32,760 tokens, 12 heads of 128, bf16), in interleaved rounds:

1. ``fastvideo.kernels.qk_norm_rope``: the whole-row kernel against the chunked one at several launch
   shapes (rows per program x warps), with the bandwidth each reaches (q and k read and written once);
2. FlashAttention-4 with q/k/v laid out as below.

The model's q and k come from the fused q/k norm + RoPE kernel as contiguous [B, S, H, D] tensors, but v is
a view of the q/k/v projection's output (row stride 3 x 1536 channels).  The attention ceiling in
``fastvideo bench`` is measured on three contiguous tensors.  This times, in interleaved rounds on one GPU
(Wan2.1-1.3B at 480p: 32,760 tokens, 12 heads of 128, bf16):

* ``contiguous``: q, k, v contiguous (the ceiling's layout);
* ``v_view``: q, k contiguous, v a view of a [B, S, 3 x 1536] tensor (the model's layout);
* ``all_views``: q, k and v all views of that tensor;
* ``v_copy``: the model's layout plus the copy that would make v contiguous.

    python benchmarks/attention_inputs.py --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastvideo.attention.backends.flash4 import flash_attn_4  # noqa: E402
from fastvideo.kernels import policy, qk_norm_rope  # noqa: E402
from fastvideo.models.dits.wan import rope_cos_sin  # noqa: E402
from fastvideo.perf.bench import environment  # noqa: E402
from fastvideo.perf.timing import time_cuda  # noqa: E402

TOKENS, HEADS, HEAD_DIM = 32760, 12, 128


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", required=True)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    dim, scale = HEADS * HEAD_DIM, HEAD_DIM**-0.5
    g = torch.Generator(device="cuda").manual_seed(0)
    qkv = torch.randn(1, TOKENS, 3 * dim, device="cuda", generator=g).bfloat16()
    views = [t.unflatten(2, (HEADS, HEAD_DIM)) for t in qkv.split(dim, dim=-1)]
    q, k, v = (t.contiguous() for t in views)
    cos, sin = rope_cos_sin((21, 30, 52), HEAD_DIM, "cuda")
    wq, wk = (torch.randn(dim, device="cuda", generator=g).bfloat16() for _ in range(2))

    saved = policy.current()

    def qk(kernel: str, block: int, warps: int):
        launch = (dict(qk_chunked=True, qk_chunked_block=block, qk_chunked_num_warps=warps) if kernel == "chunked"
                  else dict(qk_chunked=False, qk_block=block, qk_num_warps=warps))
        chosen = saved.replace(**launch)

        def run():
            policy.set_policy(chosen)  # (a global swap: no host cost worth timing)
            return qk_norm_rope.qk_norm_rope(qkv, wq, wk, cos, sin, 1e-6, HEADS)
        return run

    qk_cases = {"rows_b4w8": qk("rows", 4, 8), **{f"chunked_b{b}w{w}": qk("chunked", b, w)
                                                 for b, w in ((2, 4), (4, 4), (4, 8), (8, 8), (16, 8))}}
    cases = {
        **qk_cases,
        "contiguous": lambda: flash_attn_4(q, k, v, scale),
        "v_view": lambda: flash_attn_4(q, k, views[2], scale),
        "all_views": lambda: flash_attn_4(*views, scale),
        "v_copy": lambda: flash_attn_4(q, k, views[2].contiguous(), scale),
    }
    reference = cases["contiguous"]()
    qk_reference = torch.cat(qk_cases["rows_b4w8"]())
    r: dict = {"env": environment(), "shape": [1, TOKENS, HEADS, HEAD_DIM], "ms": {}, "max_abs_diff": {}}
    for name, fn in cases.items():
        out = torch.cat(fn()) if name in qk_cases else fn()
        r["max_abs_diff"][name] = float((out - (qk_reference if name in qk_cases else reference)).abs().max())
    for _ in range(args.rounds):
        for name, fn in cases.items():
            r["ms"].setdefault(name, []).append(time_cuda(fn, warmup=5, iters=20)["median"] * 1e3)
    policy.set_policy(saved)
    flop, moved = 4 * HEADS * TOKENS * TOKENS * HEAD_DIM, 4 * TOKENS * dim * 2  # q, k: read once, written once
    r["median_ms"] = {k: statistics.median(v) for k, v in r["ms"].items()}
    r["tflops"] = {k: flop / (v / 1e3) / 1e12 for k, v in r["median_ms"].items() if k not in qk_cases}
    r["tb_per_s"] = {k: moved / (v / 1e3) / 1e12 for k, v in r["median_ms"].items() if k in qk_cases}
    for name in cases:
        rate = f"{r['tb_per_s'][name]:.2f} TB/s" if name in qk_cases else f"{r['tflops'][name]:.0f} TFLOP/s"
        print(f"{name:16s} {r['median_ms'][name]:.3f} ms  {rate}  (max |diff| {r['max_abs_diff'][name]:.1e})",
              flush=True)
    Path(args.json).write_text(json.dumps(r, indent=1) + "\n")


if __name__ == "__main__":
    main()

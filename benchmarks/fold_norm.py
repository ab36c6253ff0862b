"""The LayerNorm fold's weight preparation (``fused_linear.fold_norm``) at Wan2.1-1.3B's shapes.

Per block and forward the fold rewrites the q/k/v (4608 x 1536) and FFN-up (8960 x 1536) weights scaled by
the timestep's modulation, with their row sums and ``W @ shift + b``.  This times, with
``triton.testing.do_bench`` (L2 flushed between calls, so the weights come from memory as in the model):

* ``inductor``: the plain torch fold compiled by Inductor (the model's path before the Triton kernel);
* ``kernel_b{rows}k{cols}w{warps}``: the one-pass Triton kernel at several launch shapes;

each with the bandwidth it reaches (the weight read once and written once), and checks each against the
torch fold.

    python benchmarks/fold_norm.py --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastvideo.kernels import fused_linear  # noqa: E402
from fastvideo.perf.bench import environment  # noqa: E402

SHAPES = {"qkv": (4608, 1536), "ffn_up": (8960, 1536)}
LAUNCHES = [(8, 512, 4), (4, 512, 4), (16, 512, 8), (8, 256, 4), (16, 256, 4), (32, 256, 8), (2, 1536, 4)]


def torch_fold(w, gain, shift, bias):
    folded = (w.float() * gain).to(w.dtype)
    return folded, folded.float().sum(-1)[None], ((w.float() * shift).sum(-1) + bias.float())[None]


def main(argv=None):
    from triton.testing import do_bench

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", required=True)
    args = p.parse_args(argv)
    r: dict = {"env": environment(), "ms": {}, "tb_per_s": {}, "max_abs_diff": {}}
    compiled = torch.compile(torch_fold, dynamic=False)
    g = torch.Generator(device="cuda").manual_seed(0)
    for shape_name, (n, k) in SHAPES.items():
        w = torch.randn(n, k, device="cuda", generator=g).bfloat16()
        gain = torch.randn(k, device="cuda", generator=g) * 0.2 + 1
        shift, bias = torch.randn(k, device="cuda", generator=g), torch.randn(n, device="cuda", generator=g).bfloat16()
        reference = torch_fold(w, gain, shift, bias)
        cases = {"inductor": lambda: compiled(w, gain, shift, bias)}
        for rows, cols, warps in LAUNCHES:
            def run(rows=rows, cols=cols, warps=warps):
                fused_linear.FOLD_KERNEL.update(BLOCK_N=rows, BLOCK_K=cols, num_warps=warps)
                return fused_linear.fold_weights(w, gain, shift, bias)
            cases[f"kernel_b{rows}k{cols}w{warps}"] = run
        moved = 2 * n * k * 2  # bf16 weight read once, folded weight written once
        for name, fn in cases.items():
            out = fn()
            diff = max(float((a.float() - b.float()).abs().max()) for a, b in zip(out, reference))
            ms = do_bench(fn, warmup=25, rep=200)
            key = f"{shape_name}/{name}"
            r["ms"][key], r["tb_per_s"][key], r["max_abs_diff"][key] = ms, moved / (ms / 1e3) / 1e12, diff
            print(f"{key:28s} {ms * 1e3:7.1f} us  {r['tb_per_s'][key]:.2f} TB/s  (max |diff| {diff:.1e})", flush=True)
    fused_linear.FOLD_KERNEL.update(BLOCK_N=8, BLOCK_K=512, num_warps=4)
    Path(args.json).write_text(json.dumps(r, indent=1) + "\n")


if __name__ == "__main__":
    main()

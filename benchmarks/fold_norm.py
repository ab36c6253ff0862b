"""The LayerNorm fold's weight preparation (``fused_linear.fold_norm``) at Wan2.1-1.3B's shapes.

Per block and forward the fold rewrites the q/k/v (4608 x 1536) and FFN-up (8960 x 1536) weights scaled by
the timestep's modulation, with their row sums and ``W @ shift + b``.  This times the GPU alone: each case
folds eight different weights of the shape (more than the L2 holds, so they come from memory as in the
model) inside one CUDA graph, replayed; the host's launch cost, which exceeds these kernels' run time,
is left out:

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

from fastvideo.kernels import fused_linear, policy  # noqa: E402
from fastvideo.perf.bench import environment  # noqa: E402

SHAPES = {"qkv": (4608, 1536), "ffn_up": (8960, 1536)}
LAUNCHES = [(8, 512, 4), (4, 512, 4), (16, 512, 8), (8, 256, 4), (16, 256, 4), (32, 256, 8)]
COPIES = 8


def torch_fold(w, gain, shift, bias):
    folded = (w.float() * gain).to(w.dtype)
    return folded, folded.float().sum(-1)[None], ((w.float() * shift).sum(-1) + bias.float())[None]


def graph_time(fn, copies: int, replays: int = 20) -> float:
    """Median ms per call of ``fn(i)`` for i in range(copies), captured in one CUDA graph and replayed."""
    import statistics

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for i in range(copies):
            fn(i)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for i in range(copies):
            fn(i)
    times = []
    for _ in range(replays):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / copies)
    return statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", required=True)
    args = p.parse_args(argv)
    r: dict = {"env": environment(), "ms": {}, "tb_per_s": {}, "max_abs_diff": {}}
    compiled = torch.compile(torch_fold, dynamic=False)
    g = torch.Generator(device="cuda").manual_seed(0)
    saved = policy.current()
    for shape_name, (n, k) in SHAPES.items():
        ws = [torch.randn(n, k, device="cuda", generator=g).bfloat16() for _ in range(COPIES)]
        w = ws[0]
        gain = torch.randn(k, device="cuda", generator=g) * 0.2 + 1
        shift, bias = torch.randn(k, device="cuda", generator=g), torch.randn(n, device="cuda", generator=g).bfloat16()
        reference = torch_fold(w, gain, shift, bias)
        cases = {"inductor": lambda i=0: compiled(ws[i], gain, shift, bias)}
        for rows, cols, warps in LAUNCHES:
            chosen = saved.replace(fold_kernel=True, fold_block_n=rows, fold_block_k=cols, fold_num_warps=warps)

            def run(i=0, chosen=chosen):
                policy.set_policy(chosen)
                return fused_linear.fold_weights(ws[i], gain, shift, bias)
            cases[f"kernel_b{rows}k{cols}w{warps}"] = run
        moved = 2 * n * k * 2  # bf16 weight read once, folded weight written once
        for name, fn in cases.items():
            out = fn()
            diff = max(float((a.float() - b.float()).abs().max()) for a, b in zip(out, reference))
            ms = graph_time(fn, COPIES)
            key = f"{shape_name}/{name}"
            r["ms"][key], r["tb_per_s"][key], r["max_abs_diff"][key] = ms, moved / (ms / 1e3) / 1e12, diff
            print(f"{key:28s} {ms * 1e3:7.1f} us  {r['tb_per_s'][key]:.2f} TB/s  (max |diff| {diff:.1e})", flush=True)
    policy.set_policy(saved)
    Path(args.json).write_text(json.dumps(r, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""cuBLASLt against quack's CuTe-DSL GEMMs with fused epilogues, at the DiT's shapes.

quack (``quack-kernels``, installed with flash-attn-4) writes GEMM epilogues as small Python functions.
This measures, on one GPU at Wan2.1-1.3B 480p (32,760 tokens, bf16), each candidate against what the
model runs now, in interleaved rounds (so clock changes hit both alike):

* FFN up with bias + tanh-GELU: cuBLASLt's GELU epilogue vs quack's (``bias_gelu_epi``);
* FFN down / attention output projection with the gated residual ``x + gate * (h @ W^T + b)``:
  cuBLASLt + one fused elementwise kernel (what Inductor makes) vs one quack GEMM whose epilogue does it;
* a plain projection (q/k/v) as a check on quack's mainloop;
* the q/k/v projection after its LayerNorm + modulation: Inductor's norm kernel + cuBLASLt vs the norm folded
  into a quack GEMM (``fused_linear.norm_linear``, compiled with its weight folding), and the output projection
  with the per-row sums that fold needs (``gated_residual_stats_epi``).

    python benchmarks/quack_gemms.py --json OUT.json [--tuned]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastvideo.perf.bench import environment  # noqa: E402
from fastvideo.perf.timing import time_cuda  # noqa: E402

TOKENS, DIM, FFN = 32760, 1536, 8960


def rel(a, b) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", required=True)
    p.add_argument("--tuned", action="store_true", help="also quack's autotuned configs (compiles many kernels)")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    from quack.gemm_interface import gemm

    from fastvideo.kernels import fused_linear
    from fastvideo.kernels._quack_epilogues import bias_gelu_epi, gated_residual_epi, gated_residual_stats_epi

    r: dict = {"env": environment(), "cases": {}}
    dev, bf = "cuda", torch.bfloat16
    g = torch.Generator(device=dev).manual_seed(0)

    def randn(*shape, scale=1.0, dtype=bf):
        return (torch.randn(*shape, generator=g, device=dev, dtype=torch.float32) * scale).to(dtype)

    x, h = randn(TOKENS, DIM), randn(TOKENS, FFN)
    w_up, b_up = randn(FFN, DIM, scale=DIM**-0.5), randn(FFN, scale=0.1)
    w_down, b_down = randn(DIM, FFN, scale=FFN**-0.5), randn(DIM, scale=0.1)
    w_o, b_o = randn(DIM, DIM, scale=DIM**-0.5), randn(DIM, scale=0.1)
    w_qkv, b_qkv = randn(3 * DIM, DIM, scale=DIM**-0.5), randn(3 * DIM, scale=0.1)
    gate = randn(DIM, scale=0.5, dtype=torch.float32)

    residual = torch.compile(lambda x, y, gate: (x.float() + y.float() * gate).type_as(x), dynamic=False)

    def ref_gated(a, w, b):
        return (x.float() + (a.float() @ w.float().t() + b.float()) * gate).to(bf)

    qkv = torch.nn.Linear(DIM, 3 * DIM).to(dev, bf).requires_grad_(False)
    qkv.weight.data, qkv.bias.data = w_qkv, b_qkv
    scale, shift = randn(DIM, scale=0.3, dtype=torch.float32), randn(DIM, scale=0.3, dtype=torch.float32)

    def ln_mod(x):
        return (F.layer_norm(x.float(), (DIM,), eps=1e-6) * (1 + scale) + shift).to(bf)

    ln_then_qkv = torch.compile(lambda x: F.linear(ln_mod(x), w_qkv, b_qkv), dynamic=False)
    folded_qkv = torch.compile(lambda x: fused_linear.norm_linear(x, fused_linear.row_stats(x), qkv, 1 + scale,
                                                                  shift, 1e-6), dynamic=False)
    stats = fused_linear.row_stats(x)
    folded_qkv_given_stats = torch.compile(lambda x, hsum, sqsum: fused_linear.norm_linear(
        x, fused_linear.RowStats(hsum, sqsum), qkv, 1 + scale, shift, 1e-6), dynamic=False)

    cases = {
        "qkv_after_layer_norm": {
            "flop": 2 * TOKENS * DIM * 3 * DIM,
            "ref": lambda: ln_mod(x).float() @ w_qkv.float().t() + b_qkv.float(),
            "cublaslt": lambda: ln_then_qkv(x),
            "quack_folded": lambda: folded_qkv_given_stats(x, *stats),
            "quack_folded_with_stats_pass": lambda: folded_qkv(x),
        },
        "out_proj_gated_residual_stats": {
            "flop": 2 * TOKENS * DIM * DIM,
            "ref": lambda: ref_gated(x, w_o, b_o),
            "quack": lambda: gated_residual_epi(x, w_o.t(), x, bias=b_o[None], gate=gate[None], tuned=False)["D"],
            "quack_stats": lambda: gated_residual_stats_epi(x, w_o.t(), x, bias=b_o[None], gate=gate[None],
                                                            tuned=False)["D"],
        },
        "ffn_up_gelu": {
            "flop": 2 * TOKENS * DIM * FFN,
            "ref": lambda: F.gelu(x.float() @ w_up.float().t() + b_up.float(), approximate="tanh"),
            "cublaslt": lambda: torch._addmm_activation(b_up, x, w_up.t(), use_gelu=True),
            "quack": lambda: bias_gelu_epi(x, w_up.t(), bias=b_up[None], tuned=False)["D"],
            "quack_no_gelu": lambda: gemm(x, w_up.t(), bias=b_up, tuned=False),
        },
        "ffn_down_gated_residual": {
            "flop": 2 * TOKENS * DIM * FFN,
            "ref": lambda: ref_gated(h, w_down, b_down),
            "cublaslt": lambda: residual(x, F.linear(h, w_down, b_down), gate),
            "quack": lambda: gated_residual_epi(h, w_down.t(), x, bias=b_down[None], gate=gate[None],
                                                tuned=False)["D"],
        },
        "out_proj_gated_residual": {
            "flop": 2 * TOKENS * DIM * DIM,
            "ref": lambda: ref_gated(x, w_o, b_o),
            "cublaslt": lambda: residual(x, F.linear(x, w_o, b_o), gate),
            "quack": lambda: gated_residual_epi(x, w_o.t(), x, bias=b_o[None], gate=gate[None], tuned=False)["D"],
        },
        "qkv": {
            "flop": 2 * TOKENS * DIM * 3 * DIM,
            "ref": lambda: x.float() @ w_qkv.float().t() + b_qkv.float(),
            "cublaslt": lambda: F.linear(x, w_qkv, b_qkv),
            "quack": lambda: gemm(x, w_qkv.t(), bias=b_qkv, tuned=False),
        },
    }
    if args.tuned:
        cases["ffn_up_gelu"]["quack_tuned"] = lambda: bias_gelu_epi(x, w_up.t(), bias=b_up[None], tuned=True)["D"]
        cases["ffn_down_gated_residual"]["quack_tuned"] = lambda: gated_residual_epi(
            h, w_down.t(), x, bias=b_down[None], gate=gate[None], tuned=True)["D"]
        cases["out_proj_gated_residual"]["quack_tuned"] = lambda: gated_residual_epi(
            x, w_o.t(), x, bias=b_o[None], gate=gate[None], tuned=True)["D"]
        cases["qkv"]["quack_tuned"] = lambda: gemm(x, w_qkv.t(), bias=b_qkv, tuned=True)

    def save():
        Path(args.json).write_text(json.dumps(r, indent=1) + "\n")

    # first calls: compile (and tune), and check against an fp32 reference
    for name, case in cases.items():
        ref = case["ref"]()
        row = r["cases"][name] = {"first_call_s": {}, "rel_l2_vs_fp32": {}, "ms": {}}
        for impl, fn in case.items():
            if impl in ("flop", "ref"):
                continue
            try:
                t0 = time.perf_counter()
                out = fn()
                torch.cuda.synchronize()
                row["first_call_s"][impl] = time.perf_counter() - t0
                row["rel_l2_vs_fp32"][impl] = rel(out, ref)
            except Exception as exc:  # record, keep measuring the others
                row["first_call_s"][impl] = f"{type(exc).__name__}: {exc}"[:500]
        del ref
        print(name, row, flush=True)
        save()
    # interleaved timing rounds
    for _ in range(args.rounds):
        for name, case in cases.items():
            for impl, fn in case.items():
                if impl in ("flop", "ref") or isinstance(r["cases"][name]["first_call_s"].get(impl), str):
                    continue
                r["cases"][name]["ms"].setdefault(impl, []).append(
                    time_cuda(fn, warmup=5, iters=20)["median"] * 1e3)
    for name, case in cases.items():
        row = r["cases"][name]
        row["median_ms"] = {k: statistics.median(v) for k, v in row["ms"].items()}
        row["tflops"] = {k: case["flop"] / (v / 1e3) / 1e12 for k, v in row["median_ms"].items()}
        print(name, {k: f"{v:.3f} ms ({row['tflops'][k]:.0f} TFLOP/s)" for k, v in row["median_ms"].items()},
              flush=True)
    save()


if __name__ == "__main__":
    main()

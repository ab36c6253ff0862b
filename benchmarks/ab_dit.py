"""A/B the DiT forward of two source trees in one session (e.g. before and after a refactor).

    python benchmarks/ab_dit.py --trees OLD_ROOT NEW_ROOT --rounds 2 --json OUT.json

Each round runs every tree in its own process (interleaved: A B A B), each building the 1.3B DiT with the same
random weights, compiling its blocks (the shipped configuration), and timing the forward at 480x832x81 for batch 1
and the CFG pair (batch 2, one timestep: where the LayerNorms fold into the GEMMs).  Every tree also saves its
batch-1 output, and the report gives the relative L2 between the trees' outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, torch
from fastvideo.perf.bench import build_dits, dit_inputs, environment
from fastvideo.perf.timing import time_cuda
try:
    from fastvideo.pipelines.compile import compile_dit_blocks
except ImportError:  # trees before the move
    from fastvideo.perf.compile import compile_dit_blocks
out_path = sys.argv[1]
dev, dt = torch.device("cuda"), torch.bfloat16
cfg, dit, _ = build_dits("wan2.1-t2v-1.3b", dev, dt, False)
compile_dit_blocks(dit)
import fastvideo
res = {"env": environment(), "fastvideo_file": fastvideo.__file__}
with torch.inference_mode():
    for batch in (1, 2):
        x, t, c = dit_inputs(cfg, 81, 480, 832, batch, dev, dt)
        res[f"forward_b{batch}"] = time_cuda(lambda x=x, t=t, c=c: dit(x, t, c), warmup=3, iters=10)
    x, t, c = dit_inputs(cfg, 81, 480, 832, 1, dev, dt)
    torch.save(dit(x, t, c).float().cpu(), out_path)
print("RESULT " + json.dumps(res), flush=True)
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trees", nargs=2, required=True, metavar=("A", "B"), help="source roots (folders holding fastvideo/)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--json", required=True)
    args = p.parse_args()
    import torch

    tmp = Path(tempfile.mkdtemp())
    report: dict = {"trees": args.trees, "runs": []}
    for r in range(args.rounds):
        for i, root in enumerate(args.trees):
            out = tmp / f"out{i}.pt"
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(root).resolve()), os.environ.get("PYTHONPATH", "")])}
            # cwd: a scratch folder, so that `python -c` (which puts the cwd first on sys.path) imports the tree named
            proc = subprocess.run([sys.executable, "-c", CHILD, str(out)], env=env, capture_output=True, text=True,
                                  cwd=tmp)
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if proc.returncode or line is None:
                print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
                return 1
            res = json.loads(line[len("RESULT "):])
            res.update(round=r, tree=root)
            report["runs"].append(res)
            print(f"round {r} {root} ({res['fastvideo_file']}): b1 {res['forward_b1']['median'] * 1e3:.1f} ms, "
                  f"b2 {res['forward_b2']['median'] * 1e3:.1f} ms", flush=True)
    a, b = (torch.load(tmp / f"out{i}.pt") for i in range(2))
    report["output_rel_l2"] = float((a - b).norm() / a.norm())
    for key in ("forward_b1", "forward_b2"):
        med = {t: sorted(x[key]["median"] for x in report["runs"] if x["tree"] == t) for t in args.trees}
        report[f"{key}_ratio_b_over_a"] = min(med[args.trees[1]]) / min(med[args.trees[0]])
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

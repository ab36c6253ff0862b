"""``fastvideo bench``: ceilings, FLOP floor, ours vs Diffusers (needs a CUDA GPU)."""

from __future__ import annotations


def register(sub) -> None:
    from fastvideo.perf.bench import ARCHS, PARTS

    p = sub.add_parser("bench", help="benchmark the DiT, VAE and text encoder against the GPU's limits")
    p.add_argument("--arch", choices=sorted(ARCHS), default="wan2.1-t2v-1.3b")
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=832)
    p.add_argument("--frames", type=int, default=81)
    p.add_argument("--steps", type=int, default=50, help="steps of the timed denoising loop")
    p.add_argument("--num-gpus", type=int, default=1, help="more than 1: see benchmarks/multigpu.py")
    p.add_argument("--compare", choices=("diffusers",), default=None)
    p.add_argument("--compile", action="store_true", help="also time the torch.compile'd DiT")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {','.join(PARTS)}")
    p.add_argument("--json", dest="json_out", help="write the full results here")
    p.set_defaults(func=run)


def run(args) -> int:
    from fastvideo.perf.bench import format_table, run_bench, write_json

    if args.num_gpus != 1:
        print("error: fastvideo bench times one GPU; for several use: torchrun --nproc-per-node N "
              "benchmarks/multigpu.py (see docs/multigpu.md)")
        return 2
    parts = tuple(p for p in args.parts.split(",") if p)
    results = run_bench(args.arch, args.height, args.width, args.frames, args.steps, args.compare, args.compile,
                        parts)
    print(format_table(results))
    if args.json_out:
        write_json(results, args.json_out)
        print(f"wrote {args.json_out}")
    return 0

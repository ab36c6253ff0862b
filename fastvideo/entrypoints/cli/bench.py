"""``fastvideo bench``: ceilings, FLOP floor, ours vs Diffusers (needs a CUDA GPU); ``--e2e``: prompt to MP4."""

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
    e2e = p.add_argument_group("end to end (--e2e): prompt to MP4, ours vs Diffusers at its best (CPU works too)")
    e2e.add_argument("--e2e", action="store_true", help="time whole generations instead of the parts")
    e2e.add_argument("--model", default=None, help="a model folder (default: a random-weight folder of --arch)")
    e2e.add_argument("--model-dir", default=None, help="where the random-weight folder is written / reused")
    e2e.add_argument("--tiny", action="store_true", help="the tiny test sizes instead of the real arch (CPU tests)")
    e2e.add_argument("--guidance", type=float, default=5.0)
    e2e.add_argument("--prompt", default="A red fox runs through fresh snow at sunrise, cinematic.")
    e2e.add_argument("--repeats", type=int, default=1, help="timed runs per row (the median is kept)")
    e2e.add_argument("--step-cache", default="", metavar="X,Y",
                     help="also time our step cache at these thresholds (speed-up, PSNR/SSIM vs uncached, judge)")
    e2e.add_argument("--preset", dest="presets", action="append", default=[], metavar="NAME",
                     help="also time a sampling preset, e.g. fastwan-dmd-3step (repeatable)")
    e2e.add_argument("--out-dir", default=None, help="keep the MP4s here (default: a temporary folder)")
    p.set_defaults(func=run)


def run(args) -> int:
    from fastvideo.perf.bench import format_table, run_bench, write_json

    if args.num_gpus != 1:
        print("error: fastvideo bench times one GPU; for several use: torchrun --nproc-per-node N "
              "benchmarks/multigpu.py (see docs/multigpu.md)")
        return 2
    if args.e2e:
        return run_e2e_cli(args)
    parts = tuple(p for p in args.parts.split(",") if p)
    results = run_bench(args.arch, args.height, args.width, args.frames, args.steps, args.compare, args.compile,
                        parts)
    print(format_table(results))
    if args.json_out:
        write_json(results, args.json_out)
        print(f"wrote {args.json_out}")
    return 0


def run_e2e_cli(args) -> int:
    from fastvideo.entrypoints.e2e_bench import format_e2e, run_e2e
    from fastvideo.perf.bench import write_json

    try:
        thresholds = tuple(float(v) for v in args.step_cache.split(",") if v.strip())
    except ValueError:
        print(f"error: --step-cache takes numbers separated by commas, got {args.step_cache!r}")
        return 2
    try:
        results = run_e2e(args.arch, args.model, args.model_dir, args.height, args.width, args.frames, args.steps,
                          args.guidance, args.prompt, (args.compare,) if args.compare else (), args.compile,
                          args.repeats, thresholds, tuple(args.presets), args.tiny, args.out_dir)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    print(format_e2e(results))
    if args.json_out:
        write_json(results, args.json_out)
        print(f"wrote {args.json_out}")
    return 0

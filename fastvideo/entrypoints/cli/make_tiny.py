"""``fastvideo make-tiny``: write a tiny random-weight model folder (tests, smoke runs): Wan2.1 or LTX-2."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("make-tiny", help="write a tiny random-weight model (a few MB) in a real layout")
    p.add_argument("output", metavar="OUTPUT")
    p.add_argument("--family", choices=("wan", "ltx2"), default="wan",
                   help="wan: Wan2.1 (t2v or i2v); ltx2: LTX-2 with audio (one folder does t2v and i2v)")
    p.add_argument("--task", choices=("t2v", "i2v"), default="t2v", help="wan only")
    p.add_argument("--layout", choices=("diffusers", "official"), default="diffusers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty OUTPUT")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.family == "ltx2":
        from fastvideo.testing.tiny_ltx2 import make_tiny_ltx2

        out = make_tiny_ltx2(args.output, layout=args.layout, seed=args.seed, overwrite=args.overwrite)
        what = "LTX-2 (t2v + i2v, with audio)"
    else:
        from fastvideo.testing.tiny import make_tiny_model

        out = make_tiny_model(args.output, task=args.task, layout=args.layout, seed=args.seed,
                              overwrite=args.overwrite)
        what = args.task
    files = sorted(p for p in out.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in files)
    print(f"wrote {out}: tiny {what} model, {args.layout} layout, seed {args.seed} "
          f"({len(files)} files, {size / 1e6:.1f} MB)")
    return 0

"""``fastvideo make-tiny``: write a tiny random-weight Wan model folder (tests, smoke runs)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("make-tiny", help="write a tiny random-weight Wan2.1 model (a few MB) in a real layout")
    p.add_argument("output", metavar="OUTPUT")
    p.add_argument("--task", choices=("t2v", "i2v"), default="t2v")
    p.add_argument("--layout", choices=("diffusers", "official"), default="diffusers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty OUTPUT")
    p.set_defaults(func=run)


def run(args) -> int:
    from fastvideo.testing.tiny import make_tiny_model

    out = make_tiny_model(args.output, task=args.task, layout=args.layout, seed=args.seed, overwrite=args.overwrite)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in files)
    print(f"wrote {out}: tiny {args.task} model, {args.layout} layout, seed {args.seed} "
          f"({len(files)} files, {size / 1e6:.1f} MB)")
    return 0

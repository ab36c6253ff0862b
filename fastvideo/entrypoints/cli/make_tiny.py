"""``fastvideo make-tiny``: write a tiny random-weight model folder (tests, smoke runs): Wan2.1, Wan2.2 or LTX-2."""

from __future__ import annotations

FAMILY_TASKS = {"wan": ("t2v", "i2v"), "wan2.2": ("ti2v", "t2v-moe", "i2v-moe"), "ltx2": ()}


def register(sub) -> None:
    p = sub.add_parser("make-tiny", help="write a tiny random-weight model (a few MB) in a real layout")
    p.add_argument("output", metavar="OUTPUT")
    p.add_argument("--family", choices=tuple(FAMILY_TASKS), default="wan",
                   help="wan: Wan2.1 (t2v or i2v); wan2.2: TI2V-5B's shape (ti2v) or the two-expert A14B's "
                        "(t2v-moe, i2v-moe); ltx2: LTX-2 with audio (one folder does t2v and i2v)")
    p.add_argument("--task", choices=sorted({t for tasks in FAMILY_TASKS.values() for t in tasks}), default=None,
                   help="wan: t2v (default) or i2v; wan2.2: ti2v (default), t2v-moe or i2v-moe")
    p.add_argument("--layout", choices=("diffusers", "official"), default="diffusers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty OUTPUT")
    p.set_defaults(func=run)


def run(args) -> int:
    tasks = FAMILY_TASKS[args.family]
    if args.task is not None and args.task not in tasks:
        print(f"error: --task {args.task} is not a {args.family} task; "
              + (f"choose from {', '.join(tasks)}" if tasks else "this family takes no --task"))
        return 2
    task = args.task or (tasks[0] if tasks else None)
    if args.family == "wan2.2":
        from fastvideo.testing.tiny_wan22 import make_tiny_wan22

        out = make_tiny_wan22(args.output, task=task, layout=args.layout, seed=args.seed, overwrite=args.overwrite)
        what = f"Wan2.2 {task}"
    elif args.family == "ltx2":
        from fastvideo.testing.tiny_ltx2 import make_tiny_ltx2

        out = make_tiny_ltx2(args.output, layout=args.layout, seed=args.seed, overwrite=args.overwrite)
        what = "LTX-2 (t2v + i2v, with audio)"
    else:
        from fastvideo.testing.tiny import make_tiny_model

        out = make_tiny_model(args.output, task=task, layout=args.layout, seed=args.seed,
                              overwrite=args.overwrite)
        what = task
    files = sorted(p for p in out.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in files)
    print(f"wrote {out}: tiny {what} model, {args.layout} layout, seed {args.seed} "
          f"({len(files)} files, {size / 1e6:.1f} MB)")
    return 0

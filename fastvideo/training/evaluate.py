"""Held-out evaluation of a shapes model: generate with ``VideoGenerator``, judge, tabulate.

    python -m fastvideo.training.evaluate [MODEL] [--prompts 50] [--json out.json] [--markdown out.md]

MODEL defaults to the built-in model.  Prompts come from
:func:`fastvideo.training.data.heldout_prompts` (phrasings and seeds never used in
training); each clip is judged by :func:`fastvideo.training.judge.judge_clip`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict


def evaluate(model: str | None = None, n: int = 50, seed: int = 0, log=print, **sampling) -> dict:
    from fastvideo import SamplingParam, VideoGenerator
    from fastvideo.builtin import resolve_model_arg
    from fastvideo.training.data import heldout_prompts
    from fastvideo.training.judge import judge_clip

    path = resolve_model_arg(model)
    sp = SamplingParam.from_pretrained(path)
    sp.update(save_video=False, return_frames=True, **sampling)
    gen = VideoGenerator.from_pretrained(path)
    rows, times = [], []
    try:
        for i, (prompt, label, s) in enumerate(heldout_prompts(n, seed)):
            t0 = time.time()
            result = gen.generate_video(prompt, sampling_param=sp, seed=s)
            times.append(time.time() - t0)
            j = judge_clip(result["frames"])
            row = {"prompt": prompt, "seed": s, "colour": label.colour, "direction": label.direction,
                   "judged_colour": j.colour, "judged_direction": j.direction,
                   "colour_ok": j.colour == label.colour, "direction_ok": j.direction == label.direction}
            row["both_ok"] = row["colour_ok"] and row["direction_ok"]
            row["computed_steps"] = (result.get("step_cache") or {}).get("computed_steps")
            rows.append(row)
            log(f"[{i + 1}/{n}] {'ok ' if row['both_ok'] else 'BAD'} {prompt!r} -> {j.colour} {j.direction} "
                f"({times[-1]:.1f}s)")
    finally:
        gen.shutdown()
    return summarise(rows, times, path, sp)


def summarise(rows: list[dict], times: list[float], path, sp) -> dict:
    def rate(sel):
        sel = list(sel)
        return {"n": len(sel), "colour": sum(r["colour_ok"] for r in sel) / max(len(sel), 1),
                "direction": sum(r["direction_ok"] for r in sel) / max(len(sel), 1),
                "both": sum(r["both_ok"] for r in sel) / max(len(sel), 1)}

    by_colour, by_direction = defaultdict(list), defaultdict(list)
    for r in rows:
        by_colour[r["colour"]].append(r)
        by_direction[r["direction"]].append(r)
    return {"model": str(path), "steps": sp.num_inference_steps, "guidance": sp.guidance_scale,
            "step_cache_threshold": getattr(sp, "step_cache_threshold", 0.0),
            "size": f"{sp.width}x{sp.height}x{sp.num_frames}", "overall": rate(rows),
            "by_colour": {k: rate(v) for k, v in by_colour.items()},
            "by_direction": {k: rate(v) for k, v in by_direction.items()},
            "mean_seconds": sum(times) / max(len(times), 1), "rows": rows}


def markdown(summary: dict) -> str:
    pct = lambda v: f"{100 * v:.0f}%"  # noqa: E731
    o = summary["overall"]
    lines = [f"Overall ({o['n']} prompts): colour {pct(o['colour'])}, direction {pct(o['direction'])}, "
             f"both {pct(o['both'])}.", "", "| group | n | colour | direction | both |",
             "| --- | --- | --- | --- | --- |"]
    for key in ("by_colour", "by_direction"):
        for name, r in summary[key].items():
            lines.append(f"| {name} | {r['n']} | {pct(r['colour'])} | {pct(r['direction'])} | {pct(r['both'])} |")
    lines += ["", "| prompt | seed | judged | ok |", "| --- | --- | --- | --- |"]
    for r in summary["rows"]:
        lines.append(f"| {r['prompt']} | {r['seed']} | {r['judged_colour']} {r['judged_direction']} | "
                     f"{'yes' if r['both_ok'] else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastvideo.training.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("model", nargs="?", default=None, help="model folder (default: the built-in model)")
    p.add_argument("--prompts", type=int, default=50)
    p.add_argument("--seed", type=int, default=0, help="held-out prompt set")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--guidance-scale", type=float, default=None)
    p.add_argument("--step-cache", type=float, default=None, help="step_cache_threshold (0 = off)")
    p.add_argument("--json", default=None, help="write the full results here")
    p.add_argument("--markdown", default=None, help="write the tables here")
    args = p.parse_args(argv)
    sampling = {}
    if args.steps:
        sampling["num_inference_steps"] = args.steps
    if args.guidance_scale is not None:
        sampling["guidance_scale"] = args.guidance_scale
    if args.step_cache is not None:
        sampling["step_cache_threshold"] = args.step_cache
    summary = evaluate(args.model, args.prompts, args.seed, **sampling)
    o = summary["overall"]
    print(f"colour {o['colour']:.2%} direction {o['direction']:.2%} both {o['both']:.2%} "
          f"({o['n']} prompts, {summary['mean_seconds']:.1f}s each)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(summary, fh, indent=2)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(markdown(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

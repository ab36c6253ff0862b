"""``fastvideo parity``: compare one of our components with the reference (Diffusers) on the same weights."""

from __future__ import annotations

import json
import sys

COMPONENTS = ("transformer", "transformer_2", "vae", "text_encoder", "image_encoder", "scheduler")  # (parity.runner's)


def register(sub) -> None:
    p = sub.add_parser("parity", help="compare a component with the reference implementation (exit 0 pass, 1 fail)")
    p.add_argument("model_path", metavar="MODEL_PATH", help="Diffusers-layout model folder (or downloaded repo id)")
    p.add_argument("--component", default="transformer",
                   help=f"a component of the model folder: {', '.join(COMPONENTS)}; LTX-2: transformer, vae, "
                        "audio_vae, vocoder, connectors, text_encoder, scheduler (the family's parity cases)")
    p.add_argument("--reference", choices=("diffusers",), default="diffusers")
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rules", help="JSON file or Python dict literal of param_names_mapping rules to load ours with")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run)


def run(args) -> int:
    from fastvideo.parity.runner import run_parity

    rules = None
    if args.rules:
        from fastvideo.models.loader.inspect import load_rules_file

        rules = load_rules_file(args.rules)
    result = run_parity(args.model_path, args.component, reference=args.reference, dtype=args.dtype,
                        seed=args.seed, rules=rules)
    if args.format == "json":
        json.dump(result, sys.stdout, indent=1)
        print()
    else:
        print_report(result)
    return 0 if result["passed"] else 1


def _num(x) -> str:
    return "-" if x is None else f"{x:.3g}"


def print_report(result: dict) -> None:
    v = result["versions"]
    print(f"parity {result['component']} vs {result['reference']} ({result['dtype']}, seed {result['seed']}; "
          f"torch {v.get('torch')}, diffusers {v.get('diffusers')}, transformers {v.get('transformers')})")
    print(f"{'output':<16}{'max_abs':>12}{'mean_abs':>12}{'rel_l2':>12}  result")
    for o in result["outputs"]:
        tol = (f"atol {o['atol']:g} rtol {o['rtol']:g}" if o["atol"] is not None else f"rel_l2 <= {o['rel_l2_tol']:g}")
        print(f"{o['name']:<16}{_num(o['max_abs']):>12}{_num(o['mean_abs']):>12}{_num(o['rel_l2']):>12}  "
              f"{'PASS' if o['passed'] else 'FAIL'} ({tol})")
    if result["modules"]:
        print("\nactivation summary (our execution order):")
        width = max(len(m["ours"]) for m in result["modules"])
        for m in result["modules"]:
            print(f"  {'ok ' if m['passed'] else 'BAD'} {m['ours']:<{width}}  max_abs {_num(m['max_abs']):>9}  "
                  f"rel_l2 {_num(m['rel_l2']):>9}  <- {m['reference']}")
    fd = result["first_divergent"]
    if fd:
        print(f"\nfirst divergent module: {fd['ours']} (reference {fd['reference']})")
    print("PASSED" if result["passed"] else "FAILED")

"""``fastvideo inspect-mapping``: how a checkpoint's keys map onto our model."""

from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("inspect-mapping", help="show how checkpoint keys map onto the model (headers only)")
    p.add_argument("model_path", metavar="MODEL_PATH")
    p.add_argument("--component", default="transformer")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--rules", help="JSON file or Python dict literal with param_names_mapping rules to use instead")
    p.add_argument("--status", action="append", help="only rows with this status (repeatable)")
    p.set_defaults(func=run)


def run(args) -> int:
    from fastvideo.models.loader.inspect import inspect_mapping, load_rules_file

    rules = load_rules_file(args.rules) if args.rules else None
    report = inspect_mapping(args.model_path, args.component, rules)
    rows = [r for r in report.rows if not args.status or r.status in args.status]
    if args.format == "json":
        from fastvideo.mapping.rules import report_suggestions

        data = report.to_json()
        data["rows"] = [r.to_json() for r in rows]
        data["ok"] = report.ok
        # the near misses the studio's inspector shows (ranked by name and shape; "possible": false = shapes
        # cannot fit)
        data["near_misses"] = report_suggestions(report)
        json.dump(data, sys.stdout, indent=1)
        print()
    else:
        print_table(rows)
        counts = report.counts
        print("  ".join(f"{k}: {v}" for k, v in counts.items()))
        if report.problems("duplicate_target"):
            print("duplicate targets: two checkpoint keys map onto one model key; loading refuses this mapping")
    return 0 if report.ok else 1


def print_table(rows) -> None:
    headers = ("status", "source", "rule", "target", "source_shape", "target_shape", "dtype")
    data = [
        (r.status, r.source or "-", "-" if r.rule is None else f"#{r.rule}", r.target or "-",
         _shape(r.source_shape), _shape(r.target_shape), r.dtype or "-")
        for r in rows
    ]
    widths = [min(60, max([len(h)] + [len(d[i]) for d in data])) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for d in data:
        print("  ".join(c.ljust(w) for c, w in zip(d, widths)))


def _shape(s) -> str:
    return "-" if s is None else "x".join(map(str, s)) or "scalar"

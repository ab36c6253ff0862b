"""Install a trained shapes model as the built-in default and write its docs numbers.

    python -m fastvideo.training.ship RUN_DIR/fastvideo-shapes-t2v [--prompts 50]

1. copies the model folder to ``resources/models/fastvideo-shapes-t2v`` (checks <= 25 MB);
2. runs the held-out evaluation (:mod:`fastvideo.training.evaluate`) with the model's
   default sampling settings and writes ``docs/default-model-eval.md`` + ``.json``;
3. renders ``docs/images/default-model-grid.png`` (:mod:`fastvideo.training.grid`).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from fastvideo.builtin import SHIPPED

MAX_BYTES = 25 * 1000 * 1000
ROOT = SHIPPED.parent.parent.parent


def install(model_dir: str | Path) -> Path:
    from fastvideo.training.export import folder_size

    src = Path(model_dir)
    if not (src / "model_index.json").is_file():
        raise FileNotFoundError(f"{src}: no model_index.json")
    size = folder_size(src)
    if size > MAX_BYTES:
        raise ValueError(f"{src}: {size / 1e6:.1f} MB is over the 25 MB limit")
    if SHIPPED.exists():
        shutil.rmtree(SHIPPED)
    SHIPPED.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, SHIPPED)
    if not (SHIPPED / "vocabulary.json").is_file():  # exported before vocabulary.json existed
        from fastvideo.training.export import write_vocabulary

        write_vocabulary(SHIPPED)
    print(f"installed {src} -> {SHIPPED} ({size / 1e6:.2f} MB)")
    return SHIPPED


def main(argv: list[str] | None = None) -> int:
    from fastvideo.training import evaluate, grid

    p = argparse.ArgumentParser(prog="python -m fastvideo.training.ship")
    p.add_argument("model", nargs="?", default=None, help="trained model folder (default: the installed one)")
    p.add_argument("--prompts", type=int, default=50)
    p.add_argument("--docs", default=str(ROOT / "docs"))
    p.add_argument("--guidance", type=float, default=None,
                   help="evaluate at this guidance scale instead of the model's default (ShapesT2VSamplingParam)")
    args = p.parse_args(argv)
    if args.model:
        install(args.model)
    docs = Path(args.docs)
    (docs / "images").mkdir(parents=True, exist_ok=True)
    sampling = {} if args.guidance is None else {"guidance_scale": args.guidance}
    summary = evaluate.evaluate(str(SHIPPED), args.prompts, **sampling)
    (docs / "default-model-eval.json").write_text(json.dumps(summary, indent=2) + "\n")
    (docs / "default-model-eval.md").write_text("# Built-in model: held-out evaluation\n\n"
                                                f"Model `{SHIPPED.relative_to(ROOT)}`, {summary['size']}, "
                                                f"{summary['steps']} steps, guidance {summary['guidance']}, "
                                                f"CPU mean {summary['mean_seconds']:.1f} s per clip.\n\n"
                                                + evaluate.markdown(summary))
    grid.main([str(SHIPPED), "--output", str(docs / "images" / "default-model-grid.png")])
    o = summary["overall"]
    print(f"colour {o['colour']:.0%} direction {o['direction']:.0%} both {o['both']:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

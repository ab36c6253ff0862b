"""Screenshots of docs/porting.md's "Porting LTX-2 with the studio": the real studio window (1280x820, under a
private Xvfb) on a tiny official LTX-2 checkpoint made for the occasion.

    python scripts/ltx2_screenshots.py [--out docs/screenshots] [--display :N]

Writes ltx2-1-official.png (Models panel), ltx2-2-converted.png, ltx2-3-rules-before.png / ltx2-4-rules-after.png
(the inspector on the converted DiT with no rules, then with its param_names_mapping), ltx2-5-parity-fail.png
(attn2 to_k/to_v swapped) and ltx2-6-parity-pass.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from shotkit import SIZE, Shots, run_inside_xvfb  # noqa: E402

SWAP = [(r"^transformer_blocks\.(\d+)\.attn2\.to_k\.", r"transformer_blocks.\1.attn2.to_v."),
        (r"^transformer_blocks\.(\d+)\.attn2\.to_v\.", r"transformer_blocks.\1.attn2.to_k.")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--display")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not args.inner:
        return run_inside_xvfb(__file__, ["--out", args.out], args.display)
    return tour(Path(args.out))


def tour(out: Path) -> int:
    from PySide6.QtWidgets import QApplication

    from app.main import create_window
    from fastvideo.testing.tiny_ltx2 import make_tiny_ltx2

    data = Path(tempfile.mkdtemp(prefix="ltx2-shots-"))
    models_root = data / "models"
    official = models_root / "official_weights" / "LTX-2-tiny"
    make_tiny_ltx2(official, layout="official", seed=0)
    (data / "settings.json").write_text(json.dumps({"output_dir": str(data / "videos"),
                                                    "models_dir": str(models_root)}))
    win = create_window(str(data), start_worker=True)
    app = QApplication.instance()
    win.resize(*SIZE)
    win.show()
    shots = Shots(app, win, out)
    pump, grab = shots.pump, shots.grab

    models, m, p = win.models, win.mapping, win.parity
    win.show_panel("models")
    models.set_models_root(models.models_root, scan=True)
    pump(60, lambda: any(e.path.resolve() == official.resolve() for e in models.entries()), "the official folder")
    models.select_path(official)
    grab("ltx2-1-official")

    win.show_panel("models")
    models.convert_source_edit.setText(str(official))
    models.tabs.setCurrentIndex(1)
    proc = models.start_conversion()
    pump(300, lambda: proc.state != "running", "the conversion")
    converted = models.conversion_output()
    pump(60, lambda: any(e.path.resolve() == converted.resolve() for e in models.entries()), "the converted folder")
    models.select_path(converted)
    grab("ltx2-2-converted")

    win._inspect_model(str(converted))  # component: transformer, the first
    pump(180, lambda: (m.inputs is not None and not m.loading) or bool(m.load_error), "the inspector")
    if m.load_error:
        raise SystemExit(f"inspector: {m.load_error}")
    m.set_inputs(m.inputs, rules=[])
    m.select_key("transformer_blocks.0.attn1.to_out.0.weight")
    grab("ltx2-3-rules-before")
    m.set_inputs(m.inputs)
    m.select_key("transformer_blocks.0.attn1.to_out.0.weight")
    grab("ltx2-4-rules-after")

    win.banner.hide()
    for pattern, repl in reversed(SWAP):
        m.rules_model.add_rule(pattern, repl, row=0)
    m.reevaluate()
    m.parity_button.click()
    p.run()
    pump(300, lambda: not p.running, "the failing parity run")
    grab("ltx2-5-parity-fail")

    win.show_panel("mapping")
    m.reset_rules(confirm=False)
    m.parity_button.click()
    p.run()
    pump(300, lambda: not p.running, "the passing parity run")
    grab("ltx2-6-parity-pass")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

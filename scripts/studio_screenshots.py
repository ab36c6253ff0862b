"""Retake the studio's screenshots in docs/screenshots/ from the real window on a real X server.

    python scripts/studio_screenshots.py [--out docs/screenshots] [--only generate,parity ...]

Starts a private Xvfb (``-displayfd``; or uses ``--display :N``), runs the studio on Qt's xcb platform with
the real inference process and the built-in model in a fresh data folder, and walks it like a user: a
generation (one grab mid-run with the live preview, one with the result playing), inline errors, a paused
queue, History, Settings, Models, the weight-mapping inspector on the built-in DiT, a Parity run against
Diffusers, and Help → About.  Each image is written to a temporary file and renamed.  Nothing is staged:
what is on screen is what the studio shows for that state.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from shotkit import SIZE, Shots, run_inside_xvfb  # noqa: E402

SHOTS = ("generate", "generate-running", "generate-errors", "queue", "history", "settings", "models", "mapping",
         "parity", "about")
#: the porting loop of docs/porting.md, on a tiny official checkpoint made for the occasion
PORTING = ("porting-1-models-official", "porting-2-preview", "porting-3-converted", "porting-4-broken-rule",
           "porting-5-parity-fail", "porting-6-parity-pass", "porting-7-parity-all")
SWAP = [(r"^blocks\.(\d+)\.attn2\.to_k\.", r"blocks.\1.cross_attn.to_v."),
        (r"^blocks\.(\d+)\.attn2\.to_v\.", r"blocks.\1.cross_attn.to_k.")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--only", default="", help="comma-separated subset of: " + ", ".join(SHOTS + PORTING))
    ap.add_argument("--display", help="an X display to use instead of a private Xvfb")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not args.inner:
        return run_inside_xvfb(__file__, ["--out", args.out, "--only", args.only], args.display)
    return tour(Path(args.out), [s for s in args.only.split(",") if s] or list(SHOTS + PORTING))


def tour(out: Path, wanted: list[str]) -> int:
    from PySide6.QtWidgets import QApplication

    from app.main import create_window
    from fastvideo.builtin import shipped_model

    model = shipped_model()
    if model is None:
        raise SystemExit("no shipped model in resources/models")
    data = Path(tempfile.mkdtemp(prefix="studio-shots-"))
    models_root = data / "models"
    official = models_root / "official_weights" / "Wan2.1-T2V-tiny"
    if any(n in wanted for n in PORTING):
        from fastvideo.testing.tiny import make_tiny_model

        make_tiny_model(official, layout="official", seed=0)
    models_root.mkdir(parents=True, exist_ok=True)  # (the Models panel lists the built-in model as well)
    (data / "settings.json").write_text(json.dumps({"output_dir": str(data / "videos"),
                                                    "models_dir": str(models_root)}))
    win = create_window(str(data), start_worker=True, model=str(model))
    app = QApplication.instance()
    win.resize(*SIZE)
    win.show()
    studio, g = win.studio, win.generate
    shots = Shots(app, win, out, wanted)
    pump, grab, written = shots.pump, shots.grab, shots.written

    pump(120, lambda: g.model_path() in g.model_info and g.generate_button.isEnabled(), "the model's defaults")

    # Generate: a run with the live preview (more steps, so there is a moment to catch), then its result.
    g.prompt.setPlainText("a red circle moves to the right on a blue background")
    g.seed.setValue(7)
    g.steps.setValue(max(g.steps.value(), 40))
    g.generate_button.click()
    job = g.follow_id
    pump(120, lambda: (studio.runner.last_progress(job) or (0, 1))[0] >= 8, "the running job's preview")
    grab("generate-running")
    pump(300, lambda: studio.db.get(job).is_finished, "the job to finish")
    pump(20, lambda: bool(getattr(g.player, "frames", None)))
    g.steps.setValue(int(g.defaults.get("num_inference_steps", 20)))
    for prompt, seed in (("a green square moves up", 11), ("a yellow triangle moves to the left", 12)):
        g.prompt.setPlainText(prompt)
        g.seed.setValue(seed)
        g.generate_button.click()
        done = g.follow_id
        pump(300, lambda d=done: studio.db.get(d).is_finished, "a job to finish")
    g.show_job(job)
    g.prompt.setPlainText("a red circle moves to the right on a blue background")
    g.seed.setValue(7)
    pump(20, lambda: bool(getattr(g.player, "frames", None)))
    grab("generate")

    # Inline errors: what the form refuses before anything is queued.
    g.prompt.setPlainText("")
    g.frames.setValue(g.frames.value() + 1)
    g.set_size(500, 480)
    g.generate()
    grab("generate-errors")
    g.clear_errors()

    # Queue: paused, with jobs waiting.
    studio.runner.set_paused(True)
    g.set_size(int(g.defaults["width"]), int(g.defaults["height"]))
    g.frames.setValue(int(g.defaults["num_frames"]))
    for prompt in ("a blue circle moves down", "a white square moves to the right", "a red triangle moves up"):
        g.prompt.setPlainText(prompt)
        g.generate()
    win.show_panel("queue")
    grab("queue")
    for j in studio.db.queue():
        if j.state == "queued":
            studio.runner.remove(j.id)  # (they were only there to be seen waiting)
    studio.runner.set_paused(False)

    win.show_panel("history")
    win.history.select_job(job)
    pump(20, lambda: bool(getattr(win.history.player, "frames", None)))
    grab("history")

    win.show_panel("settings")
    grab("settings")

    win.show_panel("models")
    win.models.ensure_scanned()
    pump(30, lambda: win.models.model.rowCount() > 0)
    win.models.table.selectRow(0)  # its details and actions
    pump(2)
    grab("models")

    m = win.mapping
    m.set_model(str(model), "transformer")
    win.show_panel("mapping")
    m.load()
    pump(120, lambda: m.report is not None, "the mapping report")
    merged = next((r for r in range(m.proxy.rowCount())
                   if "merged" in str(m.proxy.index(r, 3).data())), 0)
    m.table.selectRow(merged)
    grab("mapping")

    p = win.parity
    p.set_model(str(model), "transformer")
    win.show_panel("parity")
    pump(60, lambda: p.reference_ready()[0] and p.run_button.isEnabled(), "the parity reference")
    if "parity" in wanted:
        p.run()
        pump(300, lambda: not p.running, "the parity run")
    grab("parity")

    if any(n in wanted for n in PORTING):
        porting(win, official, pump, grab)

    win.show_panel("generate")
    dlg = win.show_about()
    pump(1)
    grab("about", dlg)
    dlg.close()

    win.close()
    pump(2)
    missing = [n for n in wanted if n not in written]
    if missing:
        print(f"not written: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def porting(win, official: Path, pump, grab) -> None:
    """docs/porting.md's loop: an official folder, the conversion preview, convert, break a rule, parity FAIL,
    reset, PASS, all components."""
    models, m, p = win.models, win.mapping, win.parity
    win.show_panel("models")
    models.set_models_root(models.models_root, scan=True)
    pump(60, lambda: any(e.path.resolve() == official.resolve() for e in models.entries()), "the official folder")
    models.select_path(official)
    grab("porting-1-models-official")

    win._inspect_model(str(official))  # Models → Inspect mapping
    pump(180, lambda: (m.inputs is not None and m.model_path == str(official)) or bool(m.load_error), "the preview")
    m.select_key("blocks.0.self_attn.q.weight")
    grab("porting-2-preview")

    win.show_panel("models")
    models.convert_source_edit.setText(str(official))
    models.tabs.setCurrentIndex(1)
    proc = models.start_conversion()
    pump(300, lambda: proc.state != "running", "the conversion")
    converted = models.conversion_output()
    pump(60, lambda: any(e.path.resolve() == converted.resolve() for e in models.entries()), "the converted folder")
    models.select_path(converted)
    grab("porting-3-converted")

    m.inputs = None
    win.banner.hide()
    win._inspect_model(str(converted))  # Models → Inspect mapping (component: transformer, the first)
    pump(180, lambda: (m.inputs is not None and not m.loading) or bool(m.load_error), "the inspector")
    pump(1)
    for pattern, repl in reversed(SWAP):
        m.rules_model.add_rule(pattern, repl, row=0)
    m.reevaluate()
    m.select_key("blocks.0.attn2.to_k.weight")
    m.rules_view.selectRow(0)
    grab("porting-4-broken-rule")

    m.parity_button.click()  # → Parity, with these rules
    p.run()
    pump(300, lambda: not p.running, "the failing parity run")
    grab("porting-5-parity-fail")

    win.show_panel("mapping")
    m.reset_rules(confirm=False)
    m.parity_button.click()
    p.run()
    pump(300, lambda: not p.running, "the passing parity run")
    grab("porting-6-parity-pass")

    done = []
    p.all_finished.connect(done.append)
    p.run_all()
    pump(600, lambda: bool(done), "parity of all components")
    grab("porting-7-parity-all")


if __name__ == "__main__":
    sys.exit(main())

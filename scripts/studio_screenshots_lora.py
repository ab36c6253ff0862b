"""Take the LoRA screenshots of docs/studio.md from the real window on a real X server.

    python scripts/studio_screenshots_lora.py [--out docs/screenshots]

Like ``scripts/studio_screenshots.py`` (its private Xvfb, xcb, the real inference process, the built-in
model, a fresh data folder): three LoRAs for the built-in DiT are written to a LoRA folder (small random
deltas; one official-format LoRA with a typo'd key and a wrong-rank pair), then

* ``lora-picker``: the Generate panel after a generation with two LoRAs picked from the folder, each with its
  strength (the result playing);
* ``mapping-lora``: the weight-mapping inspector's LoRA view of the broken LoRA against the built-in DiT,
  an unmatched key selected (its rule chain and near misses).

Each image is written to a temporary file and renamed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from shotkit import SIZE, Shots, run_inside_xvfb  # noqa: E402

SHOTS = ("lora-picker", "mapping-lora")


def make_loras(folder: Path, model: Path) -> dict[str, Path]:
    """Three LoRAs for ``model``'s DiT: Diffusers-format style, official-format speed (lora_down/up + alpha),
    and an official-format one with a typo'd module and a wrong-rank pair."""
    import torch

    from fastvideo.models.loader.checkpoint import save_safetensors

    cfg = json.loads((model / "transformer" / "config.json").read_text())
    dim, ffn, layers = cfg["num_attention_heads"] * cfg["attention_head_dim"], cfg["ffn_dim"], cfg["num_layers"]
    g = torch.Generator().manual_seed(0)

    def pair(out: int, inp: int, rank: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(rank, inp, generator=g) * 0.02, torch.randn(out, rank, generator=g) * 0.02

    style = {}
    for n in range(layers):
        for mod in ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q"):
            a, b = pair(dim, dim)
            style[f"transformer.blocks.{n}.{mod}.lora_A.weight"] = a
            style[f"transformer.blocks.{n}.{mod}.lora_B.weight"] = b
    speed, broken = {}, {}
    for n in range(layers):
        for mod, out, inp in (("self_attn.q", dim, dim), ("self_attn.k", dim, dim), ("self_attn.v", dim, dim),
                              ("self_attn.o", dim, dim), ("ffn.0", ffn, dim), ("ffn.2", dim, ffn)):
            a, b = pair(out, inp)
            for target in (speed, broken):
                target[f"diffusion_model.blocks.{n}.{mod}.lora_down.weight"] = a
                target[f"diffusion_model.blocks.{n}.{mod}.lora_up.weight"] = b
                target[f"diffusion_model.blocks.{n}.{mod}.alpha"] = torch.tensor(4.0)
    a, b = pair(dim, dim)
    broken["diffusion_model.blocks.2.self_attn.qq.lora_down.weight"] = a  # a typo: no such module
    broken["diffusion_model.blocks.2.self_attn.qq.lora_up.weight"] = b
    broken["diffusion_model.blocks.3.cross_attn.k.lora_down.weight"] = torch.zeros(4, dim)
    broken["diffusion_model.blocks.3.cross_attn.k.lora_up.weight"] = torch.zeros(dim, 8)  # rank 8 vs 4
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"style": folder / "shapes-style.safetensors", "speed": folder / "shapes-speed.safetensors",
             "broken": folder / "experiments" / "shapes-broken.safetensors"}
    paths["broken"].parent.mkdir(exist_ok=True)
    for key, sd in (("style", style), ("speed", speed), ("broken", broken)):
        save_safetensors(paths[key], sd)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--display", help="an X display to use instead of a private Xvfb")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not args.inner:
        return run_inside_xvfb(__file__, ["--out", args.out], args.display)
    return tour(Path(args.out))


def tour(out: Path) -> int:
    from PySide6.QtWidgets import QApplication

    from app.main import create_window
    from fastvideo.builtin import shipped_model

    model = shipped_model()
    if model is None:
        raise SystemExit("no shipped model in resources/models")
    data = Path(tempfile.mkdtemp(prefix="studio-lora-shots-"))
    loras = make_loras(data / "loras", model)
    (data / "settings.json").write_text(json.dumps({"output_dir": str(data / "videos"),
                                                    "lora_dir": str(data / "loras")}))
    win = create_window(str(data), start_worker=True, model=str(model))
    app = QApplication.instance()
    win.resize(*SIZE)
    win.show()
    studio, g = win.studio, win.generate
    shots = Shots(app, win, out)
    pump, grab, written = shots.pump, shots.grab, shots.written

    pump(120, lambda: g.model_path() in g.model_info and g.generate_button.isEnabled(), "the model's defaults")
    pick = g.lora_picker
    files = pick.folder_files()
    for key, strength in (("style", 0.8), ("speed", 1.0)):
        pick._folder_chosen(files.index(str(loras[key])) + 1)  # as choosing it in the folder list does
        pick.rows[-1].strength.setValue(strength)
    g.prompt.setPlainText("a red circle moves to the right on a blue background")
    g.seed.setValue(7)
    g.generate_button.click()
    job = g.follow_id
    pump(300, lambda: studio.db.get(job).is_finished, "the job to finish")
    if studio.db.get(job).state != "done":
        raise SystemExit(f"the LoRA job failed: {studio.db.get(job).error}")
    pump(20, lambda: bool(getattr(g.player, "frames", None)))
    grab("lora-picker")

    m = win.mapping
    m.set_model(str(model), "transformer")
    win.show_panel("mapping")
    m.open_lora(str(loras["broken"]))
    pump(120, lambda: m.lora_view.inspection is not None, "the LoRA report")
    m.lora_view.select_key("diffusion_model.blocks.2.self_attn.qq.lora_down.weight")
    grab("mapping-lora")

    win.close()
    pump(2)
    shutil.rmtree(data, ignore_errors=True)
    return 0 if written == list(SHOTS) else 1


if __name__ == "__main__":
    sys.exit(main())

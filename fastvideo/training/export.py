"""Write the trained shapes model as a Diffusers-layout Wan2.1 folder (fp16 weights).

Adds ``vae/latent_rgb.json`` (least-squares latent->RGB preview factors, read by
``VideoGenerator.from_pretrained``), ``vocabulary.json`` (the words it was trained on) and
``fastvideo_training.json`` (how it was made).
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import torch
import torch.nn.functional as F

from fastvideo.pipelines.preview import fit_preview_factors
from fastvideo.training.data import make_batch

LATENT_RGB_FILE = "latent_rgb.json"
VOCABULARY_FILE = "vocabulary.json"  # read by fastvideo.builtin.vocabulary_warning (torch-free)
# Words of the motion phrases that say nothing about what the model draws ("does not move", "rests in place").
_FILLER = {"a", "an", "the", "to", "of", "on", "in", "that", "does", "not", "place", "over", "against", "plain",
           "background", "backdrop", "video", "front", "simple", "animation"}


def vocabulary_record() -> dict:
    """What the shapes model was trained on (:mod:`fastvideo.training.data`), for ``vocabulary.json``.

    ``keywords`` are the words that steer it (colours, shapes, directions, motion verbs): a prompt with none
    of them gets an arbitrary shapes clip.  ``words`` is every word of its caption corpus.
    """
    import re

    from fastvideo.training.data import BACKGROUNDS, COLOURS, DIRECTIONS, MOTION_PHRASES, SHAPES, caption_corpus

    words = sorted({w for line in caption_corpus() for w in re.findall(r"[a-z]+", line.lower())})
    motion = {w for phrases in MOTION_PHRASES.values() for phrase in phrases for w in phrase.split()} - _FILLER
    keywords = sorted(set(COLOURS) | set(BACKGROUNDS) | set(SHAPES) | set(DIRECTIONS) | motion)
    return {
        "about": "A small model trained only on clips of one coloured shape moving on a plain background: it "
                 "knows these colours, shapes and directions and nothing else.",
        "colours": list(COLOURS),
        "backgrounds": list(BACKGROUNDS),
        "shapes": list(SHAPES),
        "directions": list(DIRECTIONS),
        "motions": {d: list(p) for d, p in MOTION_PHRASES.items()},
        "keywords": keywords,
        "words": words,
        "example": "a red circle moves to the right on a blue background",
    }


def write_vocabulary(model_dir) -> Path:
    path = Path(model_dir) / VOCABULARY_FILE
    path.write_text(json.dumps(vocabulary_record(), indent=1) + "\n")
    return path


@torch.no_grad()
def fit_latent_rgb(vae, *, batches: int = 4, batch: int = 8, seed: int = 0, size: int = 128,
                   device="cpu") -> dict:
    """Least-squares latent->RGB factors: normalised latents vs the VAE's own decode, pooled to latent size."""
    lat, rgb = [], []
    r = vae.spatial_compression_ratio
    for i in range(batches):
        x, _, _ = make_batch(batch, seed=seed * 1_000_000 + 950_000 + i, size=size, device=device)
        mean = vae._encode_frames(x.to(vae.dtype)).float().chunk(2, dim=1)[0]
        video = vae.decode(mean).float()  # [B, 3, 1 + 4n, H, W]
        z = vae.normalize_latents(mean)
        # Latent frame 0 <-> video frame 0; latent frame k <-> video frames 4k-3 .. 4k.
        groups = [video[:, :, :1]] + list(video[:, :, 1:].split(4, dim=2))
        pooled = torch.stack([g.mean(2) for g in groups], dim=2)  # [B, 3, T', H, W]
        pooled = F.avg_pool3d(pooled, (1, r, r))
        lat.append(z.permute(0, 2, 3, 4, 1).reshape(-1, z.shape[1]).cpu())
        rgb.append(pooled.permute(0, 2, 3, 4, 1).reshape(-1, 3).cpu())
    lat_all, rgb_all = torch.cat(lat), torch.cat(rgb)
    factors, bias = fit_preview_factors(lat_all, rgb_all)
    pred = lat_all.double() @ torch.tensor(factors, dtype=torch.float64) + torch.tensor(bias, dtype=torch.float64)
    rmse = (pred - rgb_all.double()).pow(2).mean().sqrt().item()
    return {"factors": factors, "bias": bias, "rmse": rmse}


def export_model(out_dir, modules: dict, tokenizer_dir, *, latent_rgb: dict, shift: float = 3.0,
                 dtype: torch.dtype = torch.float16, record: dict | None = None) -> Path:
    """Write ``out_dir`` (replaced if it exists) in the Diffusers layout, weights in ``dtype``."""
    from fastvideo.testing.tiny import WAN_SCHEDULER, _write_diffusers

    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    half = {}
    for name, module in modules.items():
        m = copy.deepcopy(module).cpu().to(dtype).eval()
        m.arch_config = module.arch_config
        half[name] = m
    _write_diffusers(out, "t2v", half)
    te_cfg = json.loads((out / "text_encoder" / "config.json").read_text())
    te_cfg["torch_dtype"] = str(dtype).replace("torch.", "")
    te_cfg.pop("dtype", None)
    (out / "text_encoder" / "config.json").write_text(json.dumps(te_cfg, indent=2) + "\n")
    sched = dict(WAN_SCHEDULER, flow_shift=shift)
    (out / "scheduler" / "scheduler_config.json").write_text(json.dumps(sched, indent=2) + "\n")
    shutil.copytree(tokenizer_dir, out / "tokenizer")
    rgb = {"factors": latent_rgb["factors"], "bias": latent_rgb["bias"]}
    (out / "vae" / LATENT_RGB_FILE).write_text(json.dumps(rgb) + "\n")
    write_vocabulary(out)
    if record is not None:
        (out / "fastvideo_training.json").write_text(json.dumps(record, indent=2) + "\n")
    return out


def folder_size(path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())

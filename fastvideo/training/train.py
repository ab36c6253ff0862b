"""The whole training run: tokenizer -> VAE -> latent stats -> DiT -> quick eval -> export.

Time-budgeted (``seconds_vae``, ``seconds_dit``) with optional step caps; progress
lines go to stdout and ``OUTPUT/train.log``; a checkpoint (fp32 state dicts) is
saved to ``OUTPUT/checkpoint.pt`` during DiT training and the model folder is
written to ``OUTPUT/fastvideo-shapes-t2v`` at the end.  Everything is seeded; with step caps
(``--vae-steps``/``--dit-steps``, see the log for the counts a timed run reached)
a run is reproducible up to GPU kernel non-determinism.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import torch

from fastvideo.training.data import caption_corpus, heldout_prompts
from fastvideo.training.models import FULL, TINY, build_modules, count_params


def _logger(path: Path):
    fh = open(path, "a", buffering=1)

    def log(msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        fh.write(line + "\n")

    return log


def quick_eval(ema, vae, tokenizer, *, n: int, device, guidances=(4.0,), steps: int = 20, shift: float = 3.0,
               log=print, batch: int = 25, size: int = 128) -> dict:
    from fastvideo.training.data import to_uint8
    from fastvideo.training.dit import sample
    from fastvideo.training.judge import judge_clip

    items = heldout_prompts(n)
    results = {}
    for g in guidances:
        ok_c = ok_d = ok_both = 0
        for i in range(0, n, batch):
            chunk = items[i:i + batch]
            clips = sample(ema["transformer"], ema["text_encoder"], vae, tokenizer, [p for p, _, _ in chunk],
                           steps=steps, guidance=g, shift=shift, seeds=[s for _, _, s in chunk], size=size,
                           device=device)
            for (_p, label, _), clip in zip(chunk, clips):
                j = judge_clip(to_uint8(clip).numpy())
                ok_c += j.colour == label.colour
                ok_d += j.direction == label.direction
                ok_both += j.colour == label.colour and j.direction == label.direction
        results[str(g)] = {"colour": ok_c / n, "direction": ok_d / n, "both": ok_both / n}
        log(f"[eval] guidance={g} steps={steps}: colour {ok_c}/{n} direction {ok_d}/{n} both {ok_both}/{n}")
    return results


def save_atomic(obj, path: Path) -> None:
    """``torch.save`` to a temp file, then rename: a reader (or a resumed run) never sees half a checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def run_training(output, *, seed: int = 0, seconds_vae: float = 150, seconds_dit: float = 330,
                 vae_steps: int | None = None, dit_steps: int | None = None, tiny: bool = False,
                 device: str | None = None, vae_batch: int | None = None, dit_batch: int | None = None,
                 eval_prompts: int = 50, command: str | None = None, vae_lr: float = 5e-4,
                 vae_crop: int | None = None, dit_lr: float = 5e-4, vae_from=None, vae_resume=None,
                 vae_frames: int = 17, dit_resume=None,
                 stop_after: str | None = None) -> Path:
    from transformers import AutoTokenizer

    from fastvideo.training.dit import train_dit
    from fastvideo.training.export import export_model, fit_latent_rgb, folder_size
    from fastvideo.training.text import make_tokenizer
    from fastvideo.training.vae import latent_stats, load_vae_file, reconstruction_check, train_vae

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    log = _logger(out / "train.log")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or "cpu"
    log(f"fastvideo train: output={out} seed={seed} tiny={tiny} device={device} ({gpu}) torch={torch.__version__}")
    t_all = time.time()
    sizes = TINY if tiny else FULL
    tok_dir = make_tokenizer(out / "tokenizer", caption_corpus(), seed=seed)
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), trust_remote_code=False, local_files_only=True)
    modules = build_modules(sizes, len(tokenizer), seed)
    log("params: " + ", ".join(f"{k}={count_params(m) / 1e6:.2f}M" for k, m in modules.items())
        + f"; vocab {len(tokenizer)}")
    vae = modules["vae"]
    vb = vae_batch or (2 if tiny else 8)
    db = dit_batch or (2 if tiny else 64)
    size = 32 if tiny else 128  # tiny: smaller clips for a fast CPU smoke run (sizes scale with the frame)
    if vae_from:  # a VAE trained by an earlier run (its OUTPUT/vae.pt)
        state = load_vae_file(vae_from)
        vae.load_state_dict(state["vae"])
        mean, std = state["latents_mean"], state["latents_std"]
        vae_summary = dict(state.get("summary", {}), loaded_from=str(vae_from))
        log(f"VAE loaded from {vae_from}: {json.dumps(vae_summary.get('reconstruction_check'))}")
    else:
        resumed = None
        if vae_resume:  # continue from an earlier run's VAE (fresh optimizer and schedule)
            resumed = load_vae_file(vae_resume)
            vae.load_state_dict(resumed["vae"])
            log(f"VAE resumed from {vae_resume} ({resumed.get('summary', {}).get('steps')} steps)")

        def save_vae(step: int, extra: dict | None = None) -> None:
            summary = dict(extra or {"steps": step, "partial": True}, command=command)
            if resumed is not None:
                summary["resumed_from"] = {"file": str(vae_resume), "summary": resumed.get("summary")}
            state = {"vae": {k: v.detach().cpu().contiguous() for k, v in vae.state_dict().items()},
                     "latents_mean": mean_std[0], "latents_std": mean_std[1], "summary": summary}
            save_atomic(state, out / "vae.pt")

        mean_std: list = [None, None]
        vae_summary = train_vae(vae, seconds=seconds_vae, max_steps=vae_steps, batch=vb, size=size, seed=seed,
                                lr=vae_lr, crop=vae_crop, num_frames=vae_frames, device=device, log=log,
                                log_every=5 if tiny else 50, checkpoint=save_vae)
        vae_check = reconstruction_check(vae, n=8 if tiny else 48, seed=seed, size=size, device=device)
        log(f"[vae-eval] round trips of unseen clips: colour {vae_check['colour']:.0%} "
            f"direction {vae_check['direction']:.0%} psnr {vae_check['psnr']:.1f}dB")
        vae_summary["reconstruction_check"] = vae_check
        mean, std = latent_stats(vae, batches=2 if tiny else 8, batch=vb, seed=seed, size=size, device=device)
        mean_std[:] = [mean, std]
        save_vae(vae_summary["steps"], vae_summary)
    vae.config.latents_mean, vae.config.latents_std = mean, std
    log(f"latent stats: mean {[round(v, 3) for v in mean]} std {[round(v, 3) for v in std]}")
    if stop_after == "vae":
        log(f"wrote {out / 'vae.pt'} (stopping after the VAE) in {time.time() - t_all:.0f}s")
        return out / "vae.pt"

    def checkpoint(ema):
        save_atomic({"vae": vae.state_dict(), "ema": ema.state_dict(), "latents_mean": mean, "latents_std": std,
                     "dit_resumed_from": str(dit_resume) if dit_resume else None}, out / "checkpoint.pt")

    if dit_resume:  # continue the DiT and text encoder from an earlier run's EMA weights
        state = torch.load(dit_resume, map_location="cpu")
        pair = torch.nn.ModuleDict({"transformer": modules["transformer"], "text_encoder": modules["text_encoder"]})
        pair.load_state_dict(state["ema"])
        log(f"DiT and text encoder resumed from {dit_resume} (EMA weights; fresh optimizer and schedule)")

    ema, dit_summary = train_dit(modules["transformer"], modules["text_encoder"], vae, tokenizer,
                                 seconds=seconds_dit, max_steps=dit_steps, batch=db, seed=seed, device=device,
                                 lr=dit_lr,
                                 size=size, log=log, log_every=5 if tiny else 250, checkpoint=checkpoint,
                                 pool_clips=64 if tiny else 24_000, pool_seconds=None if tiny else 60)
    checkpoint(ema)
    evals = {}
    if eval_prompts:
        evals = quick_eval(ema, vae, tokenizer, n=eval_prompts, device=device,
                           guidances=(4.0,) if tiny else (3.0, 5.0, 7.0), steps=4 if tiny else 20, log=log, size=size)
    latent_rgb = fit_latent_rgb(vae, batches=1 if tiny else 4, batch=2 if tiny else 8, seed=seed, size=size,
                                device=device)
    log(f"latent->rgb fit rmse {latent_rgb['rmse']:.4f}")
    record = {"command": command, "seed": seed, "device": gpu, "torch": torch.__version__, "tiny": tiny,
              "vae": {k: v for k, v in vae_summary.items()}, "dit": dit_summary, "quick_eval": evals,
              "latents_mean": mean, "latents_std": std, "latent_rgb_rmse": latent_rgb["rmse"],
              "total_seconds": round(time.time() - t_all, 1), "python": sys.version.split()[0]}
    export_modules = {"transformer": ema["transformer"], "vae": vae, "text_encoder": ema["text_encoder"]}
    for name in ("transformer", "text_encoder"):
        export_modules[name].arch_config = modules[name].arch_config
    model_dir = export_model(out / "fastvideo-shapes-t2v", export_modules, tok_dir, latent_rgb=latent_rgb,
                             record=record)
    (out / "summary.json").write_text(json.dumps(record, indent=2) + "\n")
    log(f"wrote {model_dir} ({folder_size(model_dir) / 1e6:.2f} MB) in {time.time() - t_all:.0f}s")
    return model_dir


def export_checkpoint(checkpoint, output, *, seed: int = 0, tiny: bool = False, record: dict | None = None,
                      rgb_batches: int = 2) -> Path:
    """Write the model folder from a saved ``checkpoint.pt`` (e.g. of a run cut short before its export)."""
    from transformers import AutoTokenizer

    from fastvideo.training.export import export_model, fit_latent_rgb
    from fastvideo.training.text import make_tokenizer

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    state = torch.load(checkpoint, map_location="cpu")
    tok_dir = make_tokenizer(out / "tokenizer", caption_corpus(), seed=seed)
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), trust_remote_code=False, local_files_only=True)
    modules = build_modules(TINY if tiny else FULL, len(tokenizer), seed)
    modules["vae"].load_state_dict(state["vae"])
    ema = torch.nn.ModuleDict({"transformer": modules["transformer"], "text_encoder": modules["text_encoder"]})
    ema.load_state_dict(state["ema"])
    vae = modules["vae"].eval()
    vae.config.latents_mean, vae.config.latents_std = state["latents_mean"], state["latents_std"]
    latent_rgb = fit_latent_rgb(vae, batches=rgb_batches, batch=4, seed=seed, size=32 if tiny else 128)
    return export_model(out / "fastvideo-shapes-t2v", modules, tok_dir, latent_rgb=latent_rgb, record=record)

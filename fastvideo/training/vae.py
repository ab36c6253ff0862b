"""VAE training: the Wan2.1 VAE as an autoencoder (reconstruction + a small KL) on shape clips."""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from fastvideo.training.data import make_batch, velocity


def vae_forward(vae, x: torch.Tensor, sample: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Differentiable encode -> sample -> decode (the chunked causal paths of ``AutoencoderKLWan``)."""
    moments = vae._encode_frames(x)
    mean, logvar = moments.float().chunk(2, dim=1)
    logvar = logvar.clamp(-30.0, 20.0)
    z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if sample else mean
    rec = vae._decode_frames(z.to(moments.dtype))
    return rec, mean, logvar


def lr_at(lr: float, step: int, progress: float, warmup: int, final_lr: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from ``lr`` to ``final_lr * lr`` as progress goes 0 -> 1."""
    cosine = final_lr + (1 - final_lr) * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    return lr * min(1.0, (step + 1) / warmup) * cosine


def shape_windows(x: torch.Tensor, labels, crop: int, rng: random.Random) -> torch.Tensor:
    """``crop`` x ``crop`` windows of clips ``[B, C, T, S, S]``, each around its shape's path (random jitter)."""
    size = x.shape[-1]
    scale = size / 128.0
    out = []
    for clip, label in zip(x, labels):
        vx, vy = velocity(label.direction)
        cx = (label.start[0] + 0.5 * vx * label.distance) * scale
        cy = (label.start[1] + 0.5 * vy * label.distance) * scale
        jitter = crop // 4
        i = min(max(int(cy - crop / 2) + rng.randint(-jitter, jitter), 0), size - crop)
        j = min(max(int(cx - crop / 2) + rng.randint(-jitter, jitter), 0), size - crop)
        out.append(clip[..., i:i + crop, j:j + crop])
    return torch.stack(out)


def foreground(x: torch.Tensor) -> torch.Tensor:
    """[B, 1, T, H, W] in [0, 1]: how far each pixel is from the clip's background (its corner colour)."""
    bg = x[:, :, :1, :1, :1]
    return ((x - bg).abs().amax(dim=1, keepdim=True) * 2).clamp(0, 1)


def train_vae(vae, *, seconds: float, max_steps: int | None = None, batch: int = 16, num_frames: int = 17,
              size: int = 128, lr: float = 5e-4, kl_weight: float = 1e-4, seed: int = 0, device="cpu",
              warmup: int = 100, crop: int | None = None, fg_weight: float = 20.0, final_lr: float = 0.1,
              channels_last: bool | None = None, checkpoint: Callable[[int], None] | None = None,
              checkpoint_every: float = 60.0, log: Callable[[str], None] = print, log_every: int = 50) -> dict:
    """Train for ``seconds`` (or ``max_steps``); returns a summary with the loss history.

    ``crop``: train on ``crop`` x ``crop`` windows that contain the shape's path (the conv VAE is
    translation-equivariant, and small steps are cheap: a batch of windows costs about what a
    quarter as many full frames do). The learning rate warms up over ``warmup`` steps, then decays
    along a cosine to ``final_lr`` x ``lr`` at the end of the run (``max_steps`` when given, else
    ``seconds`` of wall time). Train on as many frames as the model generates (17 by default):
    the causal feature cache of later latent chunks only learns from clips that long.
    ``channels_last`` (default: on CUDA) runs the 3D convs in cuDNN's NDHWC layout; ``checkpoint(step)``
    is called every ``checkpoint_every`` seconds.
    """
    vae.train().to(device)
    if channels_last is None:
        channels_last = torch.device(device).type == "cuda"
    vae.use_channels_last(channels_last)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    use_amp = torch.device(device).type == "cuda"
    start, step, history = time.time(), 0, []
    last_ckpt = start
    while time.time() - start < seconds and (max_steps is None or step < max_steps):
        x, _, labels = make_batch(batch, seed=seed * 1_000_000 + step, num_frames=num_frames, size=size,
                                  device=device)
        if crop and crop < size:
            x = shape_windows(x, labels, crop, random.Random(seed * 1_000_000 + step))
        progress = step / max_steps if max_steps else (time.time() - start) / max(seconds, 1e-9)
        for group in opt.param_groups:
            group["lr"] = lr_at(lr, step, progress, warmup, final_lr)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            rec, mean, logvar = vae_forward(vae, x)
        rec = rec.float()
        mse = F.mse_loss(rec, x)
        # The shape covers a few % of the frame: weight its pixels up, or the VAE learns only the background.
        weight = 1.0 + fg_weight * foreground(x)
        err = rec - x
        loss_rec = (weight * (err.pow(2) + 0.5 * err.abs())).mean() / weight.mean()
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()
        loss = loss_rec + kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        if step % log_every == 0 or step == 1:
            psnr = 10 * torch.log10(4.0 / mse.detach().clamp_min(1e-10)).item()
            history.append({"step": step, "t": round(time.time() - start, 1), "mse": mse.item(), "kl": kl.item(),
                            "psnr": psnr})
            log(f"[vae] step {step} t={time.time() - start:.0f}s mse={mse.item():.5f} psnr={psnr:.1f}dB "
                f"kl={kl.item():.3f}")
        if checkpoint is not None and time.time() - last_ckpt > checkpoint_every:
            checkpoint(step)
            last_ckpt = time.time()
    vae.use_channels_last(False)
    vae.eval()
    return {"steps": step, "seconds": round(time.time() - start, 1), "history": history}


@torch.no_grad()
def latent_stats(vae, *, batches: int = 8, batch: int = 16, seed: int = 0, size: int = 128,
                 device="cpu") -> tuple[list, list]:
    """Per-channel mean and std of the posterior means over training clips (17 frames)."""
    vals = []
    for i in range(batches):
        x, _, _ = make_batch(batch, seed=seed * 1_000_000 + 900_000 + i, size=size, device=device)
        mean = vae._encode_frames(x.to(vae.dtype)).float().chunk(2, dim=1)[0]
        vals.append(mean.transpose(0, 1).reshape(mean.shape[1], -1))
    v = torch.cat(vals, dim=1)
    return v.mean(1).tolist(), v.std(1).clamp_min(1e-3).tolist()


@torch.no_grad()
def reconstruction_check(vae, *, n: int = 48, seed: int = 0, size: int = 128, device="cpu", batch: int = 8) -> dict:
    """Judge VAE round trips of ``n`` unseen 17-frame clips: does the latent space keep colour and motion?"""
    from fastvideo.training.data import to_uint8
    from fastvideo.training.judge import judge_clip

    ok_c = ok_d = 0
    psnrs = []
    for i in range(0, n, batch):
        x, _, labels = make_batch(min(batch, n - i), seed=seed * 1_000_000 + 950_000 + i, size=size, device=device)
        rec, _, _ = vae_forward(vae, x.to(vae.dtype), sample=False)
        rec = rec.float().clamp(-1, 1)
        psnrs.append(10 * torch.log10(4.0 / F.mse_loss(rec, x).clamp_min(1e-10)).item())
        for clip, label in zip(rec, labels):
            j = judge_clip(to_uint8(clip).numpy())
            ok_c += j.colour == label.colour
            ok_d += j.direction == label.direction
    return {"n": n, "colour": ok_c / n, "direction": ok_d / n, "psnr": sum(psnrs) / len(psnrs)}


def save_vae_file(path, vae_state: dict, latents_mean, latents_std, summary: dict, dtype=None) -> Path:
    """A trained VAE as ``path`` (.safetensors, optionally cast to ``dtype``) + ``path.json`` (stats, provenance).

    Both are written to temp files and renamed, so a reader never sees half a file.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
               for k, v in vae_state.items()}
    meta = {"latents_mean": list(latents_mean), "latents_std": list(latents_std), "summary": summary}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp))
    tmp_json = path.with_name(path.name + ".json.tmp")
    tmp_json.write_text(json.dumps(meta, indent=1, default=str) + "\n")
    os.chmod(tmp, 0o644)
    tmp.replace(path)
    tmp_json.replace(path.with_name(path.name + ".json"))
    return path


def load_vae_file(path) -> dict:
    """``{"vae": state dict (fp32), "latents_mean", "latents_std", "summary"}`` from a ``vae.pt`` of a run or a
    ``.safetensors`` written by :func:`save_vae_file`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no VAE file at {path}: pass OUTPUT/vae.pt of an earlier run or a .safetensors "
                                "file written by save_vae_file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        meta_path = path.with_name(path.name + ".json")
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path} is missing: it holds the latent statistics of {path.name}")
        meta = json.loads(meta_path.read_text())
        state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
        return {"vae": state, **meta}
    return torch.load(path, map_location="cpu")

"""DiT training: flow matching on normalised VAE latents, conditioned on the text encoder.

``x_t = (1 - s) x0 + s * noise``, target ``v = noise - x0``, timestep ``s * 1000``;
``s`` is logit-normal, then shifted like the sampler (``shift * u / (1 + (shift - 1) u)``).
Latents come from a pool of clips encoded once (:func:`build_pool`) and re-captioned with
a random training template on every use.  Captions are dropped to ``""`` with probability
``caption_dropout`` so classifier-free
guidance works with an empty negative prompt.  The text encoder trains jointly; an
EMA of both is what gets exported.
"""

from __future__ import annotations

import copy
import dataclasses
import random
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from fastvideo.training.data import MOTION_PHRASES, TRAIN_TEMPLATES, caption, make_batch
from fastvideo.training.text import CachedTokenizer, embed, tokenize
from fastvideo.training.vae import lr_at


def shift_sigmas(s: torch.Tensor, shift: float) -> torch.Tensor:
    return shift * s / (1 + (shift - 1) * s)


@torch.no_grad()
def encode_latents(vae, x: torch.Tensor) -> torch.Tensor:
    """Clips -> normalised latents (posterior means)."""
    mean = vae._encode_frames(x.to(vae.dtype)).float().chunk(2, dim=1)[0]
    return vae.normalize_latents(mean)


class EMA:
    def __init__(self, modules: torch.nn.Module, decay: float = 0.999):
        self.decay = decay
        self.shadow = copy.deepcopy(modules).eval().requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, modules: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        # One fused update over all tensors (a per-parameter loop is ~100 kernel launches a step).
        torch._foreach_lerp_(list(self.shadow.parameters()), [p.detach() for p in modules.parameters()], 1 - d)


@torch.no_grad()
def build_pool(vae, *, clips: int, batch: int = 64, seed: int = 0, size: int = 128, device="cpu",
               seconds: float | None = None, log: Callable[[str], None] = print) -> tuple[torch.Tensor, list]:
    """Encode ``clips`` training clips once: normalised latents (fp16) and their labels.

    Encoding is most of the cost of a DiT step; a pool reused for a few epochs makes
    steps several times cheaper (captions are re-phrased on every use).
    """
    use_amp = torch.device(device).type == "cuda"
    start, latents, labels = time.time(), [], []
    for i in range(0, clips, batch):
        x, _, lab = make_batch(min(batch, clips - i), seed=seed * 1_000_000 + 500_000 + i // batch, size=size,
                               device=device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            latents.append(encode_latents(vae, x).half())
        labels += lab
        if seconds is not None and time.time() - start > seconds:
            break
    log(f"[dit] latent pool: {len(labels)} clips encoded in {time.time() - start:.0f}s")
    return torch.cat(latents), labels


def _captions(labels: list, rng: random.Random, caption_dropout: float) -> list[str]:
    out = []
    for label in labels:
        if rng.random() < caption_dropout:
            out.append("")
            continue
        label = dataclasses.replace(label, template=rng.randrange(len(TRAIN_TEMPLATES)),
                                    phrase=rng.randrange(len(MOTION_PHRASES[label.direction])))
        out.append(caption(label, TRAIN_TEMPLATES))
    return out


def train_dit(dit, text_encoder, vae, tokenizer, *, seconds: float, max_steps: int | None = None, batch: int = 64,
              lr: float = 5e-4, shift: float = 3.0, caption_dropout: float = 0.1, text_len: int = 512,
              seed: int = 0, size: int = 128, device="cpu", ema_decay: float = 0.999, pool_clips: int = 24_000,
              pool_seconds: float | None = None, log: Callable[[str], None] = print, log_every: int = 100,
              checkpoint: Callable[[torch.nn.Module], None] | None = None,
              checkpoint_every: float = 120.0, final_lr: float = 0.1) -> tuple[torch.nn.ModuleDict, dict]:
    """Train; returns the EMA modules (``transformer``, ``text_encoder``) and a summary.

    ``seconds`` covers encoding the latent pool too (at most ``pool_seconds`` of it).
    """
    modules = torch.nn.ModuleDict({"transformer": dit, "text_encoder": text_encoder}).to(device).train()
    vae.eval().to(device)
    start = time.time()
    pool, pool_labels = build_pool(vae, clips=pool_clips, seed=seed, size=size, device=device,
                                   seconds=pool_seconds if pool_seconds is not None else seconds / 5, log=log)
    ema = EMA(modules, ema_decay)
    opt = torch.optim.AdamW(modules.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.01)
    use_amp = torch.device(device).type == "cuda"
    gen = torch.Generator(device="cpu").manual_seed(seed + 7)  # batch indices
    noise_gen = torch.Generator(device=device).manual_seed(seed + 13)  # noise and timesteps, on the device
    rng = random.Random(seed + 11)
    cached_tokenize = CachedTokenizer(tokenizer, text_len)
    step, history, last_ckpt, running = 0, [], time.time(), None
    t_train = time.time()  # the cosine runs over the training time left after encoding the pool
    while time.time() - start < seconds and (max_steps is None or step < max_steps):
        idx = torch.randint(len(pool_labels), (batch,), generator=gen)
        x0 = pool[idx.to(pool.device)].float()
        caps = _captions([pool_labels[i] for i in idx.tolist()], rng, caption_dropout)
        ids, mask = cached_tokenize(caps)
        u = torch.sigmoid(torch.randn(batch, generator=noise_gen, device=device))
        s = shift_sigmas(u, shift)
        noise = torch.randn(x0.shape, generator=noise_gen, device=device)
        sv = s.view(-1, 1, 1, 1, 1)
        xt = (1 - sv) * x0 + sv * noise
        target = noise - x0
        progress = (step / max_steps if max_steps else
                    (time.time() - t_train) / max(seconds - (t_train - start), 1e-9))
        for group in opt.param_groups:
            group["lr"] = lr_at(lr, step, progress, 200, final_lr)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            ctx = embed(modules["text_encoder"], ids.to(device), mask.to(device))
            pred = modules["transformer"](xt, s * 1000.0, ctx)
        loss = F.mse_loss(pred.float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(modules.parameters(), 1.0)
        opt.step()
        ema.update(modules)
        step += 1
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % log_every == 0 or step == 1:
            history.append({"step": step, "t": round(time.time() - start, 1), "loss": loss.item(),
                            "loss_avg": running})
            log(f"[dit] step {step} t={time.time() - start:.0f}s loss={loss.item():.4f} avg={running:.4f}")
        if checkpoint is not None and time.time() - last_ckpt > checkpoint_every:
            checkpoint(ema.shadow)
            last_ckpt = time.time()
    modules.eval()
    return ema.shadow, {"steps": step, "seconds": round(time.time() - start, 1), "history": history,
                        "final_loss_avg": running, "pool_clips": len(pool_labels)}


@torch.no_grad()
def sample(dit, text_encoder, vae, tokenizer, prompts: list[str], *, steps: int = 20, guidance: float = 4.0,
           shift: float = 3.0, seeds: list[int] | None = None, num_frames: int = 17, size: int = 128,
           text_len: int = 512, device="cpu") -> torch.Tensor:
    """Euler flow sampler with CFG (empty negative prompt) -> clips [B, 3, T, H, W] in [-1, 1]."""
    b = len(prompts)
    c = vae.config.z_dim
    lat_t, lat_hw = 1 + (num_frames - 1) // 4, size // 8
    seeds = seeds or list(range(b))
    noise = torch.stack([torch.randn((c, lat_t, lat_hw, lat_hw), generator=torch.Generator().manual_seed(s))
                         for s in seeds]).to(device)
    use_amp = torch.device(device).type == "cuda"
    ids, mask = tokenize(tokenizer, list(prompts) + [""] * b, text_len)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
        ctx = embed(text_encoder, ids.to(device), mask.to(device))
    sig = shift_sigmas(torch.linspace(1, 0, steps + 1), shift).tolist()
    x = noise
    for i in range(steps):
        t = torch.full((2 * b,), sig[i] * 1000.0, device=device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            v = dit(torch.cat([x, x]), t, ctx).float()
        vc, vu = v.chunk(2)
        v = vu + guidance * (vc - vu)
        x = x + (sig[i + 1] - sig[i]) * v
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
        out = vae.decode(vae.denormalize_latents(x))
    return out.float()

"""``fastvideo train``: train the built-in shapes model (a small Wan2.1) from procedural clips.

    fastvideo train --output runs/shapes --seed 0 --seconds-vae 150 --seconds-dit 330
    fastvideo train --output /tmp/smoke --tiny --seconds-vae 5 --seconds-dit 5 --device cpu

The model folder is written to ``OUTPUT/fastvideo-shapes-t2v``; evaluate it with
``python -m fastvideo.training.evaluate OUTPUT/fastvideo-shapes-t2v``.
"""

from __future__ import annotations

import shlex
import sys


def register(sub) -> None:
    p = sub.add_parser("train", help="train the small built-in Wan2.1 shapes model (VAE + DiT) on procedural clips")
    p.add_argument("--output", required=True, metavar="DIR", help="run folder (log, checkpoint, fastvideo-shapes-t2v/)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seconds-vae", type=float, default=150.0, help="VAE training time budget")
    p.add_argument("--seconds-dit", type=float, default=330.0, help="DiT training time budget")
    p.add_argument("--vae-steps", type=int, default=None, help="cap on VAE steps (exact reproduction)")
    p.add_argument("--dit-steps", type=int, default=None, help="cap on DiT steps (exact reproduction)")
    p.add_argument("--vae-batch", type=int, default=None)
    p.add_argument("--dit-batch", type=int, default=None)
    p.add_argument("--vae-lr", type=float, default=5e-4, help="VAE peak learning rate (cosine decay)")
    p.add_argument("--vae-crop", type=int, default=None, metavar="PX",
                   help="train the VAE on PX x PX windows around the shape's path instead of whole frames")
    p.add_argument("--dit-lr", type=float, default=5e-4, help="DiT peak learning rate (cosine decay)")
    p.add_argument("--vae-from", default=None, metavar="FILE",
                   help="skip VAE training: load OUTPUT/vae.pt of an earlier run")
    p.add_argument("--vae-resume", default=None, metavar="FILE",
                   help="start VAE training from OUTPUT/vae.pt of an earlier run (fresh optimizer and schedule)")
    p.add_argument("--vae-frames", type=int, default=17, help="frames per VAE training clip (4n+1)")
    p.add_argument("--dit-resume", default=None, metavar="FILE",
                   help="start the DiT and text encoder from OUTPUT/checkpoint.pt of an earlier run (use with "
                   "--vae-from the same run's VAE)")
    p.add_argument("--stop-after", choices=("vae",), default=None,
                   help="stop after the VAE phase (writes OUTPUT/vae.pt)")
    p.add_argument("--eval-prompts", type=int, default=50, help="held-out prompts for the quick in-run check")
    p.add_argument("--tiny", action="store_true", help="tiny sizes and 32x32 clips: a fast smoke run")
    p.add_argument("--device", choices=("cuda", "cpu"), default=None, help="default: cuda when available")
    p.set_defaults(func=run)


def run(args) -> int:
    from fastvideo.training.train import run_training

    run_training(args.output, seed=args.seed, seconds_vae=args.seconds_vae, seconds_dit=args.seconds_dit,
                 vae_steps=args.vae_steps, dit_steps=args.dit_steps, tiny=args.tiny, device=args.device,
                 vae_batch=args.vae_batch, dit_batch=args.dit_batch, eval_prompts=args.eval_prompts,
                 vae_lr=args.vae_lr, vae_crop=args.vae_crop, dit_lr=args.dit_lr, vae_from=args.vae_from,
                 stop_after=args.stop_after, vae_resume=args.vae_resume, vae_frames=args.vae_frames,
                 dit_resume=args.dit_resume,
                 command="fastvideo train " + " ".join(shlex.quote(a) for a in sys.argv[1:]
                                                       if a != "train") if sys.argv else None)
    return 0

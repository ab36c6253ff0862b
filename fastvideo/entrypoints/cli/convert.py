"""``fastvideo convert``: an official checkpoint folder (Wan2.1, Wan2.2, or LTX-2's single file) -> a
Diffusers-layout folder.  The family is told by the source: a folder with the LTX-2 single file is converted as LTX-2."""

from __future__ import annotations

import sys
import time


def register(sub) -> None:
    p = sub.add_parser("convert", help="convert an official Wan2.1 / Wan2.2 or LTX-2 folder into a Diffusers-layout "
                                       "folder")
    p.add_argument("source", metavar="SOURCE",
                   help="official folder: Wan2.1 (config.json of WanModel, DiT safetensors, Wan2.1_VAE.pth, "
                        "models_t5_umt5-xxl-enc-bf16.pth, google/umt5-xxl/), Wan2.2 (TI2V-5B: the same with "
                        "Wan2.2_VAE.pth; A14B: high_noise_model/ + low_noise_model/ instead of the top DiT) or "
                        "LTX-2 (the ltx-2-*.safetensors "
                        "single file, with its Gemma 3 folder in gemma/ or given by --text-encoder-from)")
    p.add_argument("output", metavar="OUTPUT", help="Diffusers-layout folder to create")
    p.add_argument("--model-type", choices=("t2v", "i2v", "ti2v"),
                   help="expected model type (checked against config.json)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing OUTPUT that is a model folder (has model_index.json); "
                        "any other non-empty folder is refused")
    p.add_argument("--image-encoder-from", metavar="DIR",
                   help="i2v: Diffusers Wan I2V folder to copy image_encoder/ and image_processor/ from")
    p.add_argument("--text-encoder-from", metavar="DIR",
                   help="LTX-2: the Gemma 3 folder (google/gemma-3-12b-it) when SOURCE has no gemma/ folder")
    p.add_argument("--flow-shift", type=_positive_float, default=None,
                   help="scheduler flow_shift (default: 5.0 for Wan2.2 TI2V-5B, else 3.0, which suits 480p and "
                        "1.3B; 5.0 is usual for 720p 14B)")
    p.set_defaults(func=run)


def run(args) -> int:
    from fastvideo.conversion.ltx2 import is_official_ltx2

    start = time.monotonic()
    total_bytes = 0

    def progress(event: dict) -> None:
        nonlocal total_bytes
        total_bytes += event["bytes"]
        print(f"[{event['done']}/{event['total']}] {event['file']} ({_size(event['bytes'])})", flush=True)

    if is_official_ltx2(args.source):
        from fastvideo.conversion.ltx2 import convert_official_to_diffusers as convert_ltx2

        out = convert_ltx2(args.source, args.output, overwrite=args.overwrite, progress=progress,
                           text_encoder_from=args.text_encoder_from)
    else:
        from fastvideo.conversion.wan import convert_official_to_diffusers

        out = convert_official_to_diffusers(
            args.source, args.output, model_type=args.model_type, overwrite=args.overwrite, progress=progress,
            image_encoder_from=args.image_encoder_from, flow_shift=args.flow_shift,
        )
    print(f"wrote {out} ({_size(total_bytes)} in {time.monotonic() - start:.1f} s)", file=sys.stderr)
    return 0


def _positive_float(text: str) -> float:
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
    return value


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"

"""``fastvideo generate``: one video from the command line, with a progress bar."""

from __future__ import annotations

import argparse
import math
import sys


def finite_float(text: str) -> float:
    """argparse type: a float that is not NaN or infinite (those would run the whole model, then fail)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def lora_arg(text: str) -> tuple[str, float]:
    """argparse type: ``PATH[:STRENGTH]`` -> (path, strength); the strength must be finite."""
    from fastvideo.lora import parse_lora_arg

    path, strength = parse_lora_arg(text)
    if not math.isfinite(strength):
        raise argparse.ArgumentTypeError(f"LoRA strength must be a finite number, got {text!r}")
    return path, strength


SEED_MAX = 2**31 - 1  # the studio's range (app/panels/generate_form.py)


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None


def random_seed() -> int:
    import secrets

    return secrets.randbelow(SEED_MAX + 1)


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate a video (T2V, or I2V with --image, V2V with --video)")
    p.add_argument("--model", default=None, help="model folder or repo id (default: the built-in model)")
    p.add_argument("--prompt", required=True)
    p.add_argument("--negative-prompt", default=None)
    p.add_argument("--num-frames", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--steps", type=int, dest="num_inference_steps")
    p.add_argument("--guidance-scale", type=finite_float)
    p.add_argument("--flow-shift", type=finite_float)
    p.add_argument("--seed", type=int, help="noise seed (default: a random one, printed so the run can be repeated)")
    p.add_argument("--fps", type=int)
    p.add_argument("--image", dest="image_path", help="input image (image-to-video models)")
    p.add_argument("--video", dest="video_path", help="input video (video-to-video)")
    p.add_argument("--strength", type=finite_float, help="V2V: how much of the input video is re-noised, (0, 1]")
    p.add_argument("--lora", dest="loras", action="append", type=lora_arg, default=None, metavar="PATH[:STRENGTH]",
                   help="merge a LoRA into the DiT (strength default 1.0); repeat for several")
    p.add_argument("--lora-2", dest="loras_2", action="append", type=lora_arg, default=None,
                   metavar="PATH[:STRENGTH]",
                   help="merge a LoRA into the second expert (transformer_2: Wan2.2 A14B's low-noise expert); "
                        "give a LoRA meant for both experts as --lora and --lora-2")
    p.add_argument("--lora-no-strict", action="store_true",
                   help="apply the LoRA keys that map onto the model and report the others (default: refuse)")
    p.add_argument("--preset", default=None, metavar="NAME",
                   help="sampling preset applied before the other options: fastwan-dmd-3step, step-distill-4step, "
                        "step-distill-8step (fastvideo.configs.sample.presets; docs/engine.md)")
    p.add_argument("--sampler", default=None, choices=("dmd",), help="few-step sampler (default: the model's "
                                                                       "scheduler)")
    p.add_argument("--dmd-steps", dest="dmd_denoising_steps", default=None, type=_int_list, metavar="T1,T2,...",
                   help="DMD timesteps, e.g. 1000,757,522 (sets --steps to their count)")
    p.add_argument("--step-cache", dest="step_cache_threshold", type=finite_float, default=None, metavar="X",
                   help="step caching: reuse the last prediction while the input moved less than X (relative L1, "
                        "accumulated); 0 = off (default)")
    p.add_argument("--num-gpus", type=int, default=1)
    p.add_argument("--output", dest="output_path", default="outputs", metavar="FOLDER|FILE.mp4",
                   help="a folder (default: outputs; the video is named after the prompt, <prompt>.mp4, then "
                        "<prompt>_1.mp4, ...) or a path ending in .mp4, written exactly there with its settings in "
                        "FILE.json; refused if that file already exists (files are never replaced)")
    p.add_argument("--vae-tiling", action="store_true")
    p.add_argument("--cpu-offload", action="store_true", help="keep text encoder, VAE and DiT on the CPU when idle")
    p.add_argument("--memory-mode", default=None, choices=("auto", "resident", "model_offload", "block_stream"),
                   help="auto (default): chosen from free GPU memory and the request; resident: all on the GPU; "
                        "model_offload: each component on the GPU only while it runs; block_stream: the DiT's "
                        "blocks streamed from pinned CPU memory (docs/memory.md)")
    p.add_argument("--weight-storage", default=None, metavar="bf16|fp8|FILE.gguf",
                   help="the DiT's weights: bf16 (default), fp8 (e4m3, per-channel scales) or a GGUF file of the "
                        "DiT (Q8_0, Q6_K, Q5_K, Q4_K)")
    p.add_argument("--stream-slots", type=int, default=None, help="block_stream: DiT blocks in flight (default: "
                                                                     "from free memory)")
    p.add_argument("--attention-backend", default=None,
                   help="AUTO (default: the fastest available per layer), TORCH_SDPA, FLASH_ATTN or FLASH_ATTN_4")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from fastvideo import InvalidRequest, SamplingParam, VideoGenerator
    from fastvideo.builtin import resolve_model_arg

    model = resolve_model_arg(args.model)
    from fastvideo.builtin import vocabulary_warning

    warning = vocabulary_warning(model, args.prompt)  # the small built-in model knows only a few words
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    if args.seed is None:  # like the studio: a new random seed each run, said so it can be repeated
        args.seed = random_seed()
        print(f"seed {args.seed} (random; pass --seed {args.seed} to repeat)", file=sys.stderr, flush=True)
    overrides = {}
    if args.vae_tiling:
        overrides["vae_tiling"] = True
    if args.cpu_offload:
        overrides.update(text_encoder_cpu_offload=True, vae_cpu_offload=True, dit_cpu_offload=True)
    if args.attention_backend:
        overrides["attention_backend"] = args.attention_backend
    for name in ("memory_mode", "weight_storage", "stream_slots"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    fields = {k: getattr(args, k) for k in (
        "negative_prompt", "num_frames", "height", "width", "num_inference_steps", "guidance_scale", "flow_shift",
        "seed", "fps", "image_path", "video_path", "strength", "output_path") if getattr(args, k) is not None}
    sp = SamplingParam.from_pretrained(model)
    if args.preset:
        from fastvideo.configs.sample.presets import PRESETS

        if args.preset not in PRESETS:
            print(f"error: unknown --preset {args.preset!r}; choose from {', '.join(PRESETS)}", file=sys.stderr)
            return 2
        PRESETS[args.preset].apply(sp)
    for name in ("sampler", "dmd_denoising_steps", "step_cache_threshold"):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    if args.dmd_denoising_steps and args.num_inference_steps is None:
        fields["num_inference_steps"] = len(args.dmd_denoising_steps)
    sp.update(prompt=args.prompt, **fields)
    if args.loras or args.loras_2:
        sp.update(loras=args.loras or [], loras_2=args.loras_2 or [], lora_strict=not args.lora_no_strict)
    from fastvideo.pipelines.validation import non_finite_numbers

    bad_numbers = non_finite_numbers(sp)  # before the model loads: NaN / Inf would fail only at the end
    if bad_numbers:
        print(f"error: {'; '.join(map(str, bad_numbers))}", file=sys.stderr)
        return 2
    bar = ProgressBar(enabled=not args.quiet)
    try:
        generator = VideoGenerator.from_pretrained(model, num_gpus=args.num_gpus, **overrides)
    except ValueError as exc:  # a bad memory_mode / weight_storage / stream_slots, said before loading
        if not any(k in str(exc) for k in ("memory_mode", "weight_storage", "stream_slots")):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    plan = getattr(generator, "memory", None)
    if plan is not None and not args.quiet:
        p = plan.plan
        print(f"memory: {p.mode} ({p.weight_storage} weights; {'asked for' if p.requested != 'auto' else 'auto'}): "
              f"{p.reason}", file=sys.stderr, flush=True)
    try:
        result = generator.generate_video(sampling_param=sp, callback=bar)
    except InvalidRequest as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        bar.close()
        generator.shutdown()
    print(f"{result['video_path']}  ({result['num_frames']} frames {result['size'][0]}x{result['size'][1]}, "
          f"seed {result['seed']}, {result['generation_time']:.1f} s)")
    print(memory_line(result))
    for lora in result.get("loras") or []:
        counts = lora["counts"]
        skipped = sum(n for status, n in counts.items() if status != "applied")
        where = "" if lora.get("component", "transformer") == "transformer" else f", into {lora['component']}"
        print(f"LoRA {lora['path']} ({lora['format']}, strength {lora['strength']}{where}): "
              f"{counts.get('applied', 0)} keys "
              f"applied" + (f", {skipped} skipped" if skipped else ""))
    cache = result.get("step_cache") or {}
    if cache.get("threshold"):
        print(f"step cache {cache['threshold']:g}: DiT ran on {cache['computed_steps']} steps, skipped "
              f"{len(cache['skipped_steps'])}")
    return 0


def memory_line(result: dict) -> str:
    """``memory: block_stream, peak GPU 11.2 GiB, peak host 41.0 GiB`` from a result dict."""
    from fastvideo.pipelines.memory import format_bytes

    parts = [f"memory: {result.get('memory_mode', 'resident')}"]
    if result.get("peak_memory_kind") == "cuda_allocated" and result.get("peak_memory"):
        parts.append(f"peak GPU {format_bytes(result['peak_memory'])}")
    if result.get("peak_host_memory"):
        parts.append(f"peak host {format_bytes(result['peak_host_memory'])}")
    return ", ".join(parts)


class ProgressBar:
    """Draws denoising progress on stderr from the generator's events."""

    def __init__(self, enabled: bool = True, width: int = 30):
        self.enabled = enabled
        self.width = width
        self.drawn = False

    def __call__(self, event: dict) -> None:
        if not self.enabled:
            return
        if event["type"] == "stage" and event["name"] != "denoising":
            self._line(f"{event['name'].replace('_', ' ')} ...")
        elif event["type"] == "progress":
            done = event["step"] / event["total"]
            bar = "#" * round(done * self.width)
            self._line(f"[{bar:<{self.width}}] step {event['step']}/{event['total']}  "
                       f"{event['elapsed']:.1f}s elapsed, {event['remaining']:.1f}s left")

    def _line(self, text: str) -> None:
        sys.stderr.write("\r\x1b[2K" + text)
        sys.stderr.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            self.drawn = False

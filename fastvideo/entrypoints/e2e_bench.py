"""``fastvideo bench --e2e``: prompt to MP4, ours against Diffusers at its best, in one process.

For each contender the same model folder (a random-weight full-size folder from
:mod:`fastvideo.perf.random_model`, or ``--model``) goes through that library's own loader and
pipeline; the wall time runs from the prompt to a closed MP4 file, split into stages:

* ours: ``VideoGenerator.generate_video`` -- the pipeline's stage timings (text encoding, denoising,
  decoding, the small rest) and the MP4 write (wall minus the pipeline);
* Diffusers: ``WanPipeline.__call__`` with ``encode_prompt`` and ``vae.decode`` timed (denoising is the
  rest of the call), then ``diffusers.utils.export_to_video``.  "At its best": the transformer compiled
  (``torch.compile``) and the fastest attention backend that works here, chosen by timing one DiT forward
  with each candidate (``set_attention_backend``).

Each contender runs a short warm-up generation first (compilation, cuDNN autotuning), then the timed
runs.  Optional extra rows time our step cache at given thresholds (speed-up, PSNR / SSIM of the video
against our uncached one, and the built-in model's judge when the model has one) and a sampling preset
(e.g. ``fastwan-dmd-3step``).  Ratios are against the baseline measured in the same run.
"""

from __future__ import annotations

import contextlib
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

ATTENTION_CANDIDATES = ("_flash_3", "flash", "sage", "_native_cudnn", "_native_flash", "native")


def _sync() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def _free() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time (its stage times belong together), plus all walls."""
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    out = dict(ordered[(len(ordered) - 1) // 2])
    out["wall_all_s"] = [r["wall_s"] for r in runs]
    return out


# --------------------------------------------------------------------------------------------- ours
def run_ours(model: str, prompt: str, sampling: dict[str, Any], out_dir: Path, repeats: int, compile_dit: bool,
             extra_rows: list[tuple[str, dict[str, Any]]] = (), judge: bool = False, log=print) -> dict[str, Any]:
    from fastvideo import SamplingParam, VideoGenerator
    from fastvideo.configs.sample.presets import PRESETS

    options = {"enable_torch_compile": True} if compile_dit else {}
    gen = VideoGenerator.from_pretrained(model, **options)
    results: dict[str, Any] = {"options": {"compile_dit": compile_dit, "attention_backend":
                                           gen.config.attention_backend or "AUTO", "dit_dtype":
                                           gen.config.dit_precision, "vae_dtype": gen.config.vae_precision}}

    def request(**kw) -> SamplingParam:
        sp = SamplingParam.from_pretrained(model).update(prompt=prompt, **sampling)
        preset = kw.pop("preset", None)
        if preset:
            PRESETS[preset].apply(sp)
        return sp.update(save_video=True, return_frames=True, **kw)

    def once(label: str, **kw) -> dict[str, Any]:
        sp = request(**kw)
        sp.output_path = str(out_dir / f"ours-{label}-{time.monotonic_ns()}.mp4")
        _sync()
        t0 = time.perf_counter()
        r = gen.generate_video(sampling_param=sp)
        wall = time.perf_counter() - t0
        timings = {k: float(v) for k, v in r["timings"].items()}
        stages = {"text_encoding": timings.get("text_encoding", 0.0), "denoising": timings.get("denoising", 0.0),
                  "decoding": timings.get("decoding", 0.0)}
        stages["other_pipeline"] = max(r["generation_time"] - sum(stages.values()), 0.0)
        stages["mp4_encode_and_overhead"] = max(wall - r["generation_time"], 0.0)
        run = {"wall_s": wall, "stages_s": stages, "steps": sp.num_inference_steps, "frames": r["frames"],
               "video": r["video_path"], "step_cache": r.get("step_cache")}
        log(f"  ours {label}: {wall:.3f} s " + ", ".join(f"{k} {v:.3f}" for k, v in stages.items()))
        return run

    try:
        log("ours: warm-up ...")
        once("warmup", num_inference_steps=min(2, sampling.get("num_inference_steps", 2)))
        base_runs = [once("baseline") for _ in range(repeats)]
        base = _median_run(base_runs)
        ref_frames = base_runs[0]["frames"]
        results["baseline"] = base
        for label, kw in extra_rows:
            if kw.get("preset"):
                once(f"{label}-warmup", **kw)  # a preset may change shapes the compiled graph saw
            runs = [once(label, **kw) for _ in range(repeats)]
            row = _median_run(runs)
            row["speedup_vs_ours"] = base["wall_s"] / row["wall_s"]
            if "step_cache_threshold" in kw:
                from fastvideo.perf.quality import psnr, ssim

                row["psnr_db"] = psnr(runs[0]["frames"], ref_frames)
                row["ssim"] = ssim(runs[0]["frames"], ref_frames)
                if judge:
                    row["judge"] = judge_pair(runs[0]["frames"], ref_frames)
            results[label] = row
    finally:
        gen.shutdown()
        _free()
    for row in results.values():
        if isinstance(row, dict):
            row.pop("frames", None)
    return results


def judge_pair(frames, reference) -> dict[str, Any]:
    """The built-in model's judge on both videos: colour and direction, and whether they agree."""
    from fastvideo.training.judge import judge_clip

    a, b = judge_clip(frames), judge_clip(reference)
    return {"colour": a.colour, "direction": a.direction, "reference_colour": b.colour,
            "reference_direction": b.direction, "agrees": (a.colour, a.direction) == (b.colour, b.direction)}


# --------------------------------------------------------------------------------------------- Diffusers
def pick_attention_backend(transformer, inputs: dict[str, Any], log=print) -> tuple[str, dict[str, float]]:
    """The fastest Diffusers attention backend that runs here (one timed forward each, after one warm-up)."""
    import torch

    times: dict[str, float] = {}
    for name in ATTENTION_CANDIDATES:
        try:
            transformer.set_attention_backend(name)
            with torch.inference_mode():
                transformer(**inputs)
                _sync()
                t0 = time.perf_counter()
                transformer(**inputs)
                _sync()
            times[name] = time.perf_counter() - t0
        except Exception as exc:  # not installed / not supported on this device: the next one
            log(f"  diffusers attention {name}: unavailable ({type(exc).__name__}: {str(exc)[:80]})")
    if not times:
        raise RuntimeError("no Diffusers attention backend ran")
    best = min(times, key=times.get)
    transformer.set_attention_backend(best)
    return best, times


def run_diffusers(model: str, prompt: str, sampling: dict[str, Any], out_dir: Path, repeats: int,
                  compile_dit: bool, log=print) -> dict[str, Any]:
    import importlib

    import torch

    diffusers = importlib.import_module("diffusers")
    writer = {"name": "diffusers.utils.export_to_video"}

    def write_mp4(frames, path: Path, fps: int) -> None:
        """Diffusers' own writer (imageio or OpenCV); without either, our ffmpeg writer (said in the JSON)."""
        export_to_video = importlib.import_module("diffusers.utils").export_to_video

        if writer["name"].startswith("diffusers"):
            try:
                export_to_video(frames, str(path), fps=fps)
                return
            except (ImportError, RuntimeError, OSError, ValueError) as exc:  # no imageio / cv2 / ffmpeg backend
                writer["name"] = (f"fastvideo.utils.media.write_video (Diffusers' export_to_video failed: "
                                  f"{type(exc).__name__}: {str(exc)[:120]})")
        import numpy as np

        from fastvideo.utils.media import write_video

        write_video((np.asarray(frames) * 255).round().clip(0, 255).astype(np.uint8), path, fps=fps, sidecar=False)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    pipe = diffusers.WanPipeline.from_pretrained(model, dtype=dtype).to(device)
    pipe.vae.to(torch.float32)  # as our default vae_precision and Diffusers' Wan examples: the same decode work
    pipe.set_progress_bar_config(disable=True)
    h, w, f = sampling["height"], sampling["width"], sampling["num_frames"]
    cfg = pipe.transformer.config
    g = torch.Generator("cpu").manual_seed(0)
    probe = {"hidden_states": torch.randn(1, cfg.in_channels, (f - 1) // 4 + 1, h // 8, w // 8, generator=g).to(
                 device, dtype),
             "timestep": torch.tensor([999.0], device=device),
             "encoder_hidden_states": torch.randn(1, 512, cfg.text_dim, generator=g).to(device, dtype),
             "return_dict": False}
    backend, backend_times = pick_attention_backend(pipe.transformer, probe, log)
    log(f"diffusers: attention backend {backend} ({', '.join(f'{k} {v:.3f}s' for k, v in backend_times.items())})")
    if compile_dit:
        pipe.transformer.compile()
    spent = {"encode_prompt": 0.0, "vae_decode": 0.0}

    def timed(name, fn):
        def wrapper(*a, **k):
            _sync()
            t0 = time.perf_counter()
            out = fn(*a, **k)
            _sync()
            spent[name] += time.perf_counter() - t0
            return out
        return wrapper

    pipe.encode_prompt = timed("encode_prompt", pipe.encode_prompt)
    pipe.vae.decode = timed("vae_decode", pipe.vae.decode)

    def once(label: str, steps: int) -> dict[str, Any]:
        for k in spent:
            spent[k] = 0.0
        _sync()
        t0 = time.perf_counter()
        out = pipe(prompt=prompt, negative_prompt=sampling.get("negative_prompt") or "", height=h, width=w,
                   num_frames=f, num_inference_steps=steps, guidance_scale=sampling["guidance_scale"],
                   generator=torch.Generator("cpu").manual_seed(sampling.get("seed", 0)), output_type="np")
        _sync()
        call = time.perf_counter() - t0
        t1 = time.perf_counter()
        path = out_dir / f"diffusers-{label}-{time.monotonic_ns()}.mp4"
        write_mp4(out.frames[0], path, sampling.get("fps", 16))
        encode = time.perf_counter() - t1
        stages = {"text_encoding": spent["encode_prompt"], "decoding": spent["vae_decode"],
                  "denoising": max(call - spent["encode_prompt"] - spent["vae_decode"], 0.0),
                  "mp4_encode_and_overhead": encode}
        run = {"wall_s": call + encode, "stages_s": stages, "steps": steps, "video": str(path)}
        log(f"  diffusers {label}: {run['wall_s']:.3f} s " + ", ".join(f"{k} {v:.3f}" for k, v in stages.items()))
        return run

    try:
        log("diffusers: warm-up ...")
        once("warmup", min(2, sampling["num_inference_steps"]))
        base = _median_run([once("baseline", sampling["num_inference_steps"]) for _ in range(repeats)])
    finally:
        pipe = None  # noqa: F841 (frees the GPU memory before the next contender)
        _free()
    base["options"] = {"compile_dit": compile_dit, "attention_backend": backend,
                       "attention_backend_forward_s": backend_times, "diffusers": diffusers.__version__,
                       "dit_dtype": str(dtype).removeprefix("torch."), "vae_dtype": "float32",
                       "video_writer": writer["name"]}
    return base


# --------------------------------------------------------------------------------------------- driver
def run_e2e(arch: str = "wan2.1-t2v-1.3b", model: str | None = None, model_dir: str | None = None,
            height: int = 480, width: int = 832, frames: int = 81, steps: int = 50, guidance: float = 5.0,
            prompt: str = "A red fox runs through fresh snow at sunrise, cinematic.", compare: tuple[str, ...] = (),
            compile_dit: bool = True, repeats: int = 1, step_cache: tuple[float, ...] = (),
            presets: tuple[str, ...] = (), tiny: bool = False, out_dir: str | None = None, log=print) -> dict[str, Any]:
    import torch

    from fastvideo.builtin import load_vocabulary
    from fastvideo.configs.sample.presets import PRESETS
    from fastvideo.perf.bench import environment
    from fastvideo.perf.random_model import write_random_model

    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise ValueError(f"unknown presets {unknown}; choose from {', '.join(PRESETS)}")
    if any(not 0 < t <= 10 for t in step_cache):
        raise ValueError(f"step cache thresholds must be in (0, 10], got {list(step_cache)}")
    if model is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        folder = model_dir or str(Path(tempfile.gettempdir()) / f"fastvideo-random-{arch}{'-tiny' if tiny else ''}")
        model = str(write_random_model(folder, arch, device=device, tiny=tiny, log=log))
        weights = "random (fastvideo.perf.random_model)"
    else:
        weights = "from the folder"
    sampling = {"height": height, "width": width, "num_frames": frames, "num_inference_steps": steps,
                "guidance_scale": guidance, "seed": 0, "fps": 16}
    results: dict[str, Any] = {
        "env": environment(), "kind": "e2e", "arch": arch, "model": model, "weights": weights, "prompt": prompt,
        "shape": {"height": height, "width": width, "frames": frames, "steps": steps, "guidance": guidance},
        "repeats": repeats, "contenders": {}, "ratios": {}}
    extra = [(f"step_cache_{t:g}", {"step_cache_threshold": float(t)}) for t in step_cache]
    extra += [(f"preset_{p}", {"preset": p}) for p in presets]
    with contextlib.ExitStack() as stack:
        out = Path(out_dir) if out_dir else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="e2e-")))
        out.mkdir(parents=True, exist_ok=True)
        ours = run_ours(model, prompt, sampling, out, repeats, compile_dit, extra,
                        judge=load_vocabulary(model) is not None, log=log)
        results["contenders"]["ours"] = ours
        if "diffusers" in compare:
            results["contenders"]["diffusers"] = run_diffusers(model, prompt, sampling, out, repeats, compile_dit,
                                                               log=log)
    results["ratios"] = e2e_ratios(results)
    return results


def e2e_ratios(r: dict[str, Any]) -> dict[str, float]:
    c, out = r["contenders"], {}
    ours = c.get("ours", {}).get("baseline")
    ref = c.get("diffusers")
    if ours and ref:
        out["diffusers_over_ours_wall"] = ref["wall_s"] / ours["wall_s"]
        for stage in ("text_encoding", "denoising", "decoding", "mp4_encode_and_overhead"):
            a, b = ours["stages_s"].get(stage), ref["stages_s"].get(stage)
            if a and b:
                out[f"diffusers_over_ours_{stage}"] = b / a
    for label, row in c.get("ours", {}).items():
        if label not in ("baseline", "options") and isinstance(row, dict) and "speedup_vs_ours" in row:
            out[f"{label}_speedup"] = row["speedup_vs_ours"]
            if ref:
                out[f"{label}_diffusers_over"] = ref["wall_s"] / row["wall_s"]
    return out


def format_e2e(r: dict[str, Any]) -> str:
    rows = [("run", "wall (s)", "text", "denoise", "decode", "mp4+rest", "vs ours", "quality")]

    def add(name, row, quality=""):
        s = row["stages_s"]
        rows.append((name, f"{row['wall_s']:.3f}", f"{s.get('text_encoding', 0):.3f}", f"{s.get('denoising', 0):.3f}",
                     f"{s.get('decoding', 0):.3f}", f"{s.get('mp4_encode_and_overhead', 0):.3f}",
                     f"{row.get('speedup_vs_ours', 1.0):.2f}x", quality))

    ours = r["contenders"].get("ours", {})
    if "baseline" in ours:
        add(f"ours ({r['shape']['steps']} steps)", ours["baseline"])
    for label, row in ours.items():
        if label in ("baseline", "options") or not isinstance(row, dict):
            continue
        q = ""
        if "ssim" in row:
            q = f"PSNR {row['psnr_db']:.1f} dB, SSIM {row['ssim']:.3f}"
            if row.get("step_cache"):
                q += f", ran {row['step_cache']['computed_steps']}/{row['steps']} steps"
            if row.get("judge"):
                q += f", judge {'agrees' if row['judge']['agrees'] else 'differs'}"
        add(label, row, q)
    if "diffusers" in r["contenders"]:
        d = r["contenders"]["diffusers"]
        add(f"diffusers ({d['options']['attention_backend']}{', compiled' if d['options']['compile_dit'] else ''})",
            dict(d, speedup_vs_ours=ours["baseline"]["wall_s"] / d["wall_s"]) if "baseline" in ours else d)
    widths = [max(len(x[i]) for x in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(x, widths)) for x in rows]
    lines.append(f"device: {r['env'].get('gpu')}; weights {r['weights']}")
    lines += [f"{k}: {v:.3f}" for k, v in r["ratios"].items()]
    return "\n".join(lines)

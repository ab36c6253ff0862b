"""Request validation, torch-free so the studio can show the same messages inline.

Every check names the field and says what to do.  ``validate_sampling`` returns
all problems at once; ``check_sampling`` raises the first as ``InvalidRequest``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from pathlib import Path

from fastvideo.configs.geometry import LatentGeometry
from fastvideo.configs.sample.base import SamplingParam
from fastvideo.errors import InvalidRequest
from fastvideo.pipelines.memory import hard_limit_problems  # torch-free

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def non_finite_numbers(sp: SamplingParam) -> list[InvalidRequest]:
    """One error per float field (of any SamplingParam subclass, and of ``extra``) that is NaN or infinite.

    Torch-free and file-free, so callers can run it before any model is loaded.
    """
    errors: list[InvalidRequest] = []
    values = [(f.name, getattr(sp, f.name, None)) for f in dataclasses.fields(sp) if f.name != "extra"]
    values += [(f"extra[{k!r}]", v) for k, v in (getattr(sp, "extra", None) or {}).items()]
    for name, value in values:
        if isinstance(value, float) and not math.isfinite(value):
            errors.append(InvalidRequest(f"{name} must be a finite number, got {value!r}", name))
    return errors


def validate_sampling(sp: SamplingParam, task: str = "t2v", check_output: bool = True,
                      geometry: LatentGeometry | None = None) -> list[InvalidRequest]:
    """Every problem of the request.  ``geometry`` (the model's, ``ModelInfo.geometry()``) adds the frame count
    and size rules of its VAE and patch size; without it only model-independent rules are checked."""
    errors: list[InvalidRequest] = non_finite_numbers(sp)
    flagged = {e.field for e in errors}

    def bad(field: str, message: str) -> None:
        if field not in flagged:  # a NaN / Inf field is reported once, as non-finite
            errors.append(InvalidRequest(message, field))

    if not isinstance(sp.prompt, str) or not sp.prompt.strip():
        bad("prompt", "the prompt is empty: describe the video you want")
    if not isinstance(sp.num_frames, int) or sp.num_frames < 1:
        bad("num_frames", f"num_frames must be a positive whole number, got {sp.num_frames!r}")
    elif geometry is not None and not geometry.valid_frames(sp.num_frames):
        step = geometry.frame_step
        lo, hi = geometry.nearest_frames(sp.num_frames)
        bad("num_frames", f"num_frames must be {step}n+1 (the VAE packs {step} frames per latent); "
                          f"{sp.num_frames} is not: use {lo} or {hi}")
    for name in ("height", "width"):
        value = getattr(sp, name)
        multiple = None if geometry is None else getattr(geometry, f"{name}_multiple")
        if not isinstance(value, int) or value <= 0:
            bad(name, f"{name} must be a positive whole number, got {value!r}")
        elif multiple is not None and value % multiple:
            lo = max(multiple, value // multiple * multiple)
            bad(name, f"{name} must be a multiple of {multiple}; {value} is not: use {lo} or "
                      f"{lo + multiple if lo < value else lo}")
    for name, message in hard_limit_problems(sp.num_frames, sp.height, sp.width):  # absurd sizes, any model
        bad(name, message)
    if not isinstance(sp.num_inference_steps, int) or sp.num_inference_steps < 1:
        bad("num_inference_steps", f"num_inference_steps must be at least 1, got {sp.num_inference_steps!r}")
    if not isinstance(sp.guidance_scale, (int, float)) or sp.guidance_scale < 0:
        bad("guidance_scale", f"guidance_scale must be >= 0 (1 or less turns guidance off), got {sp.guidance_scale!r}")
    g2 = getattr(sp, "guidance_scale_2", None)
    if g2 is not None and (not isinstance(g2, (int, float)) or g2 < 0):
        bad("guidance_scale_2", f"guidance_scale_2 must be >= 0 or None (= guidance_scale), got {g2!r}")
    boundary = getattr(sp, "boundary_ratio", None)
    if boundary is not None and (not isinstance(boundary, (int, float)) or not 0 <= boundary <= 1):
        bad("boundary_ratio", f"boundary_ratio must be in [0, 1] or None (= the model's), got {boundary!r}")
    if sp.flow_shift is not None and (not isinstance(sp.flow_shift, (int, float)) or sp.flow_shift <= 0):
        bad("flow_shift", f"flow_shift must be positive, got {sp.flow_shift!r}")
    if not isinstance(sp.seed, int) or not 0 <= sp.seed < 2**63:
        bad("seed", f"seed must be a whole number in [0, 2^63), got {sp.seed!r}")
    if not isinstance(sp.fps, int) or sp.fps < 1:
        bad("fps", f"fps must be a positive whole number, got {sp.fps!r}")
    for field_name, message in sampler_problems(sp):
        bad(field_name, message)

    if task == "i2v":
        if not sp.image_path:
            bad("image_path", "image-to-video needs an input image: choose an image file")
        elif not Path(sp.image_path).is_file():
            bad("image_path", f"image file not found: {sp.image_path}")
        elif not str(sp.image_path).lower().endswith(IMAGE_SUFFIXES):
            bad("image_path", f"{sp.image_path}: not an image file ({', '.join(IMAGE_SUFFIXES)})")
    if task == "v2v":
        if not sp.video_path:
            bad("video_path", "video-to-video needs an input video: choose a video file")
        elif not Path(sp.video_path).is_file():
            bad("video_path", f"video file not found: {sp.video_path}")
        if not isinstance(sp.strength, (int, float)) or not 0 < sp.strength <= 1:
            bad("strength", f"strength must be in (0, 1] (1 = ignore the input video), got {sp.strength!r}")

    if check_output and sp.save_video:
        problem = output_path_problem(sp.output_path)
        if problem:
            bad("output_path", problem)
    return errors


SAMPLERS = ("dmd",)  # fastvideo.models.schedulers.dmd.SAMPLERS (kept torch-free here)


def sampler_problems(sp: SamplingParam) -> list[tuple[str, str]]:
    """(field, message) for the few-step sampler and step-cache fields (torch-free)."""
    out: list[tuple[str, str]] = []
    sampler = getattr(sp, "sampler", None)
    if sampler is not None and sampler not in SAMPLERS:
        out.append(("sampler", f"unknown sampler {sampler!r}: use {', '.join(SAMPLERS)} or leave it empty "
                               "for the model's own scheduler"))
    steps = getattr(sp, "dmd_denoising_steps", None)
    if steps is not None:
        if sampler != "dmd":
            out.append(("dmd_denoising_steps", "dmd_denoising_steps needs sampler='dmd' (or clear it)"))
        elif (not isinstance(steps, (list, tuple)) or not steps
              or any(isinstance(t, bool) or not isinstance(t, int) or not 0 < t <= 1000 for t in steps)
              or any(b >= a for a, b in zip(steps, steps[1:]))):
            out.append(("dmd_denoising_steps", "dmd_denoising_steps must be strictly decreasing whole numbers "
                                               f"in (0, 1000], such as [1000, 757, 522]; got {steps!r}"))
        elif isinstance(sp.num_inference_steps, int) and len(steps) != sp.num_inference_steps:
            out.append(("num_inference_steps", f"the DMD timestep list {list(steps)} has {len(steps)} steps but "
                                               f"num_inference_steps is {sp.num_inference_steps}: set it to "
                                               f"{len(steps)} or change the list"))
    threshold = getattr(sp, "step_cache_threshold", 0.0)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 10:
        out.append(("step_cache_threshold", f"step_cache_threshold must be a number in [0, 10] (0 turns step "
                                            f"caching off; 0.05-0.3 are typical), got {threshold!r}"))
    return out


def output_folder_problem(folder: str | os.PathLike | None) -> str | None:
    """Why videos cannot be written to ``folder`` (None when they can)."""
    if not folder:
        return "no output folder given"
    path = Path(folder).expanduser()
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        return f"output path {path} is not a folder ({existing} is a file)"
    try:
        # Probe the folder, or the nearest one above it that exists: checking creates nothing
        # (the folder is made when the video is written).
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-test-"):
            pass
    except OSError as exc:
        return f"cannot write to output folder {path}: {exc.strerror or exc}; choose another folder"
    return None


def output_path_problem(output: str | os.PathLike | None) -> str | None:
    """Why a video cannot be written to ``output`` (None when it can).

    ``output`` is a folder, or a path ending in ``.mp4`` naming the file itself; an existing
    file (or its ``.json`` sidecar) is never replaced.
    """
    if not output:
        return "no output folder given"
    from fastvideo.utils.media import exists_message, output_target

    target, is_file = output_target(output)
    if not is_file:
        return output_folder_problem(target)
    for existing in (target, target.with_suffix(".json")):
        if existing.exists() or existing.is_symlink():
            return exists_message(existing)
    return output_folder_problem(target.parent)


def check_sampling(sp: SamplingParam, task: str = "t2v", geometry: LatentGeometry | None = None) -> None:
    errors = validate_sampling(sp, task, geometry=geometry)
    if errors:
        if len(errors) == 1:
            raise errors[0]
        first = errors[0]
        raise InvalidRequest("; ".join(str(e) for e in errors), first.field)

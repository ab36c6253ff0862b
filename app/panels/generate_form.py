"""The Generate form without widgets: the sampling fields, the model's defaults, validation,
the job spec and restoring a job's (or an MP4's) settings.

Qt-free (no PySide6) and torch-free, so it is unit-tested without a QApplication; the
Generate panel (:mod:`app.panels.generate`) copies its widgets into a :class:`GenerateForm`,
asks it, and copies the result back.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.services.catalogue import has_model_index
from app.services.loras import lora_specs, loras_param, missing_lora
from fastvideo.configs.geometry import LatentGeometry  # torch-free
from fastvideo.configs.sample.base import SamplingParam  # torch-free
from fastvideo.configs.sample.presets import PRESETS, SamplingPreset, presets_for  # torch-free
from fastvideo.pipelines.validation import validate_sampling  # torch-free: the engine's own checks

TASKS = (("t2v", "Text → Video"), ("i2v", "Image → Video"), ("v2v", "Video → Video"))
TASK_KEYS = tuple(k for k, _ in TASKS)
TASK_NAMES = {"t2v": "text-to-video", "i2v": "image-to-video", "v2v": "video-to-video"}
FALLBACK_DEFAULTS = {"width": 832, "height": 480, "num_frames": 81, "fps": 16, "num_inference_steps": 50,
                     "guidance_scale": 5.0, "negative_prompt": "", "strength": 0.8, "seed": 1024}
#: the frame / size rules assumed until the inference process has described the model (``describe``'s
#: ``geometry``: the model's LatentGeometry, e.g. Wan2.2 TI2V's sizes are multiples of 32)
FALLBACK_GEOMETRY = {"temporal_compression": 4, "spatial_compression": 8, "latent_channels": 16,
                     "patch_size": [1, 2, 2]}
SEED_MAX = 2**31 - 1
REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")

#: the form's rows, in order (each has an inline error label in the panel)
ROWS = ("model", "task", "loras", "prompt", "negative_prompt", "image", "video", "strength", "resolution", "num_frames",
        "steps", "guidance", "speed", "seed", "batch", "num_gpus")
#: the key of an error that belongs to no row (shown under the form)
GENERAL = ""

# SamplingParam field -> the form row whose error label shows its message.
FIELD_ROWS = {
    "prompt": "prompt", "negative_prompt": "negative_prompt", "num_frames": "num_frames", "height": "resolution",
    "width": "resolution", "num_inference_steps": "steps", "guidance_scale": "guidance", "seed": "seed",
    "image_path": "image", "video_path": "video", "strength": "strength", "model_path": "model", "model": "model",
    "num_gpus": "num_gpus", "loras": "loras", "loras_2": "loras", "lora_strict": "loras",
    "sampler": "speed", "dmd_denoising_steps": "speed", "dmd_warp_timesteps": "speed", "step_cache_threshold": "speed",
}


#: SamplingParam field -> the words the form uses for it (its label), so a message never says "num_frames"
#: beside a field labelled "Frames"
FIELD_LABELS = {
    "num_frames": "Frames", "num_inference_steps": "Steps", "guidance_scale": "Guidance", "width": "Width",
    "height": "Height", "image_path": "Input image", "video_path": "Input video", "negative_prompt": "Negative prompt",
    "strength": "Strength", "seed": "Seed", "num_gpus": "GPUs", "fps": "fps", "step_cache_threshold": "Step cache",
}
_FIELD_WORDS = re.compile(r"\b(" + "|".join(sorted(FIELD_LABELS, key=len, reverse=True)) + r")\b")


def in_form_words(message: str) -> str:
    """``message`` with the engine's field names replaced by the form's labels ("num_frames must be 4n+1"
    -> "Frames must be 4n+1"); a label that starts a sentence keeps its capital, inside one it is lower-case."""
    def label(m: re.Match) -> str:
        text = FIELD_LABELS[m.group(1)]
        at_start = m.start() == 0 or message[:m.start()].rstrip().endswith(".")
        return text if at_start or text == "fps" else text[:1].lower() + text[1:]

    return _FIELD_WORDS.sub(label, message)


def error_row(field_name: str | None) -> str:
    """The form row that shows an error about ``field_name`` (:data:`GENERAL` when none does)."""
    row = FIELD_ROWS.get(field_name or "")
    return row if row in ROWS else GENERAL


def format_timings(timings: dict) -> str:
    """The stages that took time, slowest first: "decoding 10.2 s, denoising 2.6 s"."""
    items = sorted(((k, float(v)) for k, v in timings.items() if isinstance(v, (int, float)) and v >= 0.05),
                   key=lambda kv: -kv[1])
    return ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in items)


def format_memory(result: dict) -> str:
    """The job's memory line from its result: "block_stream (auto) · GPU peak 11.20 GiB · host peak 30.90 GiB"."""
    parts = []
    mode = result.get("memory_mode")
    if mode:
        plan = result.get("memory_plan") or {}
        storage = plan.get("weight_storage")
        how = "auto" if plan.get("requested") == "auto" else "asked for"
        parts.append(f"{mode} ({how}{', ' + storage + ' weights' if storage and storage != 'bf16' else ''})")
    if result.get("peak_memory_kind") == "cuda_allocated" and result.get("peak_memory"):
        parts.append(f"GPU peak {result['peak_memory'] / 2**30:.2f} GiB")
    host = result.get("peak_host_memory") or (result.get("peak_memory")
                                              if result.get("peak_memory_kind") == "cpu_peak_rss" else None)
    if host:
        parts.append(f"host peak {host / 2**30:.2f} GiB")
    return " · ".join(parts)


def round16(x: float, multiple: int = 16) -> int:
    """``x`` rounded to a multiple of ``multiple`` (16 unless the model's geometry says otherwise)."""
    return max(multiple, int(round(x / multiple)) * multiple)


def resolution_presets(width: int, height: int, multiple: int = 16) -> list[tuple[str, int, int]]:
    """Presets from a model's default size: default, its rotation, square, draft (half); sides are
    multiples of ``multiple`` (the model's: ``LatentGeometry.height_multiple``)."""
    def r(x: float) -> int:
        return round16(x, multiple)

    out = [(f"{width}×{height} default", width, height)]
    if width != height:
        orient = "portrait" if width > height else "landscape"
        out.append((f"{height}×{width} {orient}", height, width))
        side = r(math.sqrt(width * height))
        out.append((f"{side}×{side} square", side, side))
    out.append((f"{r(width / 2)}×{r(height / 2)} draft", r(width / 2), r(height / 2)))
    return out


def gib(memory: Any, fmt: str = "{}") -> str:
    """``memory`` bytes as "79.1 GiB" put into ``fmt`` ('' when unknown)."""
    if not isinstance(memory, (int, float)) or memory <= 0:
        return ""
    return fmt.format(f"{memory / 2**30:.1f} GiB")


def device_text(device: dict) -> str:
    """One GPU: "NVIDIA H100 80GB HBM3, 79.1 GiB"."""
    return f"{device.get('name') or 'GPU'}{gib(device.get('memory'), ', {}')}"


def cpu_text(cpu: dict | None) -> str:
    """The CPU side: " (16 cores, 125.7 GiB)" ('' when unknown)."""
    cpu = cpu or {}
    parts = [f"{cpu['cores']} cores"] if cpu.get("cores") else []
    parts += [gib(cpu.get("memory"))] if gib(cpu.get("memory")) else []
    return f" ({', '.join(parts)})" if parts else ""


def model_path_problem(path: str, remote: bool = False) -> str | None:
    """Why ``path`` cannot be a model (None: a folder, or a repo id the inference process resolves).
    ``remote``: the engine runs on another host (Settings → Engine), so the path is one of that host's and
    only the inference process can check it (``describe`` answers with the error)."""
    if remote:
        return None if path.strip() else "Enter the model's folder on the remote host, or a repo id"
    p = Path(path).expanduser()
    if p.is_dir():
        return None
    if p.exists():
        return f"{path} is a file: choose the model's folder (the one with model_index.json)"
    if REPO_ID.match(path) and not path.startswith((".", "/", "~")):
        return None  # a repo id: the inference process resolves (and downloads) it
    return f"No such folder: {path}"


def settings_from_metadata(md: dict) -> dict:
    """Turn the settings embedded in a generated MP4 into a restorable job spec."""
    params = {k: v for k, v in md.items() if k not in ("model", "model_path", "model_id", "task", "num_gpus",
                                                         "pipeline_config", "fastvideo_version", "torch_version")}
    return {"params": params, "model_path": md.get("model") or md.get("model_path") or md.get("model_id") or "",
            "task": md.get("task"), "num_gpus": md.get("num_gpus")}


def builtin_model() -> str:
    """The built-in default model's folder when it is on disk (torch-free lookup), else ""."""
    from fastvideo.builtin import default_model_path

    path = default_model_path(create=False)
    return str(path) if has_model_index(path) else ""


def model_labels(paths: list[str], builtin: str | None = None) -> list[str]:
    """What the model field shows for each of ``paths``: the folder's name ("(built-in)" after the built-in
    model's), a repo id as it is; two folders of the same name get their parent folder's name too."""
    builtin = builtin_model() if builtin is None else builtin
    names = [p if (REPO_ID.match(p) and not Path(p).expanduser().is_dir()) or not Path(p).name else Path(p).name
             for p in paths]
    counts = {n: names.count(n) for n in names}
    out = []
    for path, name in zip(paths, names):
        if builtin and path == builtin:
            name = f"{name} (built-in)"
        elif counts[name] > 1 and name != path:
            name = f"{name} ({Path(path).parent.name or Path(path).parent})"
        out.append(name or path)
    return out


@dataclass
class GenerateForm:
    """The Generate form's values and the knowledge about models behind them."""

    model: str = ""
    task: str = "t2v"
    prompt: str = ""
    negative_prompt: str = ""
    width: int = FALLBACK_DEFAULTS["width"]
    height: int = FALLBACK_DEFAULTS["height"]
    num_frames: int = FALLBACK_DEFAULTS["num_frames"]
    steps: int = FALLBACK_DEFAULTS["num_inference_steps"]
    guidance: float = FALLBACK_DEFAULTS["guidance_scale"]
    seed: int = 0
    seed_locked: bool = False
    strength: float = FALLBACK_DEFAULTS["strength"]
    image_path: str = ""
    video_path: str = ""
    num_gpus: int = 1
    #: LoRAs merged for this job: (path, strength) pairs (``SamplingParam.loras``)
    loras: list[tuple[str, float]] = field(default_factory=list)
    #: LoRAs for a two-expert model's second (low-noise) expert (``SamplingParam.loras_2``)
    loras_2: list[tuple[str, float]] = field(default_factory=list)
    lora_strict: bool = True
    #: a few-step sampling preset the model or a LoRA calls for ("" = the model's defaults), and the step cache
    #: threshold (0 = off); fastvideo.configs.sample.presets, fastvideo.pipelines.step_cache
    sampling_preset: str = ""
    step_cache: float = 0.0
    #: the current model's sampling defaults (FALLBACK_DEFAULTS merged with the described ones)
    defaults: dict[str, Any] = field(default_factory=lambda: dict(FALLBACK_DEFAULTS))
    #: the current model's tasks (empty: unknown, all allowed)
    tasks: list[str] = field(default_factory=list)
    #: what the inference process said about each model (``describe``: defaults, tasks, gpu_count)
    model_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: why a model could not be described (until it is chosen again)
    model_errors: dict[str, str] = field(default_factory=dict)
    #: models asked about and not answered yet
    described_requested: set[str] = field(default_factory=set)
    #: the engine runs on a remote host: model paths are that host's (checked by the inference process)
    remote_models: bool = False

    # ------------------------------------------------------------------ model
    def model_status(self, path: str) -> tuple[str, Any]:
        """What is known about ``path`` now, as ``(kind, detail)``:

        ``("empty", None)``, ``("problem", message)`` (not a folder nor a repo id),
        ``("known", info)``, ``("error", message)`` (describing it failed) or
        ``("unknown", None)`` (ask the inference process).
        """
        if not path:
            return "empty", None
        problem = model_path_problem(path, self.remote_models)
        if problem:
            return "problem", problem
        if path in self.model_info:
            return "known", self.model_info[path]
        if path in self.model_errors:
            return "error", self.model_errors[path]
        return "unknown", None

    def request_describe(self, path: str) -> bool:
        """Note that ``path`` is being described; False when it already is."""
        if path in self.described_requested:
            return False
        self.described_requested.add(path)
        return True

    def described(self, path: str, info: dict) -> None:
        self.model_info[path] = info
        self.model_errors.pop(path, None)
        self.described_requested.discard(path)

    def describe_failed(self, path: str, message: str) -> None:
        self.described_requested.discard(path)
        if "inference process" not in message:  # a crash is not the model's fault: ask again later
            self.model_errors[path] = message

    def apply_model_info(self, info: dict | None, apply_defaults: bool) -> None:
        """Take a model's defaults and tasks; with ``apply_defaults`` also its size, frames, steps,
        guidance, strength and (into an empty field) negative prompt."""
        defaults = {**FALLBACK_DEFAULTS, **((info or {}).get("defaults") or {})}
        self.defaults = defaults
        self.tasks = list((info or {}).get("tasks") or [])
        if self.tasks and self.task not in self.tasks:
            self.task = self.tasks[0]
        if apply_defaults:
            self.width, self.height = int(defaults["width"]), int(defaults["height"])
            self.num_frames = int(defaults["num_frames"])
            self.steps = int(defaults["num_inference_steps"])
            self.guidance = float(defaults["guidance_scale"])
            self.strength = float(defaults.get("strength") or 0.8)
            neg = defaults.get("negative_prompt") or ""
            if neg and not self.negative_prompt.strip():
                self.negative_prompt = neg

    def task_allowed(self, task: str) -> bool:
        return not self.tasks or task in self.tasks

    def presets(self) -> list[tuple[str, int, int]]:
        """The resolution presets of the current model's default size."""
        g = self.geometry()
        return resolution_presets(int(self.defaults["width"]), int(self.defaults["height"]),
                                  max(g.height_multiple, g.width_multiple))

    def geometry(self, model: str | None = None) -> LatentGeometry:
        """The frame / size rules of ``model`` (default: the current one) as described, else the fallback."""
        info = self.model_info.get((model if model is not None else self.model).strip()) or {}
        return LatentGeometry.from_dict(info.get("geometry") or FALLBACK_GEOMETRY)

    @property
    def fps(self) -> int:
        return int(self.defaults.get("fps") or 16)

    def frames_hint(self) -> str:
        return f"≈ {self.num_frames / self.fps:.1f} s at {self.fps} fps"

    @staticmethod
    def gpus_hint(info: dict | None) -> str:
        """The devices the inference process sees, in one line: "CPU only (16 cores, 125 GiB): no GPU
        visible", "GPU 0: NVIDIA H100 80GB HBM3, 79.1 GiB", "2 × NVIDIA H100 80GB HBM3 (79.1 GiB each)"."""
        info = info or {}
        gpu_count = info.get("gpu_count")
        if gpu_count is None:
            return ""
        if not gpu_count:
            return f"CPU only{cpu_text(info.get('cpu'))}: no GPU visible"
        devices = [d for d in info.get("devices") or [] if isinstance(d, dict)]
        if len(devices) != gpu_count:
            return f"{gpu_count} GPU{'s' if gpu_count > 1 else ''} visible"
        if gpu_count == 1:
            return f"GPU 0: {device_text(devices[0])}"
        kinds = {(d.get("name"), d.get("memory")) for d in devices}
        if len(kinds) == 1:
            return f"{gpu_count} × {devices[0].get('name') or 'GPU'}{gib(devices[0].get('memory'), ' ({} each)')}"
        return f"{gpu_count} GPUs: " + "; ".join(f"{d.get('index', i)}: {device_text(d)}"
                                                   for i, d in enumerate(devices))

    @staticmethod
    def devices_tooltip(info: dict | None) -> str:
        """Every device on its own line (the GPUs row's tooltip)."""
        info = info or {}
        if info.get("gpu_count") is None:
            return "The GPUs the inference process sees are shown once it has read the model"
        lines = [f"GPU {d.get('index', i)}: {device_text(d)}" for i, d in enumerate(info.get("devices") or [])]
        lines.append(f"CPU{cpu_text(info.get('cpu'))}")
        return "Devices the inference process sees:\n" + "\n".join(lines) + \
            "\nGPUs: how many of them one job uses (one process each)"

    def model_summary(self, model: str | None = None) -> str:
        """One line about the model: its tasks and default size, frames, steps and fps."""
        model = self.model if model is None else model
        d = self.defaults
        kinds = ", ".join(TASK_NAMES.get(t, t) for t in self.tasks) or "video"
        return (f"{Path(model).name or model}: {kinds} · default {int(d['width'])}×{int(d['height'])}, "
                f"{d['num_frames']} frames, {d['num_inference_steps']} steps, {d.get('fps', 16)} fps")

    # ------------------------------------------------------------------ sampling presets
    def offered_presets(self) -> list[SamplingPreset]:
        """The sampling presets the current model folder or its LoRAs call for (torch-free look-up)."""
        model = self.model.strip()
        local = model and not self.remote_models and Path(model).expanduser().is_dir()
        return presets_for(model if local else None, [path for path, _ in self.loras + self.loras_2])

    def apply_preset(self, name: str) -> None:
        """Choose a preset ("" = the model's own sampling): its steps and guidance go into the form's fields."""
        if not name:
            self.sampling_preset = ""
            return
        preset = PRESETS[name]
        self.sampling_preset = name
        self.steps = int(preset.values.get("num_inference_steps", self.steps))
        self.guidance = float(preset.values.get("guidance_scale", self.guidance))

    # ------------------------------------------------------------------ seed
    def randomise_seed(self) -> int:
        self.seed = random.randint(0, SEED_MAX)
        return self.seed

    def after_submit(self) -> None:
        """A job was queued: an unlocked seed becomes a new random one."""
        if not self.seed_locked:
            self.randomise_seed()

    # ------------------------------------------------------------------ request
    def params(self, output_dir: str = "", preview: bool = True) -> dict[str, Any]:
        """The SamplingParam fields of the form (what a job stores and sends)."""
        p: dict[str, Any] = {
            "prompt": self.prompt.strip(),
            "negative_prompt": self.negative_prompt.strip() or None,
            "width": int(self.width), "height": int(self.height),
            "num_frames": int(self.num_frames), "num_inference_steps": int(self.steps),
            "guidance_scale": round(float(self.guidance), 4), "seed": int(self.seed),
            "fps": self.fps, "output_path": output_dir, "save_video": True,
            "preview": bool(preview),
        }
        if self.sampling_preset in PRESETS:  # the sampler fields (steps and guidance are the form's own)
            p.update({k: (list(v) if isinstance(v, (list, tuple)) else v)
                      for k, v in PRESETS[self.sampling_preset].values.items()
                      if k not in ("num_inference_steps", "guidance_scale") and v is not None})
        if self.step_cache > 0:
            p["step_cache_threshold"] = round(float(self.step_cache), 4)
        if self.loras:
            p["loras"] = loras_param(self.loras)
        if self.loras_2:
            p["loras_2"] = loras_param(self.loras_2)
        if (self.loras or self.loras_2) and not self.lora_strict:
            p["lora_strict"] = False
        if self.task == "i2v":
            p["image_path"] = self.image_path.strip() or None
        if self.task == "v2v":
            p["video_path"] = self.video_path.strip() or None
            p["strength"] = round(float(self.strength), 4)
        return p

    def validate(self, output_dir: str = "", preview: bool = True,
                 pipeline_options: dict[str, Any] | None = None) -> tuple[dict[str, str], dict[str, Any] | None]:
        """Check everything: ``(errors, spec)``.

        ``errors`` maps a row of :data:`ROWS` (or :data:`GENERAL`) to its message (a later
        problem on the same row replaces an earlier one); ``spec`` is the job to submit
        (``Runner.submit`` keywords), None when there is any error.
        """
        errors: dict[str, str] = {}
        model = self.model.strip()
        if not model:
            errors["model"] = "Choose a model folder first (or set a default model in Settings)"
        else:
            problem = model_path_problem(model, self.remote_models) or self.model_errors.get(model)
            if problem:
                errors["model"] = problem
        params = self.params(output_dir, preview)
        sp = SamplingParam.from_dict(dict(params))
        for err in validate_sampling(sp, self.task, geometry=self.geometry(model)):
            errors[error_row(err.field)] = in_form_words(str(err))
        if missing_lora(self.loras + self.loras_2):
            errors["loras"] = missing_lora(self.loras + self.loras_2)
        gpu_count = (self.model_info.get(model) or {}).get("gpu_count")
        if gpu_count and self.num_gpus > gpu_count:
            errors["num_gpus"] = (
                f"Only {gpu_count} GPU{'s are' if gpu_count > 1 else ' is'} visible to the inference process")
        elif gpu_count == 0 and self.num_gpus > 1:
            errors["num_gpus"] = ("No GPU is visible to the inference process: the job runs on the CPU. "
                                  "Set GPUs to 1")
        if errors:
            return errors, None
        return errors, {"prompt": params.pop("prompt"), "model_path": model, "task": self.task, "params": params,
                        "num_gpus": int(self.num_gpus), "pipeline_options": dict(pipeline_options or {})}

    # ------------------------------------------------------------------ restore
    def apply_job_settings(self, settings: dict[str, Any]) -> None:
        """Put a job's settings (``Job.settings()``, or :func:`settings_from_metadata` of an MP4)
        back into the form: what they give, the seed locked; the model too when they name one."""
        p = dict(settings.get("params") or {})
        self.model = settings.get("model_path") or self.model
        task = settings.get("task") or ("i2v" if p.get("image_path") else "v2v" if p.get("video_path") else "t2v")
        if task in TASK_KEYS:
            self.task = task
        if "prompt" in p:
            self.prompt = p.get("prompt") or ""
        if "negative_prompt" in p:
            self.negative_prompt = p.get("negative_prompt") or ""
        if p.get("width") and p.get("height"):
            self.width, self.height = int(p["width"]), int(p["height"])
        for key, attr, conv in (("num_frames", "num_frames", int), ("num_inference_steps", "steps", int),
                                ("guidance_scale", "guidance", float), ("strength", "strength", float)):
            if p.get(key) is not None:
                setattr(self, attr, conv(p[key]))
        if p.get("seed") is not None:
            self.seed = int(p["seed"]) % (SEED_MAX + 1)
            self.seed_locked = True
        if settings.get("num_gpus"):
            self.num_gpus = int(settings["num_gpus"])
        self.image_path = p.get("image_path") or ""
        self.video_path = p.get("video_path") or ""
        self.loras = lora_specs(p.get("loras"))
        self.loras_2 = lora_specs(p.get("loras_2"))
        self.lora_strict = p.get("lora_strict") is not False
        self.step_cache = float(p.get("step_cache_threshold") or 0.0)
        self.sampling_preset = next((name for name, preset in PRESETS.items() if p.get("sampler") and all(
            p.get(k) == v for k, v in preset.values.items() if k not in ("num_inference_steps", "guidance_scale")
            and v is not None)), "")

    def apply_metadata(self, md: dict[str, Any]) -> None:
        """Restore the settings embedded in a generated MP4 (``read_metadata``)."""
        self.apply_job_settings(settings_from_metadata(md))

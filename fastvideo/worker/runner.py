"""PipelineRunner: loads a model folder once and serves generation requests.

Runs in the caller's process for one GPU and inside every worker process for
several (only rank 0 saves files and reports).  It turns a ``SamplingParam``
into a ``ForwardBatch``, picks the task's pipeline, and packs the result.
"""

from __future__ import annotations

import dataclasses
import resource
import sys
import time
from typing import Any

import torch

from fastvideo import __version__
from fastvideo.configs.pipelines.base import PipelineConfig
from fastvideo.configs.registry import ModelInfo
from fastvideo.configs.sample.base import SamplingParam
from fastvideo.errors import InvalidRequest
from fastvideo.pipelines.composed import ComposedPipeline, LoadedModules, load_modules
from fastvideo.pipelines.forward_batch import ForwardBatch
from fastvideo.utils.media import write_generation
from fastvideo.worker.layout import check_fsdp_config


def pick_task(info: ModelInfo, sp: SamplingParam) -> str:
    if sp.video_path:
        if "v2v" not in info.tasks:
            raise InvalidRequest(f"this model ({info.pipeline_name}) cannot do video-to-video; "
                                 "clear the input video", "video_path")
        return "v2v"
    if sp.image_path and "i2v" in info.tasks:
        return "i2v"
    if "t2v" not in info.tasks:
        return info.task
    if sp.image_path:
        raise InvalidRequest(f"this model ({info.pipeline_name}) is text-to-video; it takes no input image",
                             "image_path")
    return "t2v"


def default_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class PipelineRunner:
    def __init__(self, info: ModelInfo, config: PipelineConfig, device: torch.device | None = None,
                 rank: int = 0, log=None):
        self.info = info
        self.config = config
        self.device = device or default_device()
        self.rank = rank
        self.log = log
        check_fsdp_config(config)
        self.loaded: LoadedModules = load_modules(info, config, self.device, log=log)
        self.fsdp: dict[str, Any] | None = None  # shard_dit's report (per-rank parameter bytes), all experts
        if config.use_fsdp_inference and self.loaded.experts:
            from fastvideo.distributed.fsdp import combine_reports, describe, shard_dit

            self.fsdp = combine_reports({name: shard_dit(expert, self.device) for name, expert in self.loaded.experts})
            if log:
                log(describe(self.fsdp))
        from fastvideo.attention.layer import set_attention_backend

        for _, expert in self.loaded.experts:
            set_attention_backend(expert, config.attention_backend)
        self._pipelines: dict[str, ComposedPipeline] = {}

    def pipeline(self, task: str) -> ComposedPipeline:
        if task not in self._pipelines:
            self._pipelines[task] = self.info.pipeline_class(task)(self.loaded)
        return self._pipelines[task]

    def generate(self, sp: SamplingParam, callback=None, cancel_event=None) -> dict[str, Any]:
        task = pick_task(self.info, sp)
        pipe = self.pipeline(task)
        lora_reports = self.apply_loras(sp)  # before the run: merged into the DiT, no per-step cost
        batch = ForwardBatch(sampling=sp, task=task, callback=callback if self.rank == 0 else None,
                             cancel_event=cancel_event)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        start = time.perf_counter()
        batch = pipe.forward(batch)
        generation_time = time.perf_counter() - start
        settings = self.settings(sp, task)
        result: dict[str, Any] = {
            "video_path": None, "frames": batch.frames if sp.return_frames else None, "seed": sp.seed,
            "size": [sp.width, sp.height], "num_frames": int(batch.frames.shape[0]), "fps": sp.fps, "task": task,
            "generation_time": generation_time, "timings": dict(batch.timings),
            "preview_time": batch.extra.get("preview_time", 0.0), **peak_memory(self.device), "settings": settings,
            "loras": [report.to_json() for report in lora_reports],
            "step_cache": batch.extra.get("step_cache"),
        }
        if self.fsdp is not None:
            result["fsdp"] = {k: self.fsdp[k] for k in ("world", "components", "param_bytes_per_rank",
                                                        "full_param_bytes")}
        if sp.save_video and self.rank == 0:
            # A folder: <prompt>.mp4, <prompt>_1.mp4... claimed atomically; an .mp4 path: exactly that file.
            # Families that generate sound (LTX-2) leave a waveform in batch.extra: an AAC track in the MP4.
            result["video_path"] = str(write_generation(batch.frames, sp.output_path, sp.prompt, fps=sp.fps,
                                                        metadata=settings, audio=batch.extra.get("audio"),
                                                        sample_rate=batch.extra.get("audio_sample_rate")))
        return result

    def apply_loras(self, sp: SamplingParam) -> list:
        """Make ``sp.loras`` the LoRAs merged into the DiT (``transformer``) and ``sp.loras_2`` those merged
        into the second expert (``transformer_2``, Wan2.2's low-noise expert; Diffusers'
        ``load_into_transformer_2=True``); none: the loaded weights, restored bit for bit.  Only the LoRA files
        are read; a LoRA that cannot be applied is an InvalidRequest, weights untouched."""
        from fastvideo.lora import LoraError, apply_loras, lora_manager

        wanted = {"transformer": ("loras", list(sp.loras or [])), "transformer_2": ("loras_2", list(sp.loras_2 or []))}
        for name, (field_name, specs) in wanted.items():
            if specs and self.loaded.get(name) is None:
                what = "no DiT" if name == "transformer" else "no second expert (transformer_2)"
                raise InvalidRequest(f"this model has {what} to apply {field_name} to", field_name)
        if self.fsdp is not None and self.fsdp["world"] > 1:
            for field_name, specs in wanted.values():
                if specs:
                    raise InvalidRequest("LoRAs cannot be merged into a DiT whose weights are sharded over the "
                                         "ranks (use_fsdp_inference=True); load the model without FSDP to use LoRAs",
                                         field_name)
            return []
        # LoRAs for several experts: plan every set before merging any (a bad LoRA for transformer_2 leaves
        # transformer untouched); one set alone is already all-or-nothing in set_loras.
        several = sum(bool(specs) for _field, specs in wanted.values()) > 1
        for name, (field_name, specs) in wanted.items():
            module = self.loaded.get(name)
            if module is None or not several:
                continue
            try:
                lora_manager(module).check_loras(specs, strict=sp.lora_strict)
            except LoraError as exc:
                raise InvalidRequest(str(exc), field_name) from exc
        reports = []
        for name, (field_name, specs) in wanted.items():
            module = self.loaded.get(name)
            if module is None:
                continue
            try:
                for report in apply_loras(module, specs, strict=sp.lora_strict):
                    report.component = name
                    reports.append(report)
            except LoraError as exc:
                raise InvalidRequest(str(exc), field_name) from exc
        return reports

    def settings(self, sp: SamplingParam, task: str) -> dict[str, Any]:
        data = {k: v for k, v in dataclasses.asdict(sp).items() if k not in ("extra", "return_frames", "save_video")}
        data.update(model=str(self.info.path), model_id=self.info.repo_id, task=task,
                    flow_shift=sp.flow_shift if sp.flow_shift is not None else self.config.flow_shift,
                    pipeline_config={k: v for k, v in self.config.to_dict().items()
                                     if k not in ("preview_factors", "preview_bias", "extra")},
                    fastvideo_version=__version__, torch_version=torch.__version__)
        return data


def peak_memory(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        return {"peak_memory": int(torch.cuda.max_memory_allocated(device)), "peak_memory_kind": "cuda_allocated"}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_memory": int(rss if sys.platform == "darwin" else rss * 1024), "peak_memory_kind": "cpu_peak_rss"}


def cpu_precision_defaults(config: PipelineConfig, explicit: set[str]) -> PipelineConfig:
    """On a CPU, half precision is slow and lossy: use fp32 unless asked otherwise."""
    fields = ("dit_precision", "vae_precision", "text_encoder_precision", "image_encoder_precision")
    return config.update(**{f: "fp32" for f in fields if f not in explicit})


def scheduler_shift(info: ModelInfo) -> float | None:
    """The flow shift written in the folder's scheduler config, if any."""
    from fastvideo.models.loader.component_loader import read_json

    path = info.path / "scheduler" / "scheduler_config.json"
    if not path.is_file():
        return None
    cfg = read_json(path)
    for key in ("flow_shift", "shift"):
        if isinstance(cfg.get(key), (int, float)):
            return float(cfg[key])
    return None


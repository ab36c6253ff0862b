"""VideoGenerator: the public entry point (FastVideo's shape).

    generator = VideoGenerator.from_pretrained(model_path, num_gpus=1)
    result = generator.generate_video("a prompt", sampling_param=SamplingParam.from_pretrained(model_path))

The model stays loaded between calls.  With ``num_gpus=1`` the pipeline runs in
this process; with more, an executor starts one worker process per GPU.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastvideo.configs.pipelines.base import PipelineConfig
from fastvideo.configs.registry import ModelInfo, resolve_model
from fastvideo.configs.sample.base import SamplingParam
from fastvideo.errors import InvalidRequest
from fastvideo.pipelines.validation import check_sampling

logger = logging.getLogger("fastvideo")


class VideoGenerator:
    def __init__(self, info: ModelInfo, config: PipelineConfig, num_gpus: int, executor):
        self.info = info
        self.config = config
        self.num_gpus = num_gpus
        self.executor = executor

    @classmethod
    def from_pretrained(cls, model_path: str, num_gpus: int = 1, **options: Any) -> VideoGenerator:
        """Load a model folder (or a repo id: downloaded if needed).

        ``options`` are :class:`PipelineConfig` fields (``vae_tiling=True``,
        ``text_encoder_cpu_offload=True``, ``dit_precision="fp32"``, ...) and FastVideo's
        ``from_pretrained`` options with FastVideo's meaning (``sp_size``, ``tp_size``,
        ``use_fsdp_inference`` (the DiT's weights sharded over the ranks), ``pin_cpu_memory``,
        ``enable_torch_compile``, ``distributed_executor_backend`` (``"mp"``: worker processes on this machine;
        ``"ray"``: Ray actors on the cluster ``RAY_ADDRESS`` names, or a local one), ``pipeline_config=``;
        docs/fastvideo-compat.md, docs/multigpu.md).  A FastVideo
        option fastvideo lacks raises :class:`fastvideo.api.UnsupportedOptionError` naming it; an unknown
        name raises ``TypeError`` listing the accepted ones -- both before anything is loaded.
        """
        import dataclasses

        from fastvideo.api.options import UnsupportedOptionError, translate_load_options

        fields = {f.name for f in dataclasses.fields(PipelineConfig)}
        load = translate_load_options(num_gpus, options, fields)
        pipeline_overrides = load.overrides
        base = load.pipeline_config
        if base is not None and not isinstance(base, (PipelineConfig, dict)):
            raise TypeError(f"pipeline_config must be a fastvideo PipelineConfig (PipelineConfig.from_pretrained) "
                            f"or a dict of its fields, got {type(base).__name__}")
        if not isinstance(num_gpus, int) or num_gpus < 1:
            raise ValueError(f"num_gpus must be a whole number >= 1, got {num_gpus!r}")
        import torch

        from fastvideo.worker.runner import cpu_precision_defaults, scheduler_shift

        info = resolve_model(model_path, download=True)
        if load.workload_type is not None and load.workload_type not in info.tasks:
            raise UnsupportedOptionError("workload_type", f"workload_type={load.workload_type!r}: this "
                                         f"{info.pipeline_name} model does {', '.join(info.tasks)}")
        config = info.pipeline_config_cls()
        if base is not None:  # priority: family defaults < pipeline_config < keyword options
            given = base.to_dict() if isinstance(base, PipelineConfig) else dict(base)
            defaults = config.to_dict()
            pipeline_overrides = {**{k: v for k, v in given.items() if k in defaults and v != defaults[k]},
                                  **pipeline_overrides}
        shift = scheduler_shift(info)
        if shift is not None:
            config = config.update(flow_shift=shift)
        config = config.update(**_latent_rgb_overrides(info))
        config = config.update(**pipeline_overrides)
        ray = load.executor_backend == "ray"
        if not torch.cuda.is_available() and not ray:  # Ray: the executor decides (the ranks may have GPUs)
            config = cpu_precision_defaults(config, set(pipeline_overrides))
        from fastvideo.pipelines.memory_modes import resolve as resolve_memory

        # memory_mode: planned for this device's free memory and the model's default request (docs/memory.md)
        # (several GPUs: no CUDA context in this process; the plan is resident unless a mode is asked for)
        device = None if num_gpus > 1 else torch.device("cuda", torch.cuda.current_device()) \
            if torch.cuda.is_available() else torch.device("cpu")
        config, memory = resolve_memory(info, config, device)
        if ray:
            from fastvideo.worker.ray_executor import RayExecutor

            executor = RayExecutor(info, config, num_gpus, explicit=set(pipeline_overrides))
            config = executor.config  # the layout (and precisions) actually used
        elif num_gpus == 1:
            from fastvideo.worker.layout import resolve_layout
            from fastvideo.worker.local import LocalExecutor

            resolve_layout(1, config.sp_size, config.cfg_parallel)  # rejects sp_size=2 etc. on one GPU
            executor = LocalExecutor(info, config)
        else:
            from fastvideo.worker.executor import MultiprocExecutor

            executor = MultiprocExecutor(info, config, num_gpus)
            config = executor.config  # the layout actually used
        generator = cls(info, config, num_gpus, executor)
        generator.memory = memory
        return generator

    def default_sampling_param(self) -> SamplingParam:
        return self.info.sampling_param_cls()

    def generate_video(
        self,
        prompt: str | None = None,
        sampling_param: SamplingParam | None = None,
        *,
        callback: Callable[[dict[str, Any]], None] | None = None,
        cancel_event: threading.Event | None = None,
        loras: list[Any] | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """Generate one video.

        ``overrides`` set :class:`SamplingParam` fields for this call
        (``output_path=``, ``save_video=``, ``num_frames=``...); FastVideo's ``output_video_name=`` names the
        file, and FastVideo fields fastvideo lacks raise :class:`fastvideo.api.UnsupportedOptionError`.
        The result has our keys and FastVideo's (``prompts``, ``e2e_latency``, ``peak_memory_mb``,
        ``samples``; docs/fastvideo-compat.md).  ``callback(event)``
        receives ``stage``, ``progress`` and ``preview`` events; setting
        ``cancel_event`` stops at the next step with :class:`GenerationCancelled`.
        Invalid requests raise :class:`InvalidRequest` before any model work.

        ``loras=[(path, strength), ...]`` (or ``SamplingParam.loras``) merges those LoRAs into the DiT
        for this call; a call without LoRAs runs the loaded weights, bit for bit.  Switching LoRAs
        between calls never reloads the model.  ``loras_2=[...]`` merges LoRAs into the second expert
        (``transformer_2``, Wan2.2 A14B's low-noise expert); a LoRA meant for both experts goes in both lists.
        """
        import dataclasses
        import time

        from fastvideo.api.options import add_result_aliases, translate_generate_kwargs

        start = time.perf_counter()
        sp = copy.deepcopy(sampling_param) if sampling_param is not None else self.default_sampling_param()
        if prompt is not None:
            sp.prompt = prompt
        sp.update(**translate_generate_kwargs(overrides, {f.name for f in dataclasses.fields(sp)}))
        if loras is not None:
            sp.loras = loras
        sp.loras = _checked_loras(sp.loras)
        sp.loras_2 = _checked_loras(sp.loras_2, "loras_2")
        if (sp.loras or sp.loras_2) and self.config.weight_storage != "bf16":
            raise InvalidRequest(f"LoRAs merge into unquantised weights; this model was loaded with weight_storage="
                                 f"{self.config.weight_storage!r}: load it with weight_storage='bf16' to use LoRAs",
                                 "loras")
        from fastvideo.worker.runner import pick_task  # noqa: PLC0415 (torch import deferred to here)

        task = pick_task(self.info, sp)
        self.check_limits(sp, task)  # memory and hard limits: before any allocation or file
        check_sampling(sp, task, self.geometry)
        from fastvideo.pipelines.memory_modes import peak_host_bytes, peak_host_reset

        host_reset = peak_host_reset()  # the job's own host peak (Linux), not the process's
        vae = getattr(getattr(self.executor, "runner", None), "loaded", {}).get("vae") \
            if getattr(self, "_tile_job", False) else None
        if vae is not None:
            vae.enable_tiling()
        try:
            result = self.executor.generate(sp, callback=callback, cancel_event=cancel_event)
        finally:
            if vae is not None:
                vae.disable_tiling()
        if vae is not None:
            result["vae_tiling_auto"] = True
        result["peak_host_memory"] = peak_host_bytes()
        result["peak_host_memory_kind"] = "job_peak_rss" if host_reset else "process_peak_rss"
        memory = getattr(self, "memory", None)
        if memory is not None:
            result["memory_mode"] = self.config.memory_mode
            result["memory_plan"] = memory.plan.to_json()
        return add_result_aliases(result, sp.prompt, time.perf_counter() - start)  # FastVideo's keys too

    @property
    def geometry(self):
        """The model's :class:`~fastvideo.configs.geometry.LatentGeometry` (from its configs; cached)."""
        if getattr(self, "_latent_geometry", None) is None:
            self._latent_geometry = self.info.geometry()
        return self._latent_geometry

    def check_limits(self, sp: SamplingParam, task: str) -> None:
        """Raise InvalidRequest when ``sp`` cannot fit this generator's device (fastvideo.pipelines.memory)."""
        from fastvideo.pipelines.memory import ModelGeometry, check_request

        if getattr(self, "_geometry", None) is None:
            self._geometry = ModelGeometry.from_model(self.info.path, self.config)
        runner = getattr(self.executor, "runner", None)  # one GPU or the CPU: in this process
        self._tile_job = False
        memory = getattr(self, "memory", None)
        device = getattr(runner, "device", None)
        if memory is not None and getattr(device, "type", None) == "cuda":  # the loaded memory mode's numbers
            from fastvideo.pipelines.memory import budget_for, memory_check_enabled
            from fastvideo.pipelines.memory_modes import Request, replan

            dims = (sp.num_frames, sp.height, sp.width)
            if memory_check_enabled() and all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                              for v in dims):
                cfg = isinstance(sp.guidance_scale, (int, float)) and sp.guidance_scale > 1.0
                req, budget = Request(*dims, task, cfg), budget_for(device)
                self._tile_job = memory.tile_for(req, budget)  # auto: the VAE tiled for this job only
                problem = None if self._tile_job else memory.check(req, budget)
                plan = replan(memory, req, budget) if problem and self.num_gpus == 1 else None
                if plan is not None:  # auto: this request needs a smaller mode: the model is reloaded in it
                    self._reload(plan)
                    problem = None
                if problem:
                    raise InvalidRequest(problem, "num_frames")
            return
        check_request(sp, task, self._geometry, getattr(runner, "device", None))

    def _reload(self, plan) -> None:
        """Reload the model (one GPU) in ``plan``'s memory mode (``auto`` meeting a request its mode cannot run)."""
        import dataclasses

        from fastvideo.pipelines.memory_modes import MemoryContext
        from fastvideo.worker.local import LocalExecutor

        logger.info("memory: %s", plan.reason)
        self.executor.shutdown()
        self.executor = None
        import torch

        torch.cuda.empty_cache()
        self.config = self.config.update(**plan.overrides(self.config))
        self.executor = LocalExecutor(self.info, self.config)
        self.memory = dataclasses.replace(self.memory, plan=plan, config=self.config) \
            if isinstance(self.memory, MemoryContext) else self.memory
        self._geometry = None

    def shutdown(self) -> None:
        if self.executor is not None:
            self.executor.shutdown()
            self.executor = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()


def _checked_loras(loras: Any, field_name: str = "loras") -> list[tuple[str, float]]:
    """``SamplingParam.loras`` (or ``loras_2``) as (path, strength) pairs; a malformed entry or a missing file
    is an InvalidRequest (that field) before any model work."""
    from fastvideo.lora import LoraError, normalize_loras

    try:
        specs = normalize_loras(loras)
    except LoraError as exc:
        raise InvalidRequest(str(exc), field_name) from None
    for path, _ in specs:
        if not Path(path).expanduser().is_file():
            raise InvalidRequest(f"LoRA file not found: {path}", field_name)
    return specs


def _latent_rgb_overrides(info: ModelInfo) -> dict[str, Any]:
    """Preview factors shipped with the model (``vae/latent_rgb.json``: ``factors`` C x 3, ``bias`` 3), if any."""
    import json

    path = info.path / "vae" / "latent_rgb.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        factors, bias = data["factors"], data["bias"]
        if len(bias) != 3 or any(len(row) != 3 for row in factors):
            raise ValueError("factors must be C x 3 and bias 3 values")
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("%s: ignoring preview factors (%s)", path, exc)
        return {}
    return {"preview_factors": [[float(v) for v in row] for row in factors], "preview_bias": [float(v) for v in bias]}


__all__ = ["InvalidRequest", "VideoGenerator"]

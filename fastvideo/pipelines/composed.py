"""ComposedPipeline: a list of stages run in order over one ForwardBatch.

Family pipelines (``basic/<family>/``) only say which stages, in which order,
with which modules.  The modules are loaded once (``load_modules``) and shared by
every pipeline of a model folder (T2V and V2V use the same weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from fastvideo.configs.geometry import LatentGeometry
from fastvideo.configs.pipelines.base import PipelineConfig, torch_dtype
from fastvideo.configs.registry import ModelInfo
from fastvideo.pipelines.forward_batch import ForwardBatch
from fastvideo.pipelines.offload import Offloader
from fastvideo.pipelines.stages.base import PipelineStage


@dataclass
class LoadedModules:
    """Every component of a model folder, ready on its device."""

    info: ModelInfo
    config: PipelineConfig
    device: torch.device
    modules: dict[str, Any] = field(default_factory=dict)
    offloader: Offloader | None = None
    geometry: LatentGeometry | None = None  # the family's, from the folder's configs

    @property
    def experts(self) -> list[tuple[str, Any]]:
        """The denoisers, high noise first: ``[(component name, module), ...]``."""
        return [(name, self.modules[name]) for name in self.info.experts if self.modules.get(name) is not None]

    def __getitem__(self, name: str) -> Any:
        return self.modules[name]

    def get(self, name: str) -> Any:
        return self.modules.get(name)

    def offload_for(self, flag: str) -> Offloader | None:
        return self.offloader if getattr(self.config, flag) else None


_PRECISION_FIELD = {
    "transformer": "dit_precision", "vae": "vae_precision", "text_encoder": "text_encoder_precision",
    "image_encoder": "image_encoder_precision", "transformer_2": "dit_precision",
}
_OFFLOAD_FIELD = {
    "transformer": "dit_cpu_offload", "vae": "vae_cpu_offload", "text_encoder": "text_encoder_cpu_offload",
    "image_encoder": "image_encoder_cpu_offload", "transformer_2": "dit_cpu_offload",
}


def load_modules(info: ModelInfo, config: PipelineConfig, device: torch.device, log=None) -> LoadedModules:
    """Load each component listed in model_index.json at its precision; offloaded ones stay on the CPU."""
    from fastvideo.models.loader.component_loader import load_component, read_json

    loaded = LoadedModules(info, config, device, offloader=Offloader(device, pin_memory=config.pin_cpu_memory),
                           geometry=info.geometry())
    for name in info.components:
        if name == "scheduler":
            loaded.modules[name] = read_json(info.path / "scheduler" / "scheduler_config.json")
            continue
        precision = getattr(config, _PRECISION_FIELD[name]) if name in _PRECISION_FIELD else None
        offloaded = name in _OFFLOAD_FIELD and getattr(config, _OFFLOAD_FIELD[name])
        experts = tuple(getattr(info, "experts", ("transformer",)))
        # FSDP: each DiT (both of Wan2.2's experts) loads on the CPU; fastvideo.distributed.fsdp.shard_dit moves
        # each rank's shard over.
        sharded = name in experts and getattr(config, "use_fsdp_inference", False)
        target = torch.device("cpu") if offloaded or sharded else device
        if log:
            log(f"loading {name} ({precision or 'files'}{', offloaded to CPU' if offloaded else ''})")
        if name in experts and config.weight_storage != "bf16":  # fp8 / GGUF DiT weights (memory_modes)
            from fastvideo.pipelines.memory_modes import load_denoiser

            module = load_denoiser(info, name, config, target, torch_dtype(precision), name == experts[0])
        else:
            module = load_component(str(info.path), name, device=target,
                                    dtype=torch_dtype(precision) if precision else None)
        loaded.modules[name] = module
    if config.vae_tiling and "vae" in loaded.modules:
        loaded.modules["vae"].enable_tiling()
    if device.type == "cuda" and hasattr(loaded.modules.get("vae"), "use_channels_last"):
        loaded.modules["vae"].use_channels_last()  # NDHWC: cuDNN's 3D convs skip two transposes each
    if config.compile_dit:
        from fastvideo.pipelines.compile import compile_dit_blocks

        for _, expert in loaded.experts:
            compile_dit_blocks(expert)
    from fastvideo.pipelines.memory_modes import apply_plan

    apply_plan(loaded, log)  # memory_mode: block streaming, FFN chunking, the DiT's placement
    return loaded


class ComposedPipeline:
    """Subclasses implement ``create_stages`` from the loaded modules."""

    task = "t2v"

    def __init__(self, loaded: LoadedModules):
        self.loaded = loaded
        self.config = loaded.config
        self.stages: list[PipelineStage] = self.create_stages()

    def create_stages(self) -> list[PipelineStage]:
        raise NotImplementedError

    def stage(self, name: str) -> PipelineStage:
        return next(s for s in self.stages if s.name == name)

    def forward(self, batch: ForwardBatch) -> ForwardBatch:
        verify = self.config.stage_verification
        for stage in self.stages:
            batch = stage(batch, verify=verify)
        return batch

    def validate(self, batch: ForwardBatch) -> ForwardBatch:
        """Run only the input validation stage (the first): fail before model work."""
        return self.stages[0](batch, verify=self.config.stage_verification)

"""Pipeline configs: how a model folder is run (precision, offload, shift, text length).

A ``PipelineConfig`` is plain data with a JSON round trip, so the studio can
store and send it.  Family presets subclass it (``configs/pipelines/<family>.py``);
``VideoGenerator.from_pretrained(path, **overrides)`` applies overrides by field name.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

PRECISIONS = ("fp32", "bf16", "fp16")
MEMORY_MODES = ("auto", "resident", "model_offload", "block_stream")
WEIGHT_STORAGES = ("bf16", "fp8")


@dataclass
class PipelineConfig:
    # Per-component precision: "fp32", "bf16" or "fp16".
    dit_precision: str = "bf16"
    vae_precision: str = "fp32"
    text_encoder_precision: str = "bf16"
    image_encoder_precision: str = "fp32"
    # Default flow shift of the schedule (SamplingParam.flow_shift overrides it per request).
    flow_shift: float = 3.0
    # Text tokens the encoder sees (prompts are padded/truncated to this).
    text_len: int = 512
    # Memory: VAE spatial tiling, and keeping components on the CPU while idle.
    vae_tiling: bool = False
    vae_cpu_offload: bool = False
    text_encoder_cpu_offload: bool = False
    image_encoder_cpu_offload: bool = False
    dit_cpu_offload: bool = False
    # With CPU offload on CUDA: keep the offloaded components' host copies in pinned (page-locked) memory,
    # so moves to the GPU are faster and asynchronous (FastVideo's pin_cpu_memory). No-op without CUDA.
    pin_cpu_memory: bool = False
    # Memory mode (docs/memory.md): "auto" (chosen from free GPU memory and the request size), "resident"
    # (everything on the device), "model_offload" (each component on the device only while it runs) or
    # "block_stream" (the DiT's blocks in pinned CPU memory, streamed to the device a few blocks ahead).
    memory_mode: str = "auto"
    # How the DiT's linear weights are stored: "bf16" (unquantised, at dit_precision), "fp8" (e4m3 with
    # per-output-channel scales, computed at dit_precision) or the path of a GGUF file of the DiT (Q8_0, Q6_K,
    # Q5_K, Q4_K as ComfyUI users download them), dequantised layer by layer.
    weight_storage: str = "bf16"
    # block_stream: DiT blocks in flight on the device (None: chosen from free memory, at least 2).
    stream_slots: int | None = None
    # Run the DiT's FFN and output head over this many tokens at a time (None: all at once); exact.
    ffn_chunk_tokens: int | None = None
    # Batch the conditional and unconditional passes into one forward when CFG is on.
    batch_cfg: bool = True
    # Attention backend for self-attention (None: FASTVIDEO_ATTENTION_BACKEND or TORCH_SDPA).
    attention_backend: str | None = None
    # Parallelism (filled by the executor): sequence-parallel and CFG-parallel sizes.
    sp_size: int = 1
    cfg_parallel: bool | None = None  # None: choose by GPU count
    # Shard the DiT's weights over the ranks with FSDP2 (FastVideo's use_fsdp_inference): each rank keeps 1/N of
    # them and gathers a block's weights just before the block runs (docs/multigpu.md). One rank: no-op.
    use_fsdp_inference: bool = False
    # Compile the DiT's blocks with torch.compile (first generation pays the compile time).
    compile_dit: bool = False
    # Check each stage's inputs and outputs.
    stage_verification: bool = True
    # Latent -> RGB preview factors (16 x 3 matrix and 3 biases) for live previews.
    preview_factors: list[list[float]] | None = None
    preview_bias: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("dit_precision", "vae_precision", "text_encoder_precision", "image_encoder_precision"):
            value = getattr(self, name)
            if value not in PRECISIONS:
                raise ValueError(f"{name} must be one of {PRECISIONS}, got {value!r}")
        if self.memory_mode not in MEMORY_MODES:
            raise ValueError(f"memory_mode must be one of {MEMORY_MODES}, got {self.memory_mode!r}")
        if not isinstance(self.weight_storage, str) or not (
                self.weight_storage in WEIGHT_STORAGES or self.weight_storage.lower().endswith(".gguf")):
            raise ValueError(f"weight_storage must be one of {WEIGHT_STORAGES} or the path of a .gguf file of the "
                             f"DiT, got {self.weight_storage!r}")
        for name in ("stream_slots", "ffn_chunk_tokens"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} must be a whole number >= 1 or None, got {value!r}")
        if self.flow_shift <= 0:
            raise ValueError(f"flow_shift must be positive, got {self.flow_shift}")

    @classmethod
    def from_pretrained(cls, model_path: str) -> PipelineConfig:
        """The pipeline defaults of a model folder or repo id's family (FastVideo's
        ``PipelineConfig.from_pretrained``); pass the result, changed, as
        ``VideoGenerator.from_pretrained(model_path, pipeline_config=config)``."""
        from fastvideo.configs.registry import resolve_model

        return resolve_model(model_path).pipeline_config_cls()

    # FastVideo's name: one precision per text encoder (Wan has one).
    @property
    def text_encoder_precisions(self) -> tuple[str, ...]:
        return (self.text_encoder_precision,)

    @text_encoder_precisions.setter
    def text_encoder_precisions(self, value: Any) -> None:
        values = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else [value]
        if len(values) != 1 or not isinstance(values[0], str):
            raise ValueError(f"text_encoder_precisions={value!r}: this pipeline has one text encoder; "
                             f"give one precision, e.g. ['bf16']")
        precision = values[0]
        if precision not in PRECISIONS:
            raise ValueError(f"text_encoder_precisions must hold one of {PRECISIONS}, got {value!r}")
        self.text_encoder_precision = precision

    def update(self, **overrides: Any) -> PipelineConfig:
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown pipeline option(s) {unknown}; options: {', '.join(sorted(names))}")
        values = {**dataclasses.asdict(self), **overrides}
        return type(self)(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps({"_class_name": type(self).__name__, **self.to_dict()}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> PipelineConfig:
        data = json.loads(text)
        data.pop("_class_name", None)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {unknown}")
        return cls(**data)


def torch_dtype(precision: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]

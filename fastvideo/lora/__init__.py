"""LoRA for the Wan DiT: read Diffusers/PEFT, official-name and kohya LoRAs (and full-rank ``diff`` /
``diff_b`` patches), map their keys onto our parameters through the mapping engine, merge them into the
weights (several at once, each with a strength) and unmerge them exactly.

    from fastvideo.lora import apply_loras
    reports = apply_loras(dit, [("style.safetensors", 1.0), ("speed.safetensors", 0.5)])
    apply_loras(dit, [])  # back to the loaded weights, bit for bit

Torch is imported by :mod:`fastvideo.lora.merge` only (reading tensors, merging); formats, planning
(:mod:`fastvideo.lora.plan`, which also plans a safetensors *header*: ``plan_entries(read_lora_header(path),
...)``) and reports are plain Python, so the studio's inspector uses them.
"""

from fastvideo.lora.formats import (
    FORMATS,
    LoraError,
    LoraFileNotFound,
    detect_format,
    normalize_loras,
    parse_lora_arg,
    split_key,
)
from fastvideo.lora.plan import HeaderTensor, plan_entries, read_lora_header
from fastvideo.lora.report import LoraKeyRow, LoraReport

__all__ = [
    "FORMATS", "HeaderTensor", "LoraError", "LoraFileNotFound", "LoraKeyRow", "LoraManager", "LoraReport",
    "apply_loras", "detect_format", "lora_manager", "normalize_loras", "parse_lora_arg", "plan_entries", "plan_lora",
    "read_lora_file", "read_lora_header", "split_key",
]

_LAZY = {"LoraManager", "apply_loras", "lora_manager", "plan_lora", "read_lora_file"}


def __getattr__(name):  # torch-free import of the package; merge (torch) loads on first use
    if name in _LAZY:
        from fastvideo.lora import merge

        return getattr(merge, name)
    raise AttributeError(f"module 'fastvideo.lora' has no attribute {name!r}")

"""A LoRA file against a model, key by key, without torch: the weight-mapping inspector's LoRA view.

The LoRA's safetensors header is read in process (``fastvideo.lora.read_lora_header``: names, shapes and the
``alpha`` scalars, no other tensor data) and planned with the engine's own torch-free planner
(``fastvideo.lora.plan_entries``, the code ``generate_video(loras=...)`` runs) against our DiT's parameter
shapes -- which the inference process reports once (``inspect`` with ``include_inputs``: the model built on
the meta device) -- and the arch config's rules (read here from the registry and ``transformer/config.json``).
The result is the engine's :class:`~fastvideo.lora.report.LoraReport`: every key with its target, the rule
chain that mapped it, rank, alpha and status.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastvideo.lora.formats import LoraError
from fastvideo.lora.plan import plan_entries, read_lora_header
from fastvideo.lora.report import LoraReport

#: how the LoRA view's message counts the keys that do not apply
STATUS_WORDS = {"unmatched": "unmatched (no parameter of that name)", "shape_mismatch": "with the wrong shape",
                "incomplete": "incomplete", "unsupported": "unsupported", "not_lora": "not LoRA keys"}
#: the component a LoRA applies to (the DiT)
LORA_COMPONENT = "transformer"


def transformer_arch_config(model_path: str) -> Any:
    """The DiT's arch config of a Diffusers model folder (its mapping rules and hyper-parameters), torch-free."""
    from fastvideo.configs.registry import describe_folder, import_string

    folder = Path(model_path).expanduser()
    info = describe_folder(folder)
    component = info.component_class(LORA_COMPONENT)
    if not component.arch_config:
        raise LoraError(f"{folder}: the {LORA_COMPONENT} has no arch config to map LoRA names with")
    cls = import_string(component.arch_config)
    config = folder / LORA_COMPONENT / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}
    except (OSError, ValueError) as exc:
        raise LoraError(f"{config}: cannot read the DiT's config ({exc})") from None
    return cls.from_dict(data if isinstance(data, dict) else {})


@dataclass
class LoraInspection:
    """What the LoRA view shows: the report (None when the LoRA could not be planned at all) and the engine's
    message (the strict error a generation would raise, or why nothing could be planned)."""

    lora_path: str
    model_path: str
    report: LoraReport | None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.report is not None and self.report.ok


def inspect_lora(lora_path: str, model_path: str, target_shapes: dict[str, Any], arch_config: Any = None,
                 strength: float = 1.0) -> LoraInspection:
    """Plan ``lora_path`` against ``target_shapes`` (our DiT's parameter name -> shape) and report every key.

    Never raises for a LoRA problem: a LoRA that does not fit at all (not a LoRA, another architecture or
    size) comes back with ``report=None`` and the engine's message; one with keys that would fail a strict
    generation comes back with its full report and that error message."""
    params = {name: (tuple(getattr(shape, "shape", shape)), None) for name, shape in target_shapes.items()}
    try:
        config = arch_config if arch_config is not None else transformer_arch_config(model_path)
        lf = read_lora_header(lora_path)
        plan = plan_entries(lf, strength, params, config, strict=False)
    except LoraError as exc:
        return LoraInspection(lora_path, model_path, getattr(exc, "report", None), str(exc))
    except Exception as exc:  # a model folder the registry does not know, ...
        return LoraInspection(lora_path, model_path, None, f"{type(exc).__name__}: {exc}")
    report = plan.report
    problems = ", ".join(f"{n} {STATUS_WORDS.get(s, s)}" for s, n in report.counts.items() if s in STATUS_WORDS)
    message = "" if report.ok else (f"A generation with this LoRA fails (Strict): {problems}. With Strict off "
                                    "these keys are skipped and the rest is applied. Select a key for its details.")
    return LoraInspection(lora_path, model_path, report, message)

"""Flow-matching schedulers and the Diffusers ``_class_name`` -> class map."""

from __future__ import annotations

from typing import Any

from fastvideo.models.schedulers.base import (
    FlowScheduler,
    SchedulerConfigError,
    get_timesteps_for_strength,
)
from fastvideo.models.schedulers.euler import FlowMatchEulerDiscreteScheduler
from fastvideo.models.schedulers.unipc import FlowUniPCMultistepScheduler

# Diffusers scheduler ``_class_name`` -> our class.
SCHEDULERS: dict[str, type[FlowScheduler]] = {
    "UniPCMultistepScheduler": FlowUniPCMultistepScheduler,
    "FlowUniPCMultistepScheduler": FlowUniPCMultistepScheduler,
    "FlowMatchEulerDiscreteScheduler": FlowMatchEulerDiscreteScheduler,
}


def scheduler_from_config(config: dict[str, Any], **overrides: Any) -> FlowScheduler:
    """Build the scheduler a Diffusers ``scheduler_config.json`` dict names (``_class_name``)."""
    name = config.get("_class_name")
    if name not in SCHEDULERS:
        raise SchedulerConfigError(f"unsupported scheduler class {name!r}; supported: {sorted(SCHEDULERS)}")
    return SCHEDULERS[name].from_config(config, **overrides)


__all__ = [
    "SCHEDULERS",
    "FlowMatchEulerDiscreteScheduler",
    "FlowScheduler",
    "FlowUniPCMultistepScheduler",
    "SchedulerConfigError",
    "get_timesteps_for_strength",
    "scheduler_from_config",
]

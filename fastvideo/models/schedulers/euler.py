"""Flow-matching Euler sampler (Diffusers' ``FlowMatchEulerDiscreteScheduler`` for Wan's options).

Each step is ``x <- x + (s_next - s) * v``.  The sigma grid reproduces
Diffusers' construction exactly, including its quirk that the shift is
applied twice to the smallest sigma: the training grid
``shift(linspace(1, T, T)[::-1] / T)`` gives ``sigma_max`` and ``sigma_min``;
inference uses ``shift(linspace(T * sigma_max, T * sigma_min, N) / T)``, then
a final 0.  Model timesteps are ``s * T`` (floats).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from fastvideo.models.schedulers.base import (
    FlowScheduler,
    SchedulerConfigError,
    check_known,
    check_no_unknown,
    shift_sigmas,
    stretch_to_terminal,
)

_IGNORED_KEYS = {
    # only used with use_dynamic_shifting (which we reject)
    "base_shift", "max_shift", "base_image_seq_len", "max_image_seq_len", "time_shift_type",
    "_class_name", "_diffusers_version", "_name_or_path",
}


class FlowMatchEulerDiscreteScheduler(FlowScheduler):

    # The config key that holds the flow shift (set per request by the pipeline).
    shift_config_key: ClassVar[str] = "shift"
    config_class_names: ClassVar[tuple[str, ...]] = ("FlowMatchEulerDiscreteScheduler",)

    def __init__(self, num_train_timesteps: int = 1000, shift: float = 1.0, shift_terminal: float | None = None):
        super().__init__(num_train_timesteps)
        if float(shift) <= 0:
            raise SchedulerConfigError(f"FlowMatchEuler: shift must be > 0, got {shift}")
        if shift_terminal is not None and not 0.0 <= float(shift_terminal) < 1.0:
            raise SchedulerConfigError(f"FlowMatchEuler: shift_terminal must be in [0, 1), got {shift_terminal}")
        self.shift = float(shift)
        self.shift_terminal = None if shift_terminal is None else float(shift_terminal)
        # Training grid (float32 like Diffusers), only its ends are used.
        train = np.linspace(1, self.num_train_timesteps, self.num_train_timesteps, dtype=np.float32)[::-1]
        train_sigmas = torch.from_numpy(train.copy()) / self.num_train_timesteps
        train_sigmas = self.shift * train_sigmas / (1 + (self.shift - 1) * train_sigmas)
        self.sigma_max = float(train_sigmas[0])
        self.sigma_min = float(train_sigmas[-1])

    @classmethod
    def from_config(cls, config: dict[str, Any], **overrides: Any) -> FlowMatchEulerDiscreteScheduler:
        cfg = {**config, **overrides}
        name = "FlowMatchEulerDiscreteScheduler"
        check_known(name, cfg, {
            "use_dynamic_shifting": (False,),
            "invert_sigmas": (False,),
            "use_karras_sigmas": (False,),
            "use_exponential_sigmas": (False,),
            "use_beta_sigmas": (False,),
            "stochastic_sampling": (False,),
        })
        args = dict(
            num_train_timesteps=cfg.get("num_train_timesteps", 1000),
            shift=cfg.get("shift", 1.0),
            shift_terminal=cfg.get("shift_terminal"),
        )
        known = set(args) | _IGNORED_KEYS | {
            "use_dynamic_shifting", "invert_sigmas", "use_karras_sigmas", "use_exponential_sigmas",
            "use_beta_sigmas", "stochastic_sampling",
        }
        check_no_unknown(name, cfg, known)
        return cls(**args)

    @property
    def config(self) -> dict[str, Any]:
        return {
            "_class_name": "FlowMatchEulerDiscreteScheduler",
            "num_train_timesteps": self.num_train_timesteps,
            "shift": self.shift,
            "shift_terminal": self.shift_terminal,
            "use_dynamic_shifting": False,
        }

    def _make_sigmas(self, num_inference_steps: int) -> tuple[np.ndarray, np.ndarray]:
        T = self.num_train_timesteps
        timesteps = np.linspace(self.sigma_max * T, self.sigma_min * T, num_inference_steps)
        sigmas = shift_sigmas(timesteps / T, self.shift)
        if self.shift_terminal:
            sigmas = stretch_to_terminal(sigmas, self.shift_terminal)
        sigmas = sigmas.astype(np.float32)
        timesteps = sigmas * np.float32(T)  # float32 product, as Diffusers
        return np.concatenate([sigmas, np.zeros(1, np.float32)]), timesteps

    def step(self, model_output: torch.Tensor, timestep: float | torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        self._require_timesteps()
        if self._step_index is None:
            self._init_step_index(timestep)
        i = self._step_index
        if i >= self.num_inference_steps:
            raise RuntimeError("FlowMatchEuler: stepped past the last timestep; call set_timesteps() or reset()")
        dt = self.sigmas[i + 1] - self.sigmas[i]  # float32, as the reference
        prev = sample.float() + dt.to(sample.device) * model_output.float()
        self._step_index = i + 1
        # Diffusers casts the result to the model output's dtype; we keep the sample's
        # (identical in fp32, and low-precision model outputs do not truncate fp32 latents).
        return prev.to(sample.dtype)

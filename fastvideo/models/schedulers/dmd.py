"""Few-step DMD sampling (FastVideo's ``DmdDenoisingStage``, used by its distilled FastWan checkpoints).

A DMD-distilled model (and the step-distillation LoRAs of lightx2v / Self-Forcing) is run on a
few fixed model timesteps, e.g. ``[1000, 757, 522]`` for FastWan2.1, without classifier-free
guidance.  Each step:

* the model's velocity ``v`` at timestep ``t`` gives the clean estimate ``x0 = x - sigma(t) * v``
  (computed in float64, cast back to the prediction's dtype);
* before the last step the sample is re-noised to the next timestep with fresh Gaussian noise:
  ``x = (1 - sigma(t_next)) * x0 + sigma(t_next) * noise``; after the last step ``x = x0``.

``sigma(t)`` is read from the 1000-entry shifted training grid of a flow-matching Euler
scheduler (``shift`` 8 in FastVideo's stage): the sigma whose ``sigma * 1000`` is nearest to
``t``.  With ``warp=True`` (FastVideo's ``warp_denoising_step``, lightx2v's step-distill
scheduler) the listed timesteps are first moved onto that grid (``grid[1000 - t]``), so the
model sees the shifted timesteps.

The noise continues the request seed's CPU generator after the initial latent noise (FastVideo
draws both from ``batch.generator``): the first :meth:`step` re-creates that stream by drawing the
initial noise's shape once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from fastvideo.models.schedulers.base import FlowScheduler, SchedulerConfigError

#: FastVideo's DmdDenoisingStage builds its scheduler with this shift, whatever the model's.
DMD_SHIFT = 8.0
#: FastWan2.1 / FastWan2.2-TI2V's dmd_denoising_steps.
FASTWAN_TIMESTEPS = (1000, 757, 522)


def default_dmd_timesteps(num_steps: int, num_train_timesteps: int = 1000) -> list[int]:
    """Evenly spaced timesteps from ``T`` down: 4 steps -> [1000, 750, 500, 250] (FastVideo's 4-step lists)."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    return [int(round(num_train_timesteps * (1 - i / num_steps))) for i in range(num_steps)]


def check_dmd_timesteps(timesteps: Sequence[Any], num_train_timesteps: int = 1000) -> str | None:
    """Why ``timesteps`` cannot be a DMD schedule (None when they can)."""
    if not isinstance(timesteps, (list, tuple)) or not timesteps:
        return "dmd_denoising_steps must be a non-empty list of whole numbers such as [1000, 757, 522]"
    if any(isinstance(t, bool) or not isinstance(t, int) for t in timesteps):
        return f"dmd_denoising_steps must hold whole numbers, got {list(timesteps)!r}"
    if any(not 0 < t <= num_train_timesteps for t in timesteps):
        return f"dmd_denoising_steps must lie in (0, {num_train_timesteps}], got {list(timesteps)}"
    if any(b >= a for a, b in zip(timesteps, timesteps[1:])):
        return f"dmd_denoising_steps must be strictly decreasing, got {list(timesteps)}"
    return None


class DMDScheduler(FlowScheduler):
    """Fixed-timestep x0-and-renoise sampler; :meth:`set_timesteps` takes the step count of the list."""

    config_class_names: ClassVar[tuple[str, ...]] = ()
    shift_config_key: ClassVar[str] = "shift"

    def __init__(self, denoising_steps: Sequence[int] = FASTWAN_TIMESTEPS, shift: float = DMD_SHIFT,
                 warp: bool = False, seed: int | None = None, num_train_timesteps: int = 1000):
        super().__init__(num_train_timesteps)
        problem = check_dmd_timesteps(list(denoising_steps), self.num_train_timesteps)
        if problem:
            raise SchedulerConfigError(problem)
        if float(shift) <= 0:
            raise SchedulerConfigError(f"DMD: shift must be > 0, got {shift}")
        self.denoising_steps = [int(t) for t in denoising_steps]
        self.shift = float(shift)
        self.warp = bool(warp)
        self.seed = seed
        T = self.num_train_timesteps
        # The training grid of FastVideo's FlowMatchEulerDiscreteScheduler (float32, as there).
        grid = torch.from_numpy(np.linspace(1, T, T, dtype=np.float32)[::-1].copy()) / T
        self.grid_sigmas = self.shift * grid / (1 + (self.shift - 1) * grid)
        self.grid_timesteps = self.grid_sigmas * T
        self.generator: torch.Generator | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any], **overrides: Any) -> DMDScheduler:
        cfg = {**config, **overrides}
        return cls(cfg.get("denoising_steps", FASTWAN_TIMESTEPS), cfg.get("shift", DMD_SHIFT),
                   cfg.get("warp", False), cfg.get("seed"), cfg.get("num_train_timesteps", 1000))

    @property
    def config(self) -> dict[str, Any]:
        return {"_class_name": "DMDScheduler", "denoising_steps": list(self.denoising_steps), "shift": self.shift,
                "warp": self.warp, "num_train_timesteps": self.num_train_timesteps}

    def grid_index(self, timestep: float | torch.Tensor) -> int:
        """Index of the grid timestep nearest ``timestep`` (FastVideo's argmin lookup, float64)."""
        diff = (self.grid_timesteps.double() - float(timestep)).abs()
        return int(torch.argmin(diff))

    def model_timesteps(self) -> list[float]:
        """The timesteps handed to the model: the list, or its warped grid values."""
        if not self.warp:
            return [float(t) for t in self.denoising_steps]
        padded = torch.cat([self.grid_timesteps, torch.zeros(1)])
        return [float(padded[self.num_train_timesteps - t]) for t in self.denoising_steps]

    def _make_sigmas(self, num_inference_steps: int) -> tuple[np.ndarray, np.ndarray]:
        if num_inference_steps != len(self.denoising_steps):
            raise SchedulerConfigError(
                f"DMD: {num_inference_steps} steps asked for but the timestep list {self.denoising_steps} has "
                f"{len(self.denoising_steps)}: set num_inference_steps={len(self.denoising_steps)} or change the list")
        timesteps = self.model_timesteps()
        sigmas = [float(self.grid_sigmas[self.grid_index(t)]) for t in timesteps] + [0.0]
        return np.asarray(sigmas, np.float32), np.asarray(timesteps, np.float32)

    def reset(self) -> None:
        super().reset()
        self.generator = None

    def _noise(self, like: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        if self.generator is None:
            self.generator = torch.Generator("cpu")
            if self.seed is None:
                self.generator.seed()
            else:  # continue the seed's stream after the initial latent noise (latent_preparation)
                self.generator.manual_seed(int(self.seed))
                torch.randn(like.shape, generator=self.generator, dtype=torch.float32)
        return torch.randn(like.shape, generator=self.generator, dtype=dtype).to(like.device)

    def step(self, model_output: torch.Tensor, timestep: float | torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        self._require_timesteps()
        if self._step_index is None:
            self._init_step_index(timestep)
        i = self._step_index
        if i >= self.num_inference_steps:
            raise RuntimeError("DMD: stepped past the last timestep; call set_timesteps() or reset()")
        dtype = model_output.dtype
        sigma = float(self.grid_sigmas.double()[self.grid_index(self.timesteps[i])])
        x0 = (sample.double() - sigma * model_output.double()).to(dtype)
        self._step_index = i + 1
        if i == self.num_inference_steps - 1:
            return x0.to(sample.dtype)
        noise = self._noise(x0, x0.dtype)
        s_next = self.grid_sigmas[self.grid_index(self.timesteps[i + 1])].to(x0.device)  # float32, as add_noise
        out = (1 - s_next) * x0 + s_next * noise
        return out.to(noise.dtype).to(sample.dtype)


#: SamplingParam.sampler values (None: the model folder's scheduler).
SAMPLERS = ("dmd",)


def scheduler_for_request(sp: Any) -> DMDScheduler:
    """The scheduler a request's ``sampler`` names (``sp.sampler`` must be one of :data:`SAMPLERS`).

    DMD: ``sp.dmd_denoising_steps`` (or evenly spaced from 1000 for ``sp.num_inference_steps``), the shift
    ``sp.flow_shift`` or FastVideo's fixed 8, the request's seed for the re-noising stream."""
    if sp.sampler not in SAMPLERS:
        raise SchedulerConfigError(f"unknown sampler {sp.sampler!r}; choose from {', '.join(SAMPLERS)} "
                                   "(or None for the model's own scheduler)")
    steps = sp.dmd_denoising_steps or default_dmd_timesteps(sp.num_inference_steps)
    shift = sp.flow_shift if sp.flow_shift is not None else DMD_SHIFT
    return DMDScheduler(steps, shift=shift, warp=sp.dmd_warp_timesteps, seed=sp.seed)

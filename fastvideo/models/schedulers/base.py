"""Common interface of the flow-matching schedulers.

Flow matching (rectified flow) convention used by Wan:

* ``x_s = (1 - s) * x0 + s * noise`` for a noise level ``s`` ("sigma") in [0, 1],
* the model predicts the velocity ``v = noise - x0`` and is given ``t = s * 1000``,
* so ``x0 = x_s - s * v``.

A scheduler holds the sigma grid of one generation: ``sigmas`` has
``num_inference_steps + 1`` entries (the last is where sampling ends, 0 for
Wan) and ``timesteps`` has one model timestep per step.  ``step`` moves a sample
from ``sigmas[i]`` to ``sigmas[i + 1]``.  Multistep solvers keep history, so a
scheduler object serves one generation at a time: :meth:`set_timesteps` (or
:meth:`reset`) starts a fresh one.

Step indexing follows Diffusers: the first :meth:`step` call looks its
``timestep`` up in ``timesteps`` (so starting part-way, as video-to-video does,
works without extra calls) unless :meth:`set_begin_index` fixed the start.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch


class SchedulerConfigError(ValueError):
    """A scheduler config value this implementation does not support."""


def shift_sigmas(sigmas: np.ndarray, shift: float) -> np.ndarray:
    """Wan/SD3 time shift: ``shift * s / (1 + (shift - 1) * s)`` (identity for shift 1)."""
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def stretch_to_terminal(sigmas: np.ndarray, terminal: float) -> np.ndarray:
    """Rescale ``1 - s`` so that the last sigma becomes ``terminal`` (LTX-style ``shift_terminal``)."""
    one_minus = 1 - sigmas
    scale = one_minus[-1] / (1 - terminal)
    return 1 - one_minus / scale


def get_timesteps_for_strength(
    timesteps: torch.Tensor, num_inference_steps: int, strength: float, order: int = 1
) -> tuple[torch.Tensor, int]:
    """Keep the last ``int(num_inference_steps * strength)`` steps (video-to-video / img2img).

    Same rule as Diffusers' ``WanVideoToVideoPipeline.get_timesteps``: with 50
    steps and strength 0.7 the first 15 steps are skipped and 35 remain.
    Returns ``(timesteps_to_run, number_of_steps_to_run)``.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
    t_start = max(num_inference_steps - init_timestep, 0)
    return timesteps[t_start * order:], num_inference_steps - t_start


class FlowScheduler:
    """Base class: sigma grid, step index bookkeeping, noising helpers."""

    # Diffusers ``_class_name`` values this class reads.
    config_class_names: ClassVar[tuple[str, ...]] = ()
    # Model evaluations per step (1 for both samplers; used by the strength helper like Diffusers).
    order: ClassVar[int] = 1

    def __init__(self, num_train_timesteps: int = 1000):
        self.num_train_timesteps = int(num_train_timesteps)
        self.num_inference_steps: int | None = None
        self.sigmas: torch.Tensor = torch.empty(0)
        self.timesteps: torch.Tensor = torch.empty(0)
        self._step_index: int | None = None
        self._begin_index: int | None = None

    # ------------------------------------------------------------------ config
    @classmethod
    def from_config(cls, config: dict[str, Any], **overrides: Any) -> FlowScheduler:
        """Build from a Diffusers ``scheduler_config.json`` dict (``overrides`` win)."""
        raise NotImplementedError

    @property
    def config(self) -> dict[str, Any]:
        """The settings of this scheduler as a Diffusers-style config dict."""
        raise NotImplementedError

    # --------------------------------------------------------------- schedule
    def _make_sigmas(self, num_inference_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(sigmas[N+1] as float32, timesteps[N])`` for ``N`` steps."""
        raise NotImplementedError

    def set_timesteps(self, num_inference_steps: int, device: torch.device | str | None = None) -> None:
        """Build the sigma grid for ``num_inference_steps`` steps and reset all state."""
        if int(num_inference_steps) < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        sigmas, timesteps = self._make_sigmas(int(num_inference_steps))
        # Sigmas stay on the CPU (they are read as Python numbers); timesteps go where the model is.
        self.sigmas = torch.from_numpy(np.asarray(sigmas, dtype=np.float32).copy())
        self.timesteps = torch.from_numpy(np.asarray(timesteps, dtype=np.float32).copy()).to(device)
        self.num_inference_steps = len(self.timesteps)
        self.reset()

    def reset(self) -> None:
        """Forget the step position and any solver history (keeps the sigma grid)."""
        self._step_index = None
        self._begin_index = None

    @property
    def step_index(self) -> int | None:
        return self._step_index

    @property
    def begin_index(self) -> int | None:
        return self._begin_index

    def set_begin_index(self, begin_index: int = 0) -> None:
        """Start stepping at ``timesteps[begin_index]`` instead of looking the first timestep up."""
        self._begin_index = int(begin_index)

    def get_timesteps_for_strength(self, strength: float) -> tuple[torch.Tensor, int]:
        """Timesteps to run for video-to-video at ``strength`` (see :func:`get_timesteps_for_strength`).

        Also sets the begin index, so :meth:`step` and :meth:`scale_noise` start
        at the first kept step.
        """
        self._require_timesteps()
        kept, n = get_timesteps_for_strength(self.timesteps, self.num_inference_steps, strength, self.order)
        self.set_begin_index(self.num_inference_steps - n)
        return kept, n

    def index_for_timestep(self, timestep: float | torch.Tensor) -> int:
        """Position of ``timestep`` in ``timesteps`` (Diffusers rule: the 2nd match if repeated)."""
        value = float(timestep)
        matches = (self.timesteps.detach().cpu().double() == value).nonzero().flatten().tolist()
        if not matches:
            raise ValueError(f"timestep {value} is not in this scheduler's timesteps")
        return matches[1] if len(matches) > 1 else matches[0]

    def _require_timesteps(self) -> None:
        if self.num_inference_steps is None:
            raise RuntimeError(f"{type(self).__name__}: call set_timesteps() before stepping")

    def _init_step_index(self, timestep: float | torch.Tensor) -> None:
        if self._begin_index is not None:
            self._step_index = self._begin_index
        else:
            self._step_index = self.index_for_timestep(_scalar(timestep))

    def sigma_at(self, index: int) -> float:
        return float(self.sigmas[index])

    # ------------------------------------------------------------------- step
    def step(self, model_output: torch.Tensor, timestep: float | torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        """One solver step from ``sigmas[i]`` to ``sigmas[i + 1]``; returns the new sample."""
        raise NotImplementedError

    # ---------------------------------------------------------------- noising
    def _sigmas_for(self, timestep: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Sigma per batch item for noising, shaped to broadcast against ``like``."""
        ts = torch.as_tensor(timestep).detach().flatten().cpu()
        if self._begin_index is not None:
            index = self._step_index if self._step_index is not None else self._begin_index
            indices = [index] * max(ts.numel(), 1)
        else:
            indices = [self.index_for_timestep(t) for t in ts]
        sigma = self.sigmas[indices].to(device=like.device, dtype=like.dtype)
        return sigma.reshape(-1, *([1] * (like.ndim - 1)))

    def scale_noise(self, sample: torch.Tensor, timestep: float | torch.Tensor | None, noise: torch.Tensor,
                    *, sigma: float | torch.Tensor | None = None) -> torch.Tensor:
        """Forward process ``(1 - s) * sample + s * noise``.

        ``timestep`` is a scheduler timestep (scalar or one per batch item); it is
        looked up in ``timesteps`` unless a begin index is set (then that step's
        sigma is used, as Diffusers does).  Pass ``sigma=`` (scalar or one per
        batch item) instead to noise at an explicit level.
        """
        if sigma is not None:
            s = torch.as_tensor(sigma, dtype=sample.dtype, device=sample.device).flatten()
            s = s.reshape(-1, *([1] * (sample.ndim - 1)))
        else:
            self._require_timesteps()
            s = self._sigmas_for(timestep, sample)
        return s * noise + (1.0 - s) * sample

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: float | torch.Tensor) -> torch.Tensor:
        """Diffusers-style argument order for :meth:`scale_noise`."""
        self._require_timesteps()
        sigma = self._sigmas_for(timesteps, original_samples)
        return (1.0 - sigma) * original_samples + sigma * noise


def _scalar(timestep: float | torch.Tensor) -> float:
    if isinstance(timestep, torch.Tensor):
        if timestep.numel() == 0:
            raise ValueError("empty timestep tensor")
        return float(timestep.flatten()[0])
    return float(timestep)


def check_known(cls_name: str, config: dict[str, Any], allowed: dict[str, Any]) -> None:
    """Reject config values that would change behaviour we do not implement.

    ``allowed`` maps a key to a predicate (or a tuple of accepted values).  Keys
    missing from the config are fine (defaults apply).
    """
    for key, ok in allowed.items():
        if key not in config:
            continue
        value = config[key]
        good = ok(value) if callable(ok) else value in ok
        if not good:
            raise SchedulerConfigError(f"{cls_name}: unsupported {key}={value!r}")


def check_no_unknown(cls_name: str, config: dict[str, Any], known: set[str]) -> None:
    """Refuse config keys this scheduler does not read (a silent ignore could change the schedule)."""
    unknown = sorted(set(config) - known)
    if unknown:
        raise SchedulerConfigError(f"{cls_name}: unknown config keys {unknown}")

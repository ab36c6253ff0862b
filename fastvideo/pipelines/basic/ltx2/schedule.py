"""LTX-2's sigma schedule and Euler step (Diffusers' FlowMatchEulerDiscreteScheduler with dynamic shifting).

``sigmas = linspace(1, 1/N, N)`` (or given), shifted with ``mu = calculate_shift(video tokens)`` by the
exponential (or linear) time shift ``e^mu / (e^mu + (1/s - 1))``, optionally stretched so the last sigma is
``shift_terminal``, then a final 0.  A step is ``x + (s_next - s) * v`` in float32.  Same numpy float32
arithmetic as the reference, so the grids match to the bit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

_KNOWN = {
    "num_train_timesteps", "shift", "use_dynamic_shifting", "time_shift_type", "base_shift", "max_shift",
    "base_image_seq_len", "max_image_seq_len", "shift_terminal", "invert_sigmas", "stochastic_sampling",
    "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas",
}
_MUST_BE_OFF = ("invert_sigmas", "stochastic_sampling", "use_karras_sigmas", "use_exponential_sigmas",
                "use_beta_sigmas")


def calculate_shift(seq_len: int, base_seq_len: int = 1024, max_seq_len: int = 4096, base_shift: float = 0.95,
                    max_shift: float = 2.05) -> float:
    m = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    return seq_len * m + (base_shift - m * base_seq_len)


class LTX2Schedule:
    """Sigmas and timesteps of one request, and the Euler step over them."""

    def __init__(self, config: dict[str, Any]):
        unknown = sorted(k for k in config if not k.startswith("_") and k not in _KNOWN)
        if unknown:
            raise ValueError(f"LTX-2 scheduler_config.json: unknown keys {unknown}")
        on = [k for k in _MUST_BE_OFF if config.get(k)]
        if on:
            raise ValueError(f"LTX-2 scheduler_config.json: {on} are not supported (the LTX-2 models use none)")
        self.config = dict(config)
        self.num_train_timesteps = int(config.get("num_train_timesteps", 1000))
        self.sigmas: torch.Tensor | None = None
        self.timesteps: torch.Tensor | None = None

    def mu(self, video_tokens: int) -> float:
        c = self.config
        return calculate_shift(video_tokens, c.get("base_image_seq_len", 1024), c.get("max_image_seq_len", 4096),
                               c.get("base_shift", 0.95), c.get("max_shift", 2.05))

    def set_sigmas(self, num_steps: int, video_tokens: int, sigmas: list[float] | None = None, device=None):
        c = self.config
        s = np.linspace(1.0, 1 / num_steps, num_steps) if sigmas is None else sigmas
        s = np.array(s).astype(np.float32)
        if c.get("use_dynamic_shifting"):
            mu = self.mu(video_tokens)
            if c.get("time_shift_type", "exponential") == "exponential":
                s = math.exp(mu) / (math.exp(mu) + (1 / s - 1) ** 1.0)
            else:
                s = mu / (mu + (1 / s - 1) ** 1.0)
        else:
            shift = float(c.get("shift", 1.0))
            s = shift * s / (1 + (shift - 1) * s)
        terminal = c.get("shift_terminal")
        if terminal:
            one_minus = 1 - s
            s = 1 - (one_minus / (one_minus[-1] / (1 - terminal)))
        sig = torch.from_numpy(np.asarray(s)).to(dtype=torch.float32, device=device)
        self.timesteps = sig * self.num_train_timesteps
        self.sigmas = torch.cat([sig, torch.zeros(1, device=sig.device)])
        return self

    def step(self, velocity: torch.Tensor, i: int, sample: torch.Tensor) -> torch.Tensor:
        dt = self.sigmas[i + 1] - self.sigmas[i]
        return (sample.float() + dt * velocity).to(velocity.dtype)

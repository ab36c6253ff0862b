"""Flow-matching UniPC multistep sampler (Wan2.1's default scheduler).

Behaves like Diffusers' ``UniPCMultistepScheduler`` configured with
``prediction_type="flow_prediction", use_flow_sigmas=True`` (Wan's
``scheduler_config.json``), written for that case only:

* schedule: ``s = linspace(1, 1/T, N + 1)[:-1]`` (T = num_train_timesteps),
  shifted with ``flow_shift``, first sigma nudged to ``1 - 1e-6`` when it is 1,
  final sigma 0 (``final_sigmas_type="zero"``) or the last sigma ("sigma_min");
  model timesteps are ``int(s * T)`` (Diffusers hands the model integer
  timesteps: 999, 993, 986, ... for 50 steps with shift 3).
* each step converts the velocity to a data prediction ``x0 = x - s * v``,
  applies the UniC corrector to the incoming sample (using the new ``x0``),
  then the UniP predictor of order ``min(solver_order, steps so far + 1)``
  (order 1 on the last step when ``lower_order_final``).

In log-SNR terms, with ``alpha = 1 - s`` and ``lambda = log(alpha / s)``,
one step from ``s0`` to ``s_t`` with ``h = lambda_t - lambda_0`` is::

    x_t = (s_t / s0) * x - alpha_t * expm1(-h) * m0 - alpha_t * B(h) * sum_k rho_k * D_k

where ``m0`` is the latest ``x0`` prediction, ``D_k = (m_k - m0) / r_k`` are
scaled differences to older predictions (``r_k`` their relative lambda
offsets), ``B(h) = expm1(-h)`` ("bh2") or ``-h`` ("bh1") and ``rho`` solves the
small order-conditions system.  The scalar coefficients are computed in float64
from the float32 sigma grid.
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

# Config keys that only matter for non-flow (VP) schedules or that we ignore safely.
_IGNORED_KEYS = {
    "beta_start", "beta_end", "beta_schedule", "trained_betas", "rescale_betas_zero_snr",
    "steps_offset", "dynamic_thresholding_ratio", "sample_max_value", "sigma_min", "sigma_max",
    "time_shift_type", "_class_name", "_diffusers_version", "_name_or_path",
}


class FlowUniPCMultistepScheduler(FlowScheduler):

    # The config key that holds the flow shift (set per request by the pipeline).
    shift_config_key: ClassVar[str] = "flow_shift"
    config_class_names: ClassVar[tuple[str, ...]] = ("UniPCMultistepScheduler", "FlowUniPCMultistepScheduler")

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        flow_shift: float = 1.0,
        solver_order: int = 2,
        solver_type: str = "bh2",
        lower_order_final: bool = True,
        final_sigmas_type: str = "zero",
        disable_corrector: list[int] | tuple[int, ...] = (),
        shift_terminal: float | None = None,
        timestep_spacing: str = "linspace",
    ):
        super().__init__(num_train_timesteps)
        if solver_type in ("midpoint", "heun", "logrho"):
            solver_type = "bh2"  # Diffusers maps these names to bh2
        if solver_type not in ("bh1", "bh2"):
            raise SchedulerConfigError(f"UniPC: unsupported solver_type={solver_type!r} (bh1 or bh2)")
        if final_sigmas_type not in ("zero", "sigma_min"):
            raise SchedulerConfigError(f"UniPC: unsupported final_sigmas_type={final_sigmas_type!r} (zero or sigma_min)")
        if int(solver_order) < 1:
            raise SchedulerConfigError(f"UniPC: solver_order must be >= 1, got {solver_order}")
        if timestep_spacing not in ("linspace", "leading", "trailing"):
            raise SchedulerConfigError(f"UniPC: unsupported timestep_spacing={timestep_spacing!r}")
        if final_sigmas_type == "zero" and solver_type == "bh1":
            # Diffusers returns NaN on the final step here (0 * inf); refuse instead of guessing.
            raise SchedulerConfigError("UniPC: solver_type='bh1' with final_sigmas_type='zero' is not supported "
                                       "(the reference produces NaN on the last step)")
        if final_sigmas_type == "zero" and not lower_order_final and int(solver_order) > 1:
            raise SchedulerConfigError("UniPC: lower_order_final=False with final_sigmas_type='zero' is not supported "
                                       "(a multistep update into sigma 0 diverges; the reference returns inf)")
        if shift_terminal is not None and not 0.0 <= float(shift_terminal) < 1.0:
            raise SchedulerConfigError(f"UniPC: shift_terminal must be in [0, 1), got {shift_terminal}")
        self.flow_shift = float(flow_shift)
        self.solver_order = int(solver_order)
        self.solver_type = solver_type
        self.lower_order_final = bool(lower_order_final)
        self.final_sigmas_type = final_sigmas_type
        self.disable_corrector = [int(i) for i in disable_corrector]
        self.shift_terminal = None if shift_terminal is None else float(shift_terminal)
        # timestep_spacing only shapes VP timesteps; flow sigmas replace them.  Kept for config round trips.
        self.timestep_spacing = timestep_spacing
        self.reset()

    @classmethod
    def from_config(cls, config: dict[str, Any], **overrides: Any) -> FlowUniPCMultistepScheduler:
        cfg = {**config, **overrides}
        name = "UniPCMultistepScheduler"
        check_known(name, cfg, {
            "prediction_type": ("flow_prediction",),
            "use_flow_sigmas": (True,),
            "predict_x0": (True,),
            "thresholding": (False,),
            "use_karras_sigmas": (False,),
            "use_exponential_sigmas": (False,),
            "use_beta_sigmas": (False,),
            "use_dynamic_shifting": (False,),
            "solver_p": lambda v: v is None,
        })
        for key in ("prediction_type", "use_flow_sigmas"):
            if key not in cfg:
                raise SchedulerConfigError(f"{name}: config must set {key} "
                                           "(only prediction_type='flow_prediction', use_flow_sigmas=true is supported)")
        args = dict(
            num_train_timesteps=cfg.get("num_train_timesteps", 1000),
            flow_shift=cfg.get("flow_shift", 1.0),
            solver_order=cfg.get("solver_order", 2),
            solver_type=cfg.get("solver_type", "bh2"),
            lower_order_final=cfg.get("lower_order_final", True),
            final_sigmas_type=cfg.get("final_sigmas_type", "zero"),
            disable_corrector=cfg.get("disable_corrector") or (),
            shift_terminal=cfg.get("shift_terminal"),
            timestep_spacing=cfg.get("timestep_spacing", "linspace"),
        )
        known = set(args) | _IGNORED_KEYS | {
            "prediction_type", "use_flow_sigmas", "predict_x0", "thresholding", "use_karras_sigmas",
            "use_exponential_sigmas", "use_beta_sigmas", "use_dynamic_shifting", "solver_p",
        }
        check_no_unknown(name, cfg, known)
        return cls(**args)

    @property
    def config(self) -> dict[str, Any]:
        return {
            "_class_name": "UniPCMultistepScheduler",
            "num_train_timesteps": self.num_train_timesteps,
            "prediction_type": "flow_prediction",
            "use_flow_sigmas": True,
            "flow_shift": self.flow_shift,
            "solver_order": self.solver_order,
            "solver_type": self.solver_type,
            "predict_x0": True,
            "lower_order_final": self.lower_order_final,
            "final_sigmas_type": self.final_sigmas_type,
            "disable_corrector": list(self.disable_corrector),
            "shift_terminal": self.shift_terminal,
            "timestep_spacing": self.timestep_spacing,
        }

    # --------------------------------------------------------------- schedule
    def _make_sigmas(self, num_inference_steps: int) -> tuple[np.ndarray, np.ndarray]:
        T = self.num_train_timesteps
        sigmas = np.linspace(1.0, 1.0 / T, num_inference_steps + 1)[:-1]
        sigmas = shift_sigmas(sigmas, self.flow_shift)
        if self.shift_terminal:
            sigmas = stretch_to_terminal(sigmas, self.shift_terminal)
        if abs(sigmas[0] - 1.0) < 1e-6:
            sigmas[0] -= 1e-6  # keeps log(sigma) finite and alpha > 0 on the first steps
        # Integer model timesteps, as Diffusers passes them (truncation of s * T).
        timesteps = (sigmas * T).astype(np.int64).astype(np.float32)
        last = sigmas[-1] if self.final_sigmas_type == "sigma_min" else 0.0
        return np.concatenate([sigmas, [last]]).astype(np.float32), timesteps

    def reset(self) -> None:
        super().reset()
        self._x0_history: list[torch.Tensor] = []  # latest last
        self._last_sample: torch.Tensor | None = None
        self._last_order = 0

    # ------------------------------------------------------------------- math
    # Scalars are float32 0-dim tensors computed in the same order as Diffusers, so the
    # trajectories agree to float32 rounding (float64 scalars drift ~1e-6 over 50 steps).
    def _lambda(self, index: int) -> torch.Tensor:
        s = self.sigmas[index]
        return torch.log(1 - s) - torch.log(s)  # +inf at s = 0

    def _phi1_and_bh(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(expm1(-h), B(h))`` with ``B = -h`` (bh1) or ``expm1(-h)`` (bh2)."""
        phi1 = torch.expm1(-h)
        return phi1, (-h if self.solver_type == "bh1" else phi1)

    def _order_conditions(self, rks: torch.Tensor, h: torch.Tensor, order: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Matrix ``R[i, k] = r_k ** i`` and right side ``b_i = (i+1)! * phi_{i+2}(-h) / B(h)``, i < order."""
        hh = -h
        phi1, b_h = self._phi1_and_bh(h)
        phi_k = phi1 / hh - 1
        factorial = 1
        rows, rhs = [], []
        for i in range(1, order + 1):
            rows.append(torch.pow(rks, i - 1))
            rhs.append(phi_k * factorial / b_h)
            factorial *= i + 1
            phi_k = phi_k / hh - 1 / factorial
        return torch.stack(rows), torch.stack(rhs)

    def _update(self, x: torch.Tensor, i_from: int, i_to: int, order: int,
                history: list[torch.Tensor], new_x0: torch.Tensor | None) -> torch.Tensor:
        """Shared predictor / corrector formula.

        Moves ``x`` (at ``sigmas[i_from]``) to ``sigmas[i_to]``.  ``history`` holds
        the ``x0`` predictions at ``sigmas[i_from], sigmas[i_from - 1], ...``
        (newest first).  With ``new_x0`` (corrector), the prediction at
        ``sigmas[i_to]`` enters as the last difference term.
        """
        s0, st = self.sigmas[i_from], self.sigmas[i_to]
        if bool(st == s0):  # zero-length step (final_sigmas_type "sigma_min"): nothing moves
            return x
        dev = x.device
        alpha_t = (1 - st).to(dev)
        lam0 = self._lambda(i_from)
        h = self._lambda(i_to) - lam0
        phi1, b_h = self._phi1_and_bh(h)
        m0 = history[0]

        n_hist = order - 1
        rks = [(self._lambda(i_from - k) - lam0) / h for k in range(1, n_hist + 1)]
        diffs = [(history[k] - m0) / rk.to(dev) for k, rk in zip(range(1, n_hist + 1), rks)]

        out = (st / s0).to(dev) * x - (alpha_t * phi1.to(dev)) * m0
        scale = alpha_t * b_h.to(dev)
        if new_x0 is None:  # predictor (UniP)
            if n_hist == 0:
                return out
            if order == 2:
                rhos = torch.full((1,), 0.5)
            else:
                R, b = self._order_conditions(torch.stack(rks + [torch.ones(())]), h, order)
                rhos = torch.linalg.solve(R[:-1, :-1], b[:-1])
            return out - scale * _weighted_sum(rhos, diffs)
        # corrector (UniC)
        if order == 1:
            rhos = torch.full((1,), 0.5)
        else:
            R, b = self._order_conditions(torch.stack(rks + [torch.ones(())]), h, order)
            rhos = torch.linalg.solve(R, b)
        rhos = rhos.to(dev)
        correction = rhos[-1] * (new_x0 - m0)
        if diffs:
            correction = _weighted_sum(rhos[:-1], diffs) + correction
        return out - scale * correction

    # ------------------------------------------------------------------- step
    def step(self, model_output: torch.Tensor, timestep: float | torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        self._require_timesteps()
        if self._step_index is None:
            self._init_step_index(timestep)
        i = self._step_index
        if i >= self.num_inference_steps:
            raise RuntimeError("UniPC: stepped past the last timestep; call set_timesteps() or reset()")
        dtype = sample.dtype
        x = sample.float()
        x0 = x - self.sigmas[i].to(x.device) * model_output.float()

        # UniC: refine the sample we were given, using the fresh x0 prediction.
        if i > 0 and (i - 1) not in self.disable_corrector and self._last_sample is not None:
            x = self._update(self._last_sample, i - 1, i, self._last_order, self._x0_history, x0)

        self._x0_history = ([x0] + self._x0_history)[: self.solver_order]
        order = self.solver_order
        if self.lower_order_final:
            order = min(order, self.num_inference_steps - i)
        order = min(order, len(self._x0_history))  # warm-up: only as many steps as we have history
        self._last_order = order
        self._last_sample = x

        prev = self._update(x, i, i + 1, order, self._x0_history, None)
        self._step_index = i + 1
        return prev.to(dtype)


def _weighted_sum(weights: torch.Tensor, terms: list[torch.Tensor]) -> torch.Tensor:
    """``sum_k weights[k] * terms[k]`` (terms shaped like the sample)."""
    weights = weights.to(device=terms[0].device, dtype=terms[0].dtype)
    return torch.einsum("k,k...->...", weights, torch.stack(terms))

"""Step caching: skip the DiT on steps whose input barely changed (TeaCache-style, model-agnostic).

TeaCache (Liu et al. 2024) and first-block caching decide per step whether the transformer must run
from how much its input moved since the last step that ran it: they accumulate a relative L1
distance and, while it stays under a user threshold, reuse the last output.  This cache works on the
denoiser's input and output, so it fits every family without touching model code:

* distance of step ``i``: ``mean|x_i - x_{i-1}| / mean|x_{i-1}|`` over the DiT's input latents,
  accumulated over consecutive skipped steps;
* the step runs the DiT (and the accumulator resets) when the accumulated distance reaches
  ``threshold``; otherwise the last guided prediction is reused (a skipped CFG step saves both
  branches);
* the first ``warmup`` steps, the last step and the first step of each expert always run;
* ``threshold`` 0 never skips: the predictor is called exactly as without the cache (bit-identical).

Ranks decide together (one tiny all_reduce: a step runs when any rank wants it), so multi-rank jobs
stay in lockstep.  ``stats()`` says how many steps ran and were skipped.
"""

from __future__ import annotations

from typing import Any

import torch

from fastvideo.distributed.communication import any_rank


def relative_l1(x: torch.Tensor, prev: torch.Tensor) -> float:
    """``mean|x - prev| / mean|prev|`` (float64 accumulation)."""
    num = (x.double() - prev.double()).abs().mean()
    den = prev.double().abs().mean().clamp_min(1e-12)
    return float(num / den)


class StepCache:
    def __init__(self, threshold: float, total_steps: int, warmup: int = 1):
        self.threshold = float(threshold or 0.0)
        self.total = int(total_steps)
        self.warmup = int(warmup)
        self.computed = 0
        self.skipped: list[int] = []
        self._prev_x: torch.Tensor | None = None
        self._last: torch.Tensor | None = None
        self._expert: int | None = None
        self._distance = 0.0

    @property
    def enabled(self) -> bool:
        return self.threshold > 0

    def predict(self, predictor, expert: int, step: int, x: torch.Tensor, *args: Any) -> torch.Tensor:
        """``predictor(x, *args)``, or the last prediction when the cache says this step may be skipped."""
        if not self.enabled:
            self.computed += 1
            return predictor(x, *args)
        must = (step < self.warmup or step >= self.total - 1 or self._last is None or expert != self._expert
                or self._prev_x is None or self._prev_x.shape != x.shape)
        if not must:
            self._distance += relative_l1(x, self._prev_x)
            must = self._distance >= self.threshold
        must = any_rank(must, x.device)
        self._prev_x = x
        if not must:
            self.skipped.append(step)
            return self._last
        self._distance = 0.0
        self._expert = expert
        self._last = predictor(x, *args)
        self.computed += 1
        return self._last

    def stats(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "computed_steps": self.computed, "skipped_steps": list(self.skipped)}

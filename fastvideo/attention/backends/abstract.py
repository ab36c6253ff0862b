"""The attention backend interface.

A backend computes softmax(q k^T / sqrt(d)) v for tensors laid out
``[batch, seq, heads, head_dim]`` and returns the same layout.  No mask, no
dropout, no causality: video DiTs attend over full sequences.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class AttentionBackend(ABC):
    """One way of computing attention; subclasses are stateless."""

    #: Name used for selection (argument or ``FASTVIDEO_ATTENTION_BACKEND``).
    name: str = ""

    @classmethod
    def is_available(cls) -> bool:
        """Whether this backend can run in the current environment."""
        return True

    @classmethod
    def unavailable_reason(cls) -> str:
        return ""

    @abstractmethod
    def forward(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *, scale: float | None = None
    ) -> torch.Tensor:
        """``query`` [B, Sq, H, D], ``key``/``value`` [B, Skv, H, D] -> [B, Sq, H, D]."""

    def __call__(self, query, key, value, *, scale=None):
        return self.forward(query, key, value, scale=scale)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

"""Live previews: the current x0 estimate mapped to RGB by a linear latent->RGB map.

Per latent pixel ``rgb = latent(C) @ F(C x 3) + b``, clamped to [-1, 1], for a few
evenly spaced latent frames.  It is a handful of multiply-adds per latent pixel,
so it costs far under 1% of a denoising step.
"""

from __future__ import annotations

import numpy as np
import torch


class LatentPreviewer:
    def __init__(self, factors: list[list[float]], bias: list[float], max_frames: int = 8):
        self.factors = torch.tensor(factors, dtype=torch.float32)  # [C, 3]
        self.bias = torch.tensor(bias, dtype=torch.float32)  # [3]
        self.max_frames = max_frames

    @property
    def channels(self) -> int:
        return self.factors.shape[0]

    def frame_indices(self, num_latent_frames: int) -> list[int]:
        n = min(self.max_frames, num_latent_frames)
        return sorted({round(i * (num_latent_frames - 1) / max(n - 1, 1)) for i in range(n)})

    def from_flow(self, latents: torch.Tensor, velocity: torch.Tensor, sigma: float) -> np.ndarray:
        """Preview of ``x0 = x_t - sigma * v``, computed only on the previewed frames."""
        idx = self.frame_indices(latents.shape[2])
        c = self.channels
        x0 = latents[:, :c, idx].float() - sigma * velocity[:, :c, idx].float()
        return self._rgb(x0)

    def __call__(self, x0: torch.Tensor) -> np.ndarray:
        """``x0`` ``[1, C, T, h, w]`` (normalised latents) -> uint8 ``[n, h, w, 3]``."""
        return self._rgb(x0[:, : self.channels, self.frame_indices(x0.shape[2])].float())

    def _rgb(self, x: torch.Tensor) -> np.ndarray:
        x = x[0]  # [C, n, h, w]
        f = self.factors.to(x.device)
        rgb = torch.einsum("cnhw,ck->nhwk", x, f) + self.bias.to(x.device)
        rgb = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return rgb.cpu().numpy()


def fit_preview_factors(latents: torch.Tensor, frames: torch.Tensor) -> tuple[list[list[float]], list[float]]:
    """Least-squares latent->RGB factors from pairs.

    ``latents`` ``[N, C]`` normalised latent pixels, ``frames`` ``[N, 3]`` the decoded
    colours in [-1, 1] at the same places (e.g. frames average-pooled to latent size).
    """
    x = torch.cat([latents.double(), torch.ones(latents.shape[0], 1, dtype=torch.float64)], dim=1)
    sol = torch.linalg.lstsq(x, frames.double()).solution  # [C + 1, 3]
    return sol[:-1].tolist(), sol[-1].tolist()

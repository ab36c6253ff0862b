"""LatentPreparationStage: the initial noise, Diffusers' convention.

A CPU ``torch.Generator`` seeded with the request's seed draws float32
``randn`` of the model's latent shape (``LatentGeometry.latent_shape``:
``[1, C, (F-1)/t+1, H/s, W/s]`` with the VAE's compression ``t``, ``s`` and latent
channels ``C``); the same seed and weights therefore give the same video as Diffusers'
pipelines.
"""

from __future__ import annotations

import torch

from fastvideo.configs.geometry import LatentGeometry
from fastvideo.pipelines.forward_batch import ForwardBatch
from fastvideo.pipelines.stages.base import PipelineStage, check_tensor


def initial_noise(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    generator = torch.Generator("cpu").manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float32)


class LatentPreparationStage(PipelineStage):
    name = "latent_preparation"

    def __init__(self, geometry: LatentGeometry, device):
        self.geometry = geometry
        self.device = device

    def forward(self, batch: ForwardBatch) -> ForwardBatch:
        sp = batch.sampling
        shape = self.geometry.latent_shape(sp.num_frames, sp.height, sp.width)
        batch.latents = initial_noise(sp.seed, shape).to(self.device)
        return batch

    def verify_output(self, batch: ForwardBatch) -> None:
        sp = batch.sampling
        check_tensor(batch.latents, self.name, "latents",
                     shape=self.geometry.latent_shape(sp.num_frames, sp.height, sp.width))

"""LatentPreparationStage: the initial noise, Diffusers' convention.

A CPU ``torch.Generator`` seeded with the request's seed draws float32
``randn`` of shape ``[1, z_dim, (F-1)//4+1, H/8, W/8]``; the same seed and weights
therefore give the same video as Diffusers' Wan pipelines.
"""

from __future__ import annotations

import torch

from fastvideo.pipelines.forward_batch import ForwardBatch
from fastvideo.pipelines.stages.base import PipelineStage, check_tensor


def latent_shape(num_frames: int, height: int, width: int, z_dim: int, t_stride: int = 4, s_stride: int = 8):
    return (1, z_dim, (num_frames - 1) // t_stride + 1, height // s_stride, width // s_stride)


def initial_noise(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    generator = torch.Generator("cpu").manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float32)


class LatentPreparationStage(PipelineStage):
    name = "latent_preparation"

    def __init__(self, z_dim: int, device):
        self.z_dim = z_dim
        self.device = device

    def forward(self, batch: ForwardBatch) -> ForwardBatch:
        sp = batch.sampling
        shape = latent_shape(sp.num_frames, sp.height, sp.width, self.z_dim)
        batch.latents = initial_noise(sp.seed, shape).to(self.device)
        return batch

    def verify_output(self, batch: ForwardBatch) -> None:
        sp = batch.sampling
        check_tensor(batch.latents, self.name, "latents", shape=latent_shape(sp.num_frames, sp.height, sp.width,
                                                                              self.z_dim))

"""VideoLatentPreparationStage (V2V): encode the input video, noise it to the first
kept timestep (``strength`` decides which), and denoise from there."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from fastvideo.pipelines.forward_batch import ForwardBatch
from fastvideo.pipelines.stages.base import PipelineStage, check, check_tensor


def video_to_tensor(frames: np.ndarray, height: int, width: int) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> float32 ``[1, 3, T, H, W]`` in [-1, 1], resized (Lanczos) when needed."""
    from PIL import Image

    if frames.shape[1:3] != (height, width):
        frames = np.stack([np.asarray(Image.fromarray(f).resize((width, height), resample=Image.LANCZOS))
                           for f in frames])
    arr = torch.from_numpy(np.ascontiguousarray(frames)).float() / 255.0
    return arr.permute(3, 0, 1, 2)[None] * 2.0 - 1.0


class VideoLatentPreparationStage(PipelineStage):
    name = "video_latent_preparation"

    def __init__(self, vae, device, offload=None):
        self.vae = vae
        self.device = device
        self.offload = offload

    def verify_input(self, batch: ForwardBatch) -> None:
        check(batch.video is not None, self.name, "no input video loaded")
        check_tensor(batch.latents, self.name, "latents (noise)", ndim=5)
        check("scheduler" in batch.extra, self.name, "timesteps must be prepared first")

    def forward(self, batch: ForwardBatch) -> ForwardBatch:
        sp = batch.sampling
        video = video_to_tensor(batch.video, sp.height, sp.width)
        ctx = self.offload.use(self.vae) if self.offload else contextlib.nullcontext()
        with ctx:
            param = next(self.vae.parameters())
            init = self.vae.encode(video.to(device=param.device, dtype=param.dtype)).mode()
            init = self.vae.normalize_latents(init.float()).to(self.device)
        scheduler = batch.extra["scheduler"]
        batch.latents = scheduler.add_noise(init, batch.latents, batch.timesteps[:1])
        return batch

    def verify_output(self, batch: ForwardBatch) -> None:
        check_tensor(batch.latents, self.name, "latents", ndim=5)

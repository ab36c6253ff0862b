"""DecodingStage: latents -> denormalise -> VAE decode -> frames in [0, 1] and uint8."""

from __future__ import annotations

import contextlib

import torch

from fastvideo.pipelines.forward_batch import ForwardBatch
from fastvideo.pipelines.stages.base import PipelineStage, check_tensor


class DecodingStage(PipelineStage):
    name = "decoding"

    def __init__(self, vae, offload=None):
        self.vae = vae
        self.offload = offload

    def verify_input(self, batch: ForwardBatch) -> None:
        check_tensor(batch.latents, self.name, "latents", ndim=5)

    def forward(self, batch: ForwardBatch) -> ForwardBatch:
        ctx = self.offload.use(self.vae) if self.offload else contextlib.nullcontext()
        with ctx, torch.inference_mode():
            param = next(self.vae.parameters())
            z = self.vae.denormalize_latents(batch.latents.to(device=param.device, dtype=param.dtype))
            video = self.vae.decode(z)  # [1, 3, T, H, W] in [-1, 1]
        video = (video[0].float() / 2 + 0.5).clamp(0, 1).permute(1, 2, 3, 0).cpu()  # [T, H, W, 3]
        batch.video_out = video
        batch.frames = (video * 255).round().to(torch.uint8).numpy()
        return batch

    def verify_output(self, batch: ForwardBatch) -> None:
        sp = batch.sampling
        check_tensor(batch.video_out, self.name, "video", shape=(sp.num_frames, sp.height, sp.width, 3))

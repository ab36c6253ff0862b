"""ImageLatentPreparationStage (I2V): the input image as the denoiser's condition, two ways.

* ``mode="concat"`` (Wan2.1 I2V, Wan2.2 I2V-A14B): condition = first-frame mask + VAE latents of the
  first frame followed by black frames, concatenated on channels.  For F frames at HxW the mask has
  ``t`` channels (the VAE's temporal compression: one per frame packed into a latent frame; only frame 0
  is known), the image latents ``z_dim`` channels; the DiT then sees ``z_dim + t + z_dim`` input
  channels (36 for Wan).
* ``mode="replace"`` (Wan2.2 TI2V): the image alone is encoded to one latent frame, which replaces the
  first noisy latent frame at every step; ``condition_mask`` is 0 there, and ``token_mask`` (the mask at
  each DiT patch) gives those tokens timestep 0 (Diffusers' ``expand_timesteps``).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from fastvideo.configs.geometry import LatentGeometry
from fastvideo.pipelines.forward_batch import ForwardBatch
from fastvideo.pipelines.stages.base import PipelineStage, check, check_tensor


def image_to_tensor(image, height: int, width: int) -> torch.Tensor:
    """PIL image -> float32 ``[1, 3, H, W]`` in [-1, 1], resized (Lanczos) when needed."""
    from PIL import Image

    if image.size != (width, height):
        image = image.resize((width, height), resample=Image.LANCZOS)
    arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1)[None] * 2.0 - 1.0


def first_frame_mask(num_frames: int, h: int, w: int, t_stride: int) -> torch.Tensor:
    """``[1, t_stride, T', h, w]``: 1 where a pixel frame is given (frame 0), else 0."""
    mask = torch.zeros(1, 1, num_frames, h, w)
    mask[:, :, 0] = 1
    # Frame 0 stands alone in the first latent frame: repeat it to fill the t_stride slots.
    mask = torch.cat([mask[:, :, :1].repeat_interleave(t_stride, dim=2), mask[:, :, 1:]], dim=2)
    mask = mask.view(1, -1, t_stride, h, w)  # [1, T', 4, h, w]
    return mask.transpose(1, 2)


class ImageLatentPreparationStage(PipelineStage):
    name = "image_latent_preparation"

    def __init__(self, vae, geometry: LatentGeometry, device, offload=None, mode: str = "concat"):
        if mode not in ("concat", "replace"):
            raise ValueError(f"mode must be 'concat' or 'replace', got {mode!r}")
        self.vae = vae
        self.geometry = geometry
        self.device = device
        self.offload = offload
        self.mode = mode

    def verify_input(self, batch: ForwardBatch) -> None:
        check(batch.image is not None, self.name, "no input image loaded")
        check_tensor(batch.latents, self.name, "latents", ndim=5)

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        ctx = self.offload.use(self.vae) if self.offload else contextlib.nullcontext()
        with ctx:
            param = next(self.vae.parameters())
            latents = self.vae.encode(video.to(device=param.device, dtype=param.dtype)).mode()
            return self.vae.normalize_latents(latents.float())

    def forward(self, batch: ForwardBatch) -> ForwardBatch:
        sp = batch.sampling
        image = image_to_tensor(batch.image, sp.height, sp.width)
        _, _, t, h, w = batch.latents.shape
        if self.mode == "replace":
            batch.condition = self.encode(image[:, :, None]).to(self.device)  # [1, C, 1, h, w]
            mask = torch.ones(1, 1, t, h, w, device=self.device)
            mask[:, :, 0] = 0
            pt, ph, pw = self.geometry.patch_size
            batch.condition_mode, batch.condition_mask = "replace", mask
            batch.token_mask = mask[0, 0, ::pt, ::ph, ::pw].flatten()
            return batch
        video = torch.cat([image[:, :, None], image.new_zeros(1, 3, sp.num_frames - 1, sp.height, sp.width)], dim=2)
        latents = self.encode(video)
        mask = first_frame_mask(sp.num_frames, h, w, self.geometry.temporal_compression).to(latents.device)
        batch.condition = torch.cat([mask, latents], dim=1).to(self.device)
        batch.condition_mode = "concat"
        return batch

    def verify_output(self, batch: ForwardBatch) -> None:
        _, c, t, h, w = batch.latents.shape
        if self.mode == "replace":
            check_tensor(batch.condition, self.name, "condition", shape=(1, c, 1, h, w))
        else:
            check_tensor(batch.condition, self.name, "condition",
                         shape=(1, self.geometry.temporal_compression + c, t, h, w))

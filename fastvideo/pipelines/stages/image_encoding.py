"""ImageEncodingStage (I2V): the first frame -> CLIP penultimate hidden states."""

from __future__ import annotations

import contextlib

from fastvideo.pipelines.forward_batch import ForwardBatch
from fastvideo.pipelines.stages.base import PipelineStage, check, check_tensor


class ImageEncodingStage(PipelineStage):
    name = "image_encoding"

    def __init__(self, image_processor, image_encoder, device, dtype, offload=None):
        self.image_processor = image_processor
        self.image_encoder = image_encoder
        self.device = device
        self.dtype = dtype
        self.offload = offload

    def verify_input(self, batch: ForwardBatch) -> None:
        check(batch.image is not None, self.name, "no input image loaded")

    def forward(self, batch: ForwardBatch) -> ForwardBatch:
        from fastvideo.models.encoders.clip import encode_image

        ctx = self.offload.use(self.image_encoder) if self.offload else contextlib.nullcontext()
        with ctx:
            embeds = encode_image(self.image_processor, self.image_encoder, batch.image)
        batch.image_embeds = embeds.to(device=self.device, dtype=self.dtype)
        return batch

    def verify_output(self, batch: ForwardBatch) -> None:
        check_tensor(batch.image_embeds, self.name, "image_embeds", ndim=3, shape=(1,))

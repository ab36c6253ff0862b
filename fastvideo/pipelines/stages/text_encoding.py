"""TextEncodingStage: prompt (and negative prompt, with CFG) -> T5 embeddings."""

from __future__ import annotations

import contextlib

from fastvideo.pipelines.forward_batch import ForwardBatch
from fastvideo.pipelines.stages.base import PipelineStage, check, check_tensor


class TextEncodingStage(PipelineStage):
    name = "text_encoding"

    def __init__(self, tokenizer, text_encoder, text_len: int, device, dtype, offload=None):
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.text_len = text_len
        self.device = device
        self.dtype = dtype  # of the embeddings handed to the DiT
        self.offload = offload

    def verify_input(self, batch: ForwardBatch) -> None:
        check(bool(batch.prompt), self.name, "prompt is empty (input validation must run first)")

    def forward(self, batch: ForwardBatch) -> ForwardBatch:
        from fastvideo.models.encoders.t5 import encode_prompts

        with self.offload.use(self.text_encoder) if self.offload else contextlib.nullcontext():
            prompts = [batch.prompt] + ([batch.negative_prompt] if batch.do_cfg else [])
            embeds = encode_prompts(self.tokenizer, self.text_encoder, prompts, max_length=self.text_len)
        embeds = embeds.to(device=self.device, dtype=self.dtype)
        batch.prompt_embeds = embeds[:1]
        batch.negative_prompt_embeds = embeds[1:2] if batch.do_cfg else None
        return batch

    def verify_output(self, batch: ForwardBatch) -> None:
        check_tensor(batch.prompt_embeds, self.name, "prompt_embeds", ndim=3, shape=(1, self.text_len))
        if batch.do_cfg:
            check_tensor(batch.negative_prompt_embeds, self.name, "negative_prompt_embeds", ndim=3,
                         shape=(1, self.text_len))


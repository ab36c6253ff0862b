"""Gemma 3 text encoder (LTX-2) and the prompt -> per-layer hidden states procedure of the LTX-2 pipelines.

``Gemma3TextEncoder`` *is* ``transformers.Gemma3TextModel`` (the language model of Gemma 3), as the Wan
T5 is ``UMT5EncoderModel``: the numerics are transformers', our part is loading it from the
``Gemma3ForConditionalGeneration`` checkpoint through the arch config's mapping (vision parts dropped).

:func:`encode_prompts` reproduces Diffusers' ``LTX2Pipeline._get_gemma_prompt_embeds``: strip, tokenize
with *left* padding to ``max_length`` (the pad token is EOS when the tokenizer has none), run the model
with ``output_hidden_states``, stack every layer's hidden states on a last axis and flatten them:
``[B, L, hidden * (layers + 1)]``, with the attention mask ``[B, L]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import Gemma3TextConfig, Gemma3TextModel

from fastvideo.configs.models.encoders.gemma3 import Gemma3TextEncoderConfig


class Gemma3TextEncoder(Gemma3TextModel):
    @classmethod
    def from_arch_config(cls, cfg: Gemma3TextEncoderConfig) -> Gemma3TextEncoder:
        config = Gemma3TextConfig(**cfg.hf_text_config())
        return cls(config).eval()


def _device_dtype(module: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    for p in module.parameters():
        return p.device, p.dtype
    return torch.device("cpu"), torch.float32


@torch.no_grad()
def encode_prompts(tokenizer, text_encoder: torch.nn.Module, prompts: str | Sequence[str], max_length: int = 1024,
                   device=None, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(stacked hidden states ``[B, max_length, hidden * (layers + 1)]``, attention mask ``[B, max_length]``)."""
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    enc_device, enc_dtype = _device_dtype(text_encoder)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokens = tokenizer([p.strip() for p in prompts], padding="max_length", max_length=max_length, truncation=True,
                       add_special_tokens=True, return_tensors="pt")
    out = text_encoder(input_ids=tokens.input_ids.to(enc_device), attention_mask=tokens.attention_mask.to(enc_device),
                       output_hidden_states=True)
    hidden = torch.stack(out.hidden_states, dim=-1).flatten(2, 3)
    return hidden.to(device=device or enc_device, dtype=dtype or enc_dtype), tokens.attention_mask.to(
        device or enc_device)

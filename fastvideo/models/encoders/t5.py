"""UMT5 text encoder (Wan2.1) and the prompt -> embedding procedure of the Wan pipelines.

``UMT5TextEncoder`` *is* ``transformers.UMT5EncoderModel`` (subclass, no new
modules), so Hugging Face / Diffusers state-dict names load unchanged.

``encode_prompts`` reproduces Diffusers' ``WanPipeline._get_t5_prompt_embeds``:
clean each prompt, tokenize with padding to ``max_length`` and truncation,
run the encoder with the attention mask, keep each row's first ``len`` tokens
(``len`` = mask sum, EOS included) and zero the rest, giving ``[B, max_length, d]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import UMT5Config, UMT5EncoderModel

from fastvideo.configs.models.encoders.t5 import T5EncoderArchConfig
from fastvideo.models.encoders.text_utils import prompt_clean


class UMT5TextEncoder(UMT5EncoderModel):
    """``UMT5EncoderModel`` built from our arch config."""

    @classmethod
    def from_arch_config(cls, cfg: T5EncoderArchConfig) -> UMT5TextEncoder:
        """Build (random or meta weights, under ``empty_init``) in eval mode."""
        config = UMT5Config(**cfg.hf_config_dict())
        return cls(config).eval()


def _module_device_dtype(module: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    compute = getattr(module, "compute_device", None)  # set where the token embedding stays on the host
    for p in module.parameters():
        if compute is not None:
            return torch.device(compute), p.dtype
        return p.device, p.dtype
    return torch.device("cpu"), torch.float32


@torch.no_grad()
def encode_prompts(
    tokenizer,
    text_encoder: torch.nn.Module,
    prompts: str | Sequence[str],
    max_length: int = 512,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Prompt embeddings ``[B, max_length, d_model]``; positions past each prompt's length are exactly 0.

    ``device``/``dtype`` of the result default to the text encoder's.
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    cleaned = [prompt_clean(p) for p in prompts]
    enc_device, enc_dtype = _module_device_dtype(text_encoder)
    device = torch.device(device) if device is not None else enc_device
    dtype = dtype or enc_dtype

    tokens = tokenizer(
        cleaned,
        padding="max_length",
        max_length=max_length,
        truncation=True,
        add_special_tokens=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    input_ids, mask = tokens.input_ids, tokens.attention_mask
    lengths = mask.gt(0).sum(dim=1)

    hidden = text_encoder(input_ids.to(enc_device), mask.to(enc_device)).last_hidden_state
    hidden = hidden.to(device=device, dtype=dtype)
    # Keep the real tokens, zero the padding (the encoder's outputs there are not zero).
    keep = torch.arange(max_length, device=device)[None, :] < lengths.to(device)[:, None]
    return torch.where(keep[..., None], hidden, torch.zeros((), device=device, dtype=dtype))

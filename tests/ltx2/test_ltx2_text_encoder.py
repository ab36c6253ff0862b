"""LTX-2 text encoder: our Gemma 3 (text model loaded from a Gemma3ForConditionalGeneration checkpoint through
the mapping) and encode_prompts vs Diffusers' LTX2Pipeline._get_gemma_prompt_embeds, fp32."""

from __future__ import annotations

import types

import torch
from ltx2_helpers import assert_close, diffusers_or_skip, ours_from

from fastvideo.configs.models.encoders.gemma3 import Gemma3TextEncoderConfig
from fastvideo.models.encoders.gemma3 import Gemma3TextEncoder, encode_prompts
from fastvideo.testing.tokenizer import make_tiny_t5_tokenizer


def tiny_gemma3(seed: int = 0):
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    text = dict(vocab_size=700, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                num_key_value_heads=1, head_dim=8, max_position_embeddings=128, sliding_window=4)
    vision = dict(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=8,
                  patch_size=4)
    torch.manual_seed(seed)
    return Gemma3ForConditionalGeneration(Gemma3Config(text_config=text, vision_config=vision,
                                                       mm_tokens_per_image=4)).eval()


def test_text_encoder_matches_diffusers(tmp_path):
    diffusers_or_skip()
    from diffusers import LTX2Pipeline
    from transformers import AutoTokenizer

    make_tiny_t5_tokenizer(tmp_path / "tok")
    tok = AutoTokenizer.from_pretrained(tmp_path / "tok")
    ref = tiny_gemma3()
    cfg_dict = ref.config.to_dict()
    ours = ours_from(types.SimpleNamespace(config=cfg_dict, state_dict=ref.state_dict), Gemma3TextEncoderConfig,
                     Gemma3TextEncoder, state_dict=ref.state_dict(), strict=False)
    prompts = ["A red cube rolls slowly across a wooden table.", "a cat"]
    fake = types.SimpleNamespace(tokenizer=tok, text_encoder=ref, _execution_device=torch.device("cpu"))
    r_emb, r_mask = LTX2Pipeline._get_gemma_prompt_embeds(fake, prompts, max_sequence_length=16,
                                                           device=torch.device("cpu"), dtype=torch.float32)
    o_emb, o_mask = encode_prompts(tok, ours, prompts, max_length=16)
    assert torch.equal(o_mask, r_mask)
    assert o_emb.shape == (2, 16, 16 * 3)
    assert_close(o_emb, r_emb)

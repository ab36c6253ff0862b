"""Tokenizer trained on the shape captions, and differentiable prompt embeddings."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import torch

from fastvideo.models.encoders.text_utils import prompt_clean


def make_tokenizer(out_dir: str | os.PathLike, corpus: list[str], vocab_size: int = 400, seed: int = 0) -> Path:
    """Train a SentencePiece unigram T5 tokenizer on ``corpus`` and save it as a HF T5 tokenizer folder.

    Same procedure as :func:`fastvideo.testing.tokenizer.make_tiny_t5_tokenizer` (T5 ids:
    ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2), single-threaded with a fixed seed.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as spm_pb2
    from transformers import T5Tokenizer

    from fastvideo.testing.tokenizer import WAN_NEGATIVE_PROMPT_ZH

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    spm.set_random_generator_seed(seed)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(corpus) + [WAN_NEGATIVE_PROMPT_ZH]), model_writer=buffer, model_type="unigram",
        vocab_size=vocab_size, hard_vocab_limit=False, character_coverage=1.0, pad_id=0, eos_id=1, unk_id=2,
        bos_id=-1, pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>", num_threads=1, minloglevel=2,
    )
    model_bytes = buffer.getvalue()
    (out / "spiece.model").write_bytes(model_bytes)
    proto = spm_pb2.ModelProto()
    proto.ParseFromString(model_bytes)
    tokenizer = T5Tokenizer(vocab=[(p.piece, p.score) for p in proto.pieces],
                            _spm_precompiled_charsmap=proto.normalizer_spec.precompiled_charsmap or None,
                            extra_ids=0, model_max_length=512)
    tokenizer.save_pretrained(str(out))
    special = {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2, sort_keys=True) + "\n")
    return out


def tokenize(tokenizer, prompts: list[str], max_length: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = tokenizer([prompt_clean(p) for p in prompts], padding="max_length", max_length=max_length,
                       truncation=True, add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
    return tokens.input_ids, tokens.attention_mask


class CachedTokenizer:
    """:func:`tokenize` with a per-caption cache, for training loops that see the same captions again.

    Padding a batch to 512 tokens in the tokenizer costs ~30 ms per 128 captions on a small CPU, about as
    much as a DiT step on the GPU; here each distinct caption is tokenized once and a batch is a row copy.
    Same ids and mask as :func:`tokenize` (pad id 0, right padding, truncation at ``max_length``).
    """

    def __init__(self, tokenizer, max_length: int = 512):
        self.tokenizer, self.max_length = tokenizer, max_length
        self.pad_id = tokenizer.pad_token_id or 0
        self._cache: dict[str, list[int]] = {}

    def __call__(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = []
        for p in prompts:
            ids = self._cache.get(p)
            if ids is None:
                ids, mask = tokenize(self.tokenizer, [p], self.max_length)
                self._cache[p] = ids = ids[0, : int(mask[0].sum())].tolist()
            rows.append(ids)
        out = torch.full((len(rows), self.max_length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), self.max_length), dtype=torch.long)
        for i, ids in enumerate(rows):
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[i, : len(ids)] = 1
        return out, mask


def embed(text_encoder: torch.nn.Module, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Like :func:`fastvideo.models.encoders.t5.encode_prompts` (padding zeroed) but with gradients.

    The encoder runs on the longest prompt's tokens only and the result is zero-padded back to the full
    length: padded keys are masked out and T5's position bias is relative, so the real tokens' outputs
    are the same as with the full padding (captions are ~15 of 512 tokens: ~30x less encoder work).
    """
    length = max(int(mask.sum(dim=1).max().item()), 1)
    hidden = text_encoder(input_ids[:, :length], mask[:, :length]).last_hidden_state
    hidden = hidden * mask[:, :length, None].to(hidden.dtype)
    return torch.nn.functional.pad(hidden, (0, 0, 0, input_ids.shape[1] - length))

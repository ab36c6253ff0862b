"""A tiny, real T5 (SentencePiece unigram) tokenizer for tests.

:func:`make_tiny_t5_tokenizer` trains a SentencePiece unigram model in-process on
a small built-in caption corpus and saves it in the layout of a Hugging Face T5
tokenizer folder (``spiece.model``, ``tokenizer.json``,
``tokenizer_config.json``, ``special_tokens_map.json``), so
``transformers.AutoTokenizer.from_pretrained(out_dir)`` loads it as a
``T5Tokenizer`` with T5's ids: ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2.

The corpus is English captions built from shapes, colours, motions and scenes,
plus Wan's official Chinese negative prompt (so it tokenizes without ``<unk>``).
Training is single-threaded with a fixed seed: the same arguments give the same
files, byte for byte.
"""

from __future__ import annotations

import io
import json
import os
import random
from pathlib import Path

WAN_NEGATIVE_PROMPT_ZH = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
    "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)

_COLOURS = ["red", "blue", "green", "yellow", "purple", "orange", "white", "black", "golden", "silver", "pink", "grey"]
_SIZES = ["small", "large", "tiny", "huge", "shiny", "fluffy", "wooden", "glass"]
_SUBJECTS = [
    "cube", "sphere", "cone", "cylinder", "pyramid", "ball", "cat", "dog", "horse", "bird", "fish", "robot",
    "car", "train", "boat", "balloon", "kite", "dancer", "astronaut", "panda", "fox", "butterfly",
]
_MOTIONS = [
    "rolls slowly", "bounces", "spins", "floats", "flies", "runs", "walks", "jumps", "glides", "drifts",
    "slides", "rotates", "dances", "swims", "falls gently",
]
_PLACES = [
    "across a wooden table", "along a quiet street", "through a bright blue sky", "over a calm lake",
    "in a snowy forest", "on a sandy beach", "inside a neon city", "under a starry night sky",
    "past tall mountains", "around a green garden", "across an empty stage", "beside a busy market",
]
_CAMERA = [
    "The camera pans left.", "The camera slowly zooms in.", "Static camera, soft lighting.",
    "Tracking shot, golden hour light.", "Close-up, shallow depth of field.", "Aerial view, cinematic.",
    "Wide shot, warm sunset colours.", "Handheld camera, natural light.",
]
_EXTRA = [
    "A cat walks on the grass, realistic style.",
    "Two anthropomorphic cats in comfy boxing gear fight intensely on a spotlighted stage.",
    "A bowl of fresh fruit on a kitchen counter, morning light.",
    "Waves crash against the rocks at sunset; seagulls fly overhead.",
    "Rain falls on a city street at night, reflections shimmer in puddles.",
    "Fireworks burst over a river: red, green and gold sparks!",
    "A hot air balloon rises above the clouds (4K, highly detailed).",
    "Bright colours, overexposed, static, blurred details, subtitles, worst quality, low quality.",
]


def caption_corpus(seed: int = 0, count: int = 240) -> list[str]:
    """The built-in training captions (deterministic for ``seed``)."""
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        colour, size = rng.choice(_COLOURS), rng.choice(_SIZES)
        subject, motion, place = rng.choice(_SUBJECTS), rng.choice(_MOTIONS), rng.choice(_PLACES)
        article = "An" if size[0] in "aeiou" else "A"
        line = f"{article} {size} {colour} {subject} {motion} {place}."
        if i % 3 == 0:
            line += " " + rng.choice(_CAMERA)
        if i % 7 == 0:
            line += f" {rng.randint(2, 9)} {rng.choice(_SUBJECTS)}s watch in the background."
        lines.append(line)
    return lines + _EXTRA + [WAN_NEGATIVE_PROMPT_ZH] * 3


def make_tiny_t5_tokenizer(out_dir: str | os.PathLike, vocab_size: int = 600, seed: int = 0,
                           extra_ids: int = 0) -> Path:
    """Train and save a tiny T5 tokenizer in ``out_dir``; returns the folder path.

    ``vocab_size`` is an upper bound (the corpus may support fewer pieces);
    ``extra_ids`` appends T5 sentinel tokens ``<extra_id_N>`` after the pieces.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as spm_pb2
    from transformers import T5Tokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    buffer = io.BytesIO()
    spm.set_random_generator_seed(seed)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(caption_corpus(seed)),
        model_writer=buffer,
        model_type="unigram",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        num_threads=1,
        minloglevel=2,
    )
    model_bytes = buffer.getvalue()
    (out / "spiece.model").write_bytes(model_bytes)

    proto = spm_pb2.ModelProto()
    proto.ParseFromString(model_bytes)
    vocab = [(p.piece, p.score) for p in proto.pieces]
    vocab += [(f"<extra_id_{i}>", 0.0) for i in range(extra_ids - 1, -1, -1)]
    tokenizer = T5Tokenizer(
        vocab=vocab,
        _spm_precompiled_charsmap=proto.normalizer_spec.precompiled_charsmap or None,
        extra_ids=extra_ids,
        model_max_length=512,
    )
    tokenizer.save_pretrained(str(out))

    special = {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    if extra_ids:
        special["additional_special_tokens"] = [f"<extra_id_{i}>" for i in range(extra_ids)]
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2, sort_keys=True) + "\n")
    return out

"""UMT5 text encoder wrapper, prompt cleaning, the tiny tokenizer, and parity with Diffusers' Wan prompt encoding."""

from __future__ import annotations

import html
import re
import types

import pytest
import torch
from transformers import AutoTokenizer, UMT5Config, UMT5EncoderModel

from fastvideo.configs.models.encoders.t5 import T5EncoderArchConfig
from fastvideo.models.encoders.t5 import UMT5TextEncoder, encode_prompts
from fastvideo.models.encoders.text_utils import prompt_clean
from fastvideo.models.loader.weights import map_state_dict
from fastvideo.testing.tokenizer import WAN_NEGATIVE_PROMPT_ZH, make_tiny_t5_tokenizer

PROMPTS = [
    "A small red cube rolls slowly across a wooden table.  The camera pans left.",
    "",
    "  Fireworks &amp;amp; a  golden\n balloon\t over a calm lake  ",
    WAN_NEGATIVE_PROMPT_ZH,
]

# Shape of a Diffusers text_encoder/config.json (values shrunk; extra keys as HF writes them).
HF_CONFIG = {
    "_name_or_path": "google/umt5-xxl",
    "architectures": ["UMT5EncoderModel"],
    "classifier_dropout": 0.0,
    "d_ff": 64,
    "d_kv": 8,
    "d_model": 32,
    "decoder_start_token_id": 0,
    "dense_act_fn": "gelu_new",
    "dropout_rate": 0.1,
    "eos_token_id": 1,
    "feed_forward_proj": "gated-gelu",
    "initializer_factor": 1.0,
    "is_encoder_decoder": True,
    "is_gated_act": True,
    "layer_norm_epsilon": 1e-06,
    "model_type": "umt5",
    "num_decoder_layers": 2,
    "num_heads": 4,
    "num_layers": 2,
    "output_past": True,
    "pad_token_id": 0,
    "relative_attention_max_distance": 128,
    "relative_attention_num_buckets": 32,
    "scalable_attention": True,
    "tie_word_embeddings": False,
    "tokenizer_class": "T5Tokenizer",
    "torch_dtype": "float32",
    "transformers_version": "4.41.2",
    "use_cache": True,
    "vocab_size": 0,  # filled from the tokenizer
}


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    return make_tiny_t5_tokenizer(tmp_path_factory.mktemp("tiny_t5_tok"))


@pytest.fixture(scope="module")
def tokenizer(tok_dir):
    return AutoTokenizer.from_pretrained(str(tok_dir))


@pytest.fixture(scope="module")
def encoder(tokenizer):
    cfg = T5EncoderArchConfig.from_dict({**HF_CONFIG, "vocab_size": len(tokenizer)})
    torch.manual_seed(0)
    model = UMT5TextEncoder.from_arch_config(cfg)
    with torch.no_grad():  # make the (otherwise ones) layer norms non-trivial
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.uniform_(0.5, 1.5)
    return model


# ----------------------------------------------------------------------------- tokenizer


def test_tiny_tokenizer_files_and_t5_ids(tok_dir, tokenizer):
    for name in ("spiece.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (tok_dir / name).is_file(), name
    assert type(tokenizer).__name__.startswith("T5Tokenizer")
    assert (tokenizer.pad_token, tokenizer.pad_token_id) == ("<pad>", 0)
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == ("</s>", 1)
    assert (tokenizer.unk_token, tokenizer.unk_token_id) == ("<unk>", 2)
    assert 200 < len(tokenizer) <= 600


def test_tiny_tokenizer_round_trip(tokenizer, tok_dir):
    caption = "A tiny golden bird spins along a quiet street. The camera slowly zooms in."
    ids = tokenizer(caption).input_ids
    assert ids[-1] == 1 and 2 not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == caption
    # The fast tokenizer agrees with the SentencePiece model it was made from.
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tok_dir / "spiece.model"))
    assert sp.encode(caption) + [1] == ids
    neg = tokenizer(WAN_NEGATIVE_PROMPT_ZH).input_ids
    assert 2 not in neg  # every character of the official negative prompt is known


def test_tiny_tokenizer_is_deterministic(tmp_path, tok_dir):
    other = make_tiny_t5_tokenizer(tmp_path / "again")
    for f in sorted(p.name for p in tok_dir.iterdir()):
        assert (other / f).read_bytes() == (tok_dir / f).read_bytes(), f


# ---------------------------------------------------------------------------- cleaning


def test_prompt_clean():
    assert prompt_clean("  a\t b \n\n c  ") == "a b c"
    assert prompt_clean("cats &amp;amp; dogs") == "cats & dogs"  # unescaped twice
    assert prompt_clean("x &lt;b&gt;") == "x <b>"
    assert prompt_clean("") == ""
    from diffusers.pipelines.wan.pipeline_wan import prompt_clean as ref_clean

    for p in PROMPTS:
        assert prompt_clean(p) == ref_clean(p)


# ----------------------------------------------------------------------------- encoder


def test_arch_config_round_trip_and_model(encoder, tokenizer):
    cfg = T5EncoderArchConfig.from_dict({**HF_CONFIG, "vocab_size": len(tokenizer)})
    assert cfg.d_model == 32 and cfg.num_layers == 2 and cfg.extra["scalable_attention"] is True
    assert isinstance(encoder, UMT5EncoderModel) and not encoder.training
    assert encoder.config.d_model == 32 and encoder.config.vocab_size == len(tokenizer)
    # Names are those of UMT5EncoderModel; the embedding is tied.
    assert encoder.shared.weight is encoder.encoder.embed_tokens.weight
    plain = UMT5EncoderModel(encoder.config)
    assert list(plain.state_dict()) == list(encoder.state_dict())
    assert "UMT5EncoderModel" in T5EncoderArchConfig.checkpoint_class_names


def test_keep_fp32_matches_transformers():
    cfg = T5EncoderArchConfig()
    assert UMT5EncoderModel._keep_in_fp32_modules == ["wo"]
    names = [n for n, _ in UMT5EncoderModel(UMT5Config(**{**HF_CONFIG, "vocab_size": 10})).named_parameters()]
    kept = [n for n in names if any(re.search(p, n) for p in cfg.keep_fp32_modules)]
    assert kept == [n for n in names if ".wo." in n] and len(kept) == 2


def reference_encode(tokenizer, text_encoder, prompts, max_length):
    """The procedure written out independently: clean, tokenize, encode with mask, cut, zero-pad."""
    rows = []
    for p in prompts:
        text = re.sub(r"\s+", " ", html.unescape(html.unescape(p)).strip()).strip()
        ids = tokenizer(text, add_special_tokens=True).input_ids[:max_length]
        n = len(ids)
        padded = torch.tensor([ids + [0] * (max_length - n)])
        mask = torch.tensor([[1] * n + [0] * (max_length - n)])
        with torch.no_grad():
            h = text_encoder(input_ids=padded, attention_mask=mask).last_hidden_state[0]
        out = torch.zeros(max_length, h.shape[-1])
        out[:n] = h[:n]
        rows.append(out)
    return torch.stack(rows)


def test_encode_prompts_matches_diffusers_and_reference(tokenizer, encoder):
    from diffusers.pipelines.wan.pipeline_wan import WanPipeline

    ours = encode_prompts(tokenizer, encoder, PROMPTS, max_length=512, device="cpu", dtype=torch.float32)
    assert ours.shape == (len(PROMPTS), 512, 32) and ours.dtype == torch.float32

    fake_pipe = types.SimpleNamespace(tokenizer=tokenizer, text_encoder=encoder)
    with torch.no_grad():
        ref = WanPipeline._get_t5_prompt_embeds(
            fake_pipe, PROMPTS, max_sequence_length=512, device=torch.device("cpu"), dtype=torch.float32
        )
    assert (ours - ref).abs().max().item() <= 1e-5

    independent = reference_encode(tokenizer, encoder, PROMPTS, 512)
    assert (ours - independent).abs().max().item() <= 1e-5

    lengths = tokenizer([prompt_clean(p) for p in PROMPTS], padding="max_length", max_length=512,
                        truncation=True, return_tensors="pt").attention_mask.sum(1)
    assert lengths[1] == 1  # the empty prompt is just </s>
    for row, n in zip(ours, lengths.tolist()):
        assert torch.count_nonzero(row[n:]) == 0  # padding exactly zero
        assert torch.all(row[:n].abs().sum(-1) > 0)


def test_encode_prompts_truncates_and_casts(tokenizer, encoder):
    long_prompt = " ".join(["a red cube rolls across the table"] * 40)
    out = encode_prompts(tokenizer, encoder, long_prompt, max_length=16, dtype=torch.bfloat16)
    assert out.shape == (1, 16, 32) and out.dtype == torch.bfloat16
    assert torch.all(out[0].float().abs().sum(-1) > 0)  # all 16 positions are real tokens


# --------------------------------------------------------------------- official mapping


def _official_names(name: str) -> str | None:
    """UMT5EncoderModel name -> official Wan T5Encoder name (hand-written inverse for the test)."""
    if name == "encoder.embed_tokens.weight":
        return None  # tied alias, not stored separately in the official file
    table = [
        (r"^shared\.", "token_embedding."),
        (r"^encoder\.block\.(\d+)\.layer\.0\.layer_norm\.", r"blocks.\1.norm1."),
        (r"^encoder\.block\.(\d+)\.layer\.0\.SelfAttention\.relative_attention_bias\.",
         r"blocks.\1.pos_embedding.embedding."),
        (r"^encoder\.block\.(\d+)\.layer\.0\.SelfAttention\.(q|k|v|o)\.", r"blocks.\1.attn.\2."),
        (r"^encoder\.block\.(\d+)\.layer\.1\.layer_norm\.", r"blocks.\1.norm2."),
        (r"^encoder\.block\.(\d+)\.layer\.1\.DenseReluDense\.wi_0\.", r"blocks.\1.ffn.gate.0."),
        (r"^encoder\.block\.(\d+)\.layer\.1\.DenseReluDense\.wi_1\.", r"blocks.\1.ffn.fc1."),
        (r"^encoder\.block\.(\d+)\.layer\.1\.DenseReluDense\.wo\.", r"blocks.\1.ffn.fc2."),
        (r"^encoder\.final_layer_norm\.", "norm."),
    ]
    for pat, rep in table:
        if re.match(pat, name):
            return re.sub(pat, rep, name)
    raise AssertionError(f"no official name for {name}")


def test_official_mapping_loads_every_weight(encoder):
    official = {}
    for name, t in encoder.state_dict().items():
        off = _official_names(name)
        if off is not None:
            official[off] = t.clone()
    mapped, reverse = map_state_dict(official.items(), T5EncoderArchConfig.official_param_names_mapping)
    assert "shared.weight" in mapped and "encoder.embed_tokens.weight" not in mapped
    expected = set(encoder.state_dict()) - {"encoder.embed_tokens.weight"}
    assert set(mapped) == expected
    fresh = UMT5TextEncoder(encoder.config).eval()
    missing, unexpected = fresh.load_state_dict(mapped, strict=False)
    assert missing in ([], ["encoder.embed_tokens.weight"]) and unexpected == []
    assert torch.equal(fresh.encoder.embed_tokens.weight, encoder.shared.weight)
    ids = torch.tensor([[5, 9, 13, 1, 0, 0]])
    mask = (ids > 0).long()
    mask[0, 3] = 1
    with torch.no_grad():
        assert torch.equal(fresh(ids, mask).last_hidden_state, encoder(ids, mask).last_hidden_state)

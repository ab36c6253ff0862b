"""Arch config of the UMT5 text encoder (``transformers.UMT5EncoderModel``, google/umt5-xxl in Wan).

Field names are the keys of the Hugging Face ``text_encoder/config.json``; keys
without a field (``feed_forward_proj`` extras, ``dense_act_fn``, ...) land in
``extra`` and are passed back to ``UMT5Config`` when the model is built, so
``T5EncoderArchConfig.from_dict(json.load(...))`` round-trips a Diffusers
checkpoint's config.

Our module is ``UMT5EncoderModel`` itself, so Diffusers/HF checkpoints need no
renames (identity ``param_names_mapping``).  ``official_param_names_mapping``
renames the official Wan ``models_t5_umt5-xxl-enc-bf16.pth`` (Wan repo
``wan/modules/t5.py`` ``T5Encoder``) onto the same names.  The official
``token_embedding`` becomes ``shared.weight``; ``encoder.embed_tokens.weight``
is the same (tied) parameter, which the loader treats as an alias.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from fastvideo.configs.models.base import ArchConfig

# Official Wan T5Encoder -> UMT5EncoderModel.  Ordered, first match wins, anchored at the start.
OFFICIAL_UMT5_MAPPING: dict[str, str] = {
    r"^token_embedding\.": "shared.",
    r"^blocks\.(\d+)\.norm1\.": r"encoder.block.\1.layer.0.layer_norm.",
    r"^blocks\.(\d+)\.attn\.(q|k|v|o)\.": r"encoder.block.\1.layer.0.SelfAttention.\2.",
    r"^blocks\.(\d+)\.pos_embedding\.embedding\.": r"encoder.block.\1.layer.0.SelfAttention.relative_attention_bias.",
    r"^blocks\.(\d+)\.norm2\.": r"encoder.block.\1.layer.1.layer_norm.",
    r"^blocks\.(\d+)\.ffn\.gate\.0\.": r"encoder.block.\1.layer.1.DenseReluDense.wi_0.",
    r"^blocks\.(\d+)\.ffn\.fc1\.": r"encoder.block.\1.layer.1.DenseReluDense.wi_1.",
    r"^blocks\.(\d+)\.ffn\.fc2\.": r"encoder.block.\1.layer.1.DenseReluDense.wo.",
    r"^norm\.": "encoder.final_layer_norm.",
}


@dataclass
class T5EncoderArchConfig(ArchConfig):
    """UMT5 encoder hyper-parameters (defaults: google/umt5-xxl as used by Wan2.1)."""

    checkpoint_class_names: ClassVar[tuple[str, ...]] = ("UMT5EncoderModel",)
    official_param_names_mapping: ClassVar[dict[str, str]] = OFFICIAL_UMT5_MAPPING
    # transformers keeps these in fp32 (``UMT5PreTrainedModel._keep_in_fp32_modules = ["wo"]``),
    # but only when loading in float16; in bfloat16 it casts them like the rest.
    keep_fp32_for_dtypes: ClassVar[tuple[str, ...]] = ("float16",)

    vocab_size: int = 256384
    d_model: int = 4096
    d_kv: int = 64
    d_ff: int = 10240
    num_layers: int = 24
    num_heads: int = 64
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    layer_norm_epsilon: float = 1e-6
    feed_forward_proj: str = "gated-gelu"
    dropout_rate: float = 0.1
    pad_token_id: int = 0
    eos_token_id: int = 1
    # Text length the Wan pipelines pad prompt embeddings to (not a config.json key of UMT5).
    text_len: ClassVar[int] = 512

    param_names_mapping: dict[str, Any] = field(default_factory=dict)
    keep_fp32_modules: list[str] = field(default_factory=lambda: [r"(^|\.)wo\."])

    def hf_config_dict(self) -> dict[str, Any]:
        """The dict to build ``transformers.UMT5Config`` from (extra keys first, fields win)."""
        return {**self.extra, **self.to_dict()}

"""Arch config of LTX-2's text connectors (``LTX2TextConnectors``, the ``connectors/`` component).

The connectors turn the stacked hidden states of every Gemma 3 layer into one text context per stream:
a masked mean/range normalisation per layer, one ``text_proj_in`` projection, then a small 1D
transformer per stream (video, audio) whose padded positions are replaced by learned registers.
Field names are the Diffusers ``connectors/config.json`` keys (defaults: LTX-2.0).

Our names: ``text_proj_in`` (or ``video_text_proj_in`` / ``audio_text_proj_in``),
``{video,audio}_connector.learnable_registers``,
``{video,audio}_connector.transformer_blocks.N.attn1.{to_q,to_k,to_v,norm_q,norm_k,to_out}``,
``{video,audio}_connector.transformer_blocks.N.ff.{fc_in,fc_out}``.  In the official single file the
connectors sit in the DiT (``model.diffusion_model.{video,audio}_embeddings_connector.``) and the
projection is ``text_embedding_projection.aggregate_embed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from fastvideo.configs.models.base import ArchConfig, MappingValue

_C = r"^(video|audio)_connector\.transformer_blocks\.(\d+)\."


def _diffusers_to_ours() -> dict[str, MappingValue]:
    return {
        _C + r"attn1\.to_out\.0\.": r"\1_connector.transformer_blocks.\2.attn1.to_out.",
        _C + r"ff\.net\.0\.proj\.": r"\1_connector.transformer_blocks.\2.ff.fc_in.",
        _C + r"ff\.net\.2\.": r"\1_connector.transformer_blocks.\2.ff.fc_out.",
    }


_P = r"^(?:model\.diffusion_model\.)?"


def _official_to_diffusers() -> dict[str, str | None]:
    return {
        _P + r"text_embedding_projection\.aggregate_embed\.": "text_proj_in.",
        _P + r"(video|audio)_embeddings_connector\.transformer_1d_blocks\.(\d+)\.attn1\.q_norm\.":
            r"\1_connector.transformer_blocks.\2.attn1.norm_q.",
        _P + r"(video|audio)_embeddings_connector\.transformer_1d_blocks\.(\d+)\.attn1\.k_norm\.":
            r"\1_connector.transformer_blocks.\2.attn1.norm_k.",
        _P + r"(video|audio)_embeddings_connector\.transformer_1d_blocks\.(\d+)\.":
            r"\1_connector.transformer_blocks.\2.",
        _P + r"(video|audio)_embeddings_connector\.learnable_registers$": r"\1_connector.learnable_registers",
    }


@dataclass
class LTX2TextConnectorsConfig(ArchConfig):
    """Hyper-parameters of the LTX-2 text connectors (defaults: LTX-2.0 with Gemma-3-12B)."""

    checkpoint_class_names: ClassVar[tuple[str, ...]] = ("LTX2TextConnectors",)
    official_param_names_mapping: ClassVar[dict[str, str | None]] = _official_to_diffusers()

    caption_channels: int = 3840
    text_proj_in_factor: int = 49
    video_connector_num_attention_heads: int = 30
    video_connector_attention_head_dim: int = 128
    video_connector_num_layers: int = 2
    video_connector_num_learnable_registers: int | None = 128
    video_gated_attn: bool = False
    audio_connector_num_attention_heads: int = 30
    audio_connector_attention_head_dim: int = 128
    audio_connector_num_layers: int = 2
    audio_connector_num_learnable_registers: int | None = 128
    audio_gated_attn: bool = False
    connector_rope_base_seq_len: int = 4096
    rope_theta: float = 10000.0
    rope_double_precision: bool = True
    causal_temporal_positioning: bool = False
    rope_type: str = "interleaved"
    per_modality_projections: bool = False
    video_hidden_dim: int = 4096
    audio_hidden_dim: int = 2048
    proj_bias: bool = False

    param_names_mapping: dict[str, MappingValue] = field(default_factory=_diffusers_to_ours)

    def __post_init__(self) -> None:
        if self.rope_type != "interleaved":
            raise ValueError(f"LTX2TextConnectorsConfig: rope_type {self.rope_type!r} is not ported "
                             "(LTX-2.3's 'split' RoPE); only 'interleaved'")

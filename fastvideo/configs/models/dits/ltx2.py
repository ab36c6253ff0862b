"""Arch config of the LTX-2 joint audio-video DiT (``LTX2VideoTransformer3DModel``).

Field names are exactly the keys of the Diffusers ``transformer/config.json``; defaults are
the released LTX-2.0 (19B) model.  One block holds two streams (video ``d`` = heads x
head_dim, audio ``d_a``) that talk through audio-to-video and video-to-audio cross-attention.

Naming: ``param_names_mapping`` maps *Diffusers* names to ours; ``official_param_names_mapping``
maps the names of the official single-file checkpoint (``ltx-2-19b-*.safetensors``, prefix
``model.diffusion_model.``) to Diffusers names.

Our module names (``N`` = block index)::

    proj_in, audio_proj_in                                  token projections (patch size 1)
    caption_projection.{fc_in,fc_out}                       text projection (GELU-tanh MLP), audio_* too
    time_embed.{emb.fc_in,emb.fc_out,linear}                adaLN-single: sinusoid -> MLP -> SiLU -> Linear;
                                                            audio_time_embed, av_cross_attn_{video,audio}_scale_shift,
                                                            av_cross_attn_video_a2v_gate, av_cross_attn_audio_v2a_gate
    transformer_blocks.N.{attn1,attn2,audio_attn1,audio_attn2,audio_to_video_attn,video_to_audio_attn}
        .{to_q,to_k,to_v,norm_q,norm_k,to_out[,to_gate_logits]}
    transformer_blocks.N.{ff,audio_ff}.{fc_in,fc_out}
    transformer_blocks.N.{scale_shift_table,audio_scale_shift_table,
        video_a2v_cross_attn_scale_shift_table,audio_a2v_cross_attn_scale_shift_table}
    scale_shift_table, audio_scale_shift_table, proj_out, audio_proj_out   output heads
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from fastvideo.configs.models.base import ArchConfig, MappingValue

_B = r"^transformer_blocks\.(\d+)\."


def _diffusers_to_ours() -> dict[str, MappingValue]:
    return {
        # adaLN-single embedders: Diffusers' PixArt timestep embedder is our TimestepEmbedding (fc_in/fc_out).
        r"^(\w+)\.emb\.timestep_embedder\.linear_1\.": r"\1.emb.fc_in.",
        r"^(\w+)\.emb\.timestep_embedder\.linear_2\.": r"\1.emb.fc_out.",
        r"^caption_projection\.linear_1\.": "caption_projection.fc_in.",
        r"^caption_projection\.linear_2\.": "caption_projection.fc_out.",
        r"^audio_caption_projection\.linear_1\.": "audio_caption_projection.fc_in.",
        r"^audio_caption_projection\.linear_2\.": "audio_caption_projection.fc_out.",
        _B + r"(\w+)\.to_out\.0\.": r"transformer_blocks.\1.\2.to_out.",
        _B + r"(ff|audio_ff)\.net\.0\.proj\.": r"transformer_blocks.\1.\2.fc_in.",
        _B + r"(ff|audio_ff)\.net\.2\.": r"transformer_blocks.\1.\2.fc_out.",
    }


# The official single file names every DiT key with this prefix (it also holds the VAEs, the vocoder and
# the text connectors under other prefixes; the converter picks the DiT's keys by it).
OFFICIAL_PREFIX = "model.diffusion_model."
_P = r"^model\.diffusion_model\."
_PB = _P + r"transformer_blocks\.(\d+)\."


def _official_to_diffusers() -> dict[str, str | None]:
    rules: dict[str, str | None] = {
        # The text connectors live in the DiT's file but are their own component (connectors/).
        _P + r"(video|audio)_embeddings_connector\.": None,
        _P + r"patchify_proj\.": "proj_in.",
        _P + r"audio_patchify_proj\.": "audio_proj_in.",
        _P + r"adaln_single\.": "time_embed.",
        _P + r"audio_adaln_single\.": "audio_time_embed.",
        _P + r"av_ca_video_scale_shift_adaln_single\.": "av_cross_attn_video_scale_shift.",
        _P + r"av_ca_audio_scale_shift_adaln_single\.": "av_cross_attn_audio_scale_shift.",
        _P + r"av_ca_a2v_gate_adaln_single\.": "av_cross_attn_video_a2v_gate.",
        _P + r"av_ca_v2a_gate_adaln_single\.": "av_cross_attn_audio_v2a_gate.",
        _PB + r"scale_shift_table_a2v_ca_video$": r"transformer_blocks.\1.video_a2v_cross_attn_scale_shift_table",
        _PB + r"scale_shift_table_a2v_ca_audio$": r"transformer_blocks.\1.audio_a2v_cross_attn_scale_shift_table",
        _PB + r"(\w+)\.q_norm\.": r"transformer_blocks.\1.\2.norm_q.",
        _PB + r"(\w+)\.k_norm\.": r"transformer_blocks.\1.\2.norm_k.",
    }
    # Everything else keeps its name, minus the prefix.
    rules[_P] = ""
    return rules


@dataclass
class LTX2VideoConfig(ArchConfig):
    """Hyper-parameters of the LTX-2 audio-video DiT (defaults: LTX-2.0, 19B)."""

    checkpoint_class_names: ClassVar[tuple[str, ...]] = ("LTX2VideoTransformer3DModel",)
    official_param_names_mapping: ClassVar[dict[str, str | None]] = _official_to_diffusers()

    in_channels: int = 128
    out_channels: int | None = 128
    patch_size: int = 1
    patch_size_t: int = 1
    num_attention_heads: int = 32
    attention_head_dim: int = 128
    cross_attention_dim: int = 4096
    vae_scale_factors: tuple[int, int, int] = (8, 32, 32)
    pos_embed_max_pos: int = 20
    base_height: int = 2048
    base_width: int = 2048
    gated_attn: bool = False
    cross_attn_mod: bool = False
    audio_in_channels: int = 128
    audio_out_channels: int | None = 128
    audio_patch_size: int = 1
    audio_patch_size_t: int = 1
    audio_num_attention_heads: int = 32
    audio_attention_head_dim: int = 64
    audio_cross_attention_dim: int = 2048
    audio_scale_factor: int = 4
    audio_pos_embed_max_pos: int = 20
    audio_sampling_rate: int = 16000
    audio_hop_length: int = 160
    audio_gated_attn: bool = False
    audio_cross_attn_mod: bool = False
    num_layers: int = 48
    activation_fn: str = "gelu-approximate"
    qk_norm: str = "rms_norm_across_heads"
    norm_elementwise_affine: bool = False
    norm_eps: float = 1e-6
    caption_channels: int = 3840
    attention_bias: bool = True
    attention_out_bias: bool = True
    rope_theta: float = 10000.0
    rope_double_precision: bool = True
    causal_offset: int = 1
    timestep_scale_multiplier: int = 1000
    cross_attn_timestep_scale_multiplier: int = 1000
    rope_type: str = "interleaved"
    use_prompt_embeddings: bool = True
    perturbed_attn: bool = False
    ff_bias: bool = True
    audio_ff_bias: bool = True
    use_prompt_adaln_single: bool = True
    use_keyframes_abs_pos_embedding: bool = False

    param_names_mapping: dict[str, MappingValue] = field(default_factory=_diffusers_to_ours)
    # Diffusers' _skip_layerwise_casting_patterns = ["norm"]: the (parameter-free here) norms; the adaLN
    # tables stay in the model dtype in the reference, so nothing is kept in fp32.
    keep_fp32_modules: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.vae_scale_factors = tuple(self.vae_scale_factors)  # type: ignore[assignment]
        if self.out_channels is None:
            self.out_channels = self.in_channels
        if self.audio_out_channels is None:
            self.audio_out_channels = self.audio_in_channels
        problems = []
        if self.rope_type != "interleaved":
            problems.append(f"rope_type {self.rope_type!r} (LTX-2.3 'split' RoPE is not ported; only 'interleaved')")
        if self.qk_norm != "rms_norm_across_heads":
            problems.append(f"qk_norm {self.qk_norm!r} (only 'rms_norm_across_heads')")
        if self.activation_fn != "gelu-approximate":
            problems.append(f"activation_fn {self.activation_fn!r} (only 'gelu-approximate')")
        if self.norm_elementwise_affine:
            problems.append("norm_elementwise_affine true (LTX-2 block norms have no parameters)")
        if self.patch_size != 1 or self.patch_size_t != 1 or self.audio_patch_size != 1 or self.audio_patch_size_t != 1:
            problems.append("patch sizes other than 1 (the released models use 1)")
        if problems:
            raise ValueError("LTX2VideoConfig: unsupported settings: " + "; ".join(problems))

    @property
    def hidden_size(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    @property
    def audio_hidden_size(self) -> int:
        return self.audio_num_attention_heads * self.audio_attention_head_dim

"""Arch config of the Wan2.1 video DiT (``WanTransformer3DModel``).

Field names are exactly the keys of the Diffusers ``transformer/config.json`` so a
config can be read with :meth:`ArchConfig.from_dict` and written back unchanged.
Defaults are the Wan2.1 T2V 1.3B model; the I2V models are the same class with
``image_dim`` / ``added_kv_proj_dim`` set (and ``in_channels`` 36).

Naming: ``param_names_mapping`` maps *Diffusers* checkpoint names to our module
names; ``official_param_names_mapping`` maps the *official* Wan (and ComfyUI)
names to Diffusers names, so an official checkpoint is loaded by composing both.

Our module names (``N`` = block index)::

    patch_embedding                                   Conv3d patchifier
    condition_embedder.time_embedder.{fc_in,fc_out}   sinusoid -> MLP = temb
    condition_embedder.time_modulation                Linear(SiLU(temb)) -> 6*d
    condition_embedder.text_embedder.{fc_in,fc_out}   text projection
    condition_embedder.image_embedder.{norm_in,fc_in,fc_out,norm_out,pos_embed}  (I2V)
    blocks.N.modulation                               [1, 6, d] learned shift/scale/gate
    blocks.N.self_attn.{to_qkv,norm_q,norm_k,to_out}  q, k, v fused into one Linear
    blocks.N.cross_attn_norm                          affine LayerNorm before cross-attn
    blocks.N.cross_attn.{to_q,to_k,to_v,norm_q,norm_k,to_out}
    blocks.N.cross_attn.{to_k_img,to_v_img,norm_k_img}   (I2V)
    blocks.N.ffn.{fc_in,fc_out}
    head.{modulation,proj}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from fastvideo.configs.models.base import ArchConfig, MappingValue

_B = r"^blocks\.(\d+)\."


def _diffusers_to_ours() -> dict[str, MappingValue]:
    ce = "condition_embedder."
    return {
        # Condition embedders.
        r"^condition_embedder\.time_embedder\.linear_1\.": ce + "time_embedder.fc_in.",
        r"^condition_embedder\.time_embedder\.linear_2\.": ce + "time_embedder.fc_out.",
        r"^condition_embedder\.time_proj\.": ce + "time_modulation.",
        r"^condition_embedder\.text_embedder\.linear_1\.": ce + "text_embedder.fc_in.",
        r"^condition_embedder\.text_embedder\.linear_2\.": ce + "text_embedder.fc_out.",
        r"^condition_embedder\.image_embedder\.norm1\.": ce + "image_embedder.norm_in.",
        r"^condition_embedder\.image_embedder\.ff\.net\.0\.proj\.": ce + "image_embedder.fc_in.",
        r"^condition_embedder\.image_embedder\.ff\.net\.2\.": ce + "image_embedder.fc_out.",
        r"^condition_embedder\.image_embedder\.norm2\.": ce + "image_embedder.norm_out.",
        # Self-attention: q, k, v fused into one projection (parts 0, 1, 2 on dim 0).
        _B + r"attn1\.to_q\.(weight|bias)$": (r"blocks.\1.self_attn.to_qkv.\2", 0, 3),
        _B + r"attn1\.to_k\.(weight|bias)$": (r"blocks.\1.self_attn.to_qkv.\2", 1, 3),
        _B + r"attn1\.to_v\.(weight|bias)$": (r"blocks.\1.self_attn.to_qkv.\2", 2, 3),
        _B + r"attn1\.to_out\.0\.": r"blocks.\1.self_attn.to_out.",
        _B + r"attn1\.norm_(q|k)\.": r"blocks.\1.self_attn.norm_\2.",
        # Cross-attention (text; I2V adds a second key/value set for image tokens).
        _B + r"norm2\.": r"blocks.\1.cross_attn_norm.",
        _B + r"attn2\.to_(q|k|v)\.": r"blocks.\1.cross_attn.to_\2.",
        _B + r"attn2\.to_out\.0\.": r"blocks.\1.cross_attn.to_out.",
        _B + r"attn2\.norm_(q|k)\.": r"blocks.\1.cross_attn.norm_\2.",
        _B + r"attn2\.add_(k|v)_proj\.": r"blocks.\1.cross_attn.to_\2_img.",
        _B + r"attn2\.norm_added_k\.": r"blocks.\1.cross_attn.norm_k_img.",
        # Feed-forward and modulation.
        _B + r"ffn\.net\.0\.proj\.": r"blocks.\1.ffn.fc_in.",
        _B + r"ffn\.net\.2\.": r"blocks.\1.ffn.fc_out.",
        _B + r"scale_shift_table$": r"blocks.\1.modulation",
        # Output head.
        r"^scale_shift_table$": "head.modulation",
        r"^proj_out\.": "head.proj.",
    }


# Official checkpoints may carry ComfyUI's ``model.diffusion_model.`` prefix; every
# rule accepts it (first match wins, so prefix removal cannot be a separate rule).
_P = r"^(?:model\.diffusion_model\.)?"
_PB = _P + r"blocks\.(\d+)\."


def _official_to_diffusers() -> dict[str, str]:
    ce = "condition_embedder."
    rules: dict[str, str] = {
        _P + r"time_embedding\.0\.": ce + "time_embedder.linear_1.",
        _P + r"time_embedding\.2\.": ce + "time_embedder.linear_2.",
        _P + r"text_embedding\.0\.": ce + "text_embedder.linear_1.",
        _P + r"text_embedding\.2\.": ce + "text_embedder.linear_2.",
        _P + r"time_projection\.1\.": ce + "time_proj.",
        _P + r"img_emb\.proj\.0\.": ce + "image_embedder.norm1.",
        _P + r"img_emb\.proj\.1\.": ce + "image_embedder.ff.net.0.proj.",
        _P + r"img_emb\.proj\.3\.": ce + "image_embedder.ff.net.2.",
        _P + r"img_emb\.proj\.4\.": ce + "image_embedder.norm2.",
        _P + r"img_emb\.emb_pos$": ce + "image_embedder.pos_embed",
        _P + r"head\.modulation$": "scale_shift_table",
        _P + r"head\.head\.": "proj_out.",
        _PB + r"modulation$": r"blocks.\1.scale_shift_table",
        _PB + r"ffn\.0\.": r"blocks.\1.ffn.net.0.proj.",
        _PB + r"ffn\.2\.": r"blocks.\1.ffn.net.2.",
        # Official norm3 is the affine cross-attention norm (Diffusers norm2) and
        # vice versa; norm1/norm2 have no parameters in official checkpoints.
        _PB + r"norm3\.": r"blocks.\1.norm2.",
        _PB + r"norm2\.": r"blocks.\1.norm3.",
        _PB + r"cross_attn\.(k|v)_img\.": r"blocks.\1.attn2.add_\2_proj.",
        _PB + r"cross_attn\.norm_k_img\.": r"blocks.\1.attn2.norm_added_k.",
    }
    for official, diffusers in (("self_attn", "attn1"), ("cross_attn", "attn2")):
        rules[_PB + official + r"\.(q|k|v)\."] = r"blocks.\1." + diffusers + r".to_\2."
        rules[_PB + official + r"\.o\."] = r"blocks.\1." + diffusers + ".to_out.0."
        rules[_PB + official + r"\.norm_(q|k)\."] = r"blocks.\1." + diffusers + r".norm_\2."
    # Anything else (patch_embedding, ...) keeps its name, minus the ComfyUI prefix.
    rules[r"^model\.diffusion_model\."] = ""
    return rules


@dataclass
class WanVideoConfig(ArchConfig):
    """Hyper-parameters of the Wan2.1 DiT (defaults: T2V 1.3B)."""

    checkpoint_class_names: ClassVar[tuple[str, ...]] = ("WanTransformer3DModel",)
    # Official Wan / ComfyUI names -> Diffusers names (compose with param_names_mapping).
    official_param_names_mapping: ClassVar[dict[str, str]] = _official_to_diffusers()

    patch_size: tuple[int, int, int] = (1, 2, 2)
    num_attention_heads: int = 12
    attention_head_dim: int = 128
    in_channels: int = 16
    out_channels: int = 16
    text_dim: int = 4096
    freq_dim: int = 256
    ffn_dim: int = 8960
    num_layers: int = 30
    cross_attn_norm: bool = True
    qk_norm: str | None = "rms_norm_across_heads"
    eps: float = 1e-6
    image_dim: int | None = None
    added_kv_proj_dim: int | None = None
    rope_max_seq_len: int = 1024
    pos_embed_seq_len: int | None = None

    param_names_mapping: dict[str, MappingValue] = field(default_factory=_diffusers_to_ours)
    # What Diffusers keeps in fp32 (time_embedder, scale_shift_table, norm1/2/3 -- the
    # last also hits the image embedder's norms), in our names; re.search semantics.
    keep_fp32_modules: list[str] = field(
        default_factory=lambda: [
            r"(^|\.)time_embedder\.",
            r"(^|\.)modulation$",
            r"(^|\.)cross_attn_norm\.",
            r"(^|\.)image_embedder\.norm_(in|out)\.",
        ]
    )

    def __post_init__(self) -> None:
        self.patch_size = tuple(self.patch_size)  # type: ignore[assignment]
        if len(self.patch_size) != 3:
            raise ValueError(f"patch_size must have 3 entries (t, h, w), got {self.patch_size}")
        if self.out_channels is None:
            self.out_channels = self.in_channels

    @property
    def hidden_size(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    @property
    def is_i2v(self) -> bool:
        return self.image_dim is not None

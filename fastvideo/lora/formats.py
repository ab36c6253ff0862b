"""LoRA file formats: reading, key parsing, format detection and name mapping (no model changes here).

A LoRA key is ``<module>.<kind>``; the kinds understood:

====================================  ==========  ==========================================
suffix                                kind        meaning
====================================  ==========  ==========================================
``.lora_A.weight`` / ``.lora_down.weight``  ``A``       down projection [rank, in, ...]
``.lora_B.weight`` / ``.lora_up.weight``    ``B``       up projection [out, rank, ...]
``.lora_B.bias``                      ``B_bias``  bias delta (scaled like the weight delta)
``.alpha``                            ``alpha``   scalar: scale = alpha / rank
``.diff``                             ``diff``    full-rank weight delta (norms, ...)
``.diff_b``                           ``diff_b``  bias delta
``.dora_scale`` ...                   (refused)   DoRA is not supported
====================================  ==========  ==========================================

Formats (the ``<module>`` part), each mapped onto our parameter names by ordered rules through the
mapping engine (:mod:`fastvideo.mapping.rules`) -- the format's own rules, then the arch config's:

* ``diffusers``: ``transformer.blocks.N.attn1.to_q`` (PEFT / Diffusers ``save_lora_weights``);
  the LoRA's PEFT config (``lora_alpha``, ``r``, patterns) may ride in the safetensors metadata.
* ``official``: ``diffusion_model.blocks.N.self_attn.q`` (official Wan names; ComfyUI,
  DiffSynth, lightx2v ...), with ``lora_A``/``lora_B`` or ``lora_down``/``lora_up`` + ``.alpha``.
* ``kohya``: ``lora_unet_blocks_N_self_attn_q`` (musubi-tuner / kohya flattened names).

The module name gets ``.weight`` (``.bias`` for bias deltas) appended and runs through the chain:
a format rule, then ``official_param_names_mapping`` (official -> Diffusers), then
``param_names_mapping`` (Diffusers -> ours).  A merge rule there (q/k/v fused into ``to_qkv``) puts
the delta on a row slice of the fused parameter.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastvideo.mapping.rules import Rule, compile_rules, map_name


class LoraError(ValueError):
    """A LoRA that cannot be applied; raised before any weight is touched. ``report`` when there is one."""

    def __init__(self, message: str, report: Any = None):
        super().__init__(message)
        self.report = report


class LoraFileNotFound(LoraError, FileNotFoundError):
    pass


# suffix -> kind, longest first (".lora_B.bias" before ".bias" style ambiguities)
_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".lora_A.default.weight", "A"),
    (".lora_B.default.weight", "B"),
    (".lora_A.weight", "A"),
    (".lora_B.weight", "B"),
    (".lora_B.bias", "B_bias"),
    (".lora_down.weight", "A"),
    (".lora_up.weight", "B"),
    (".alpha", "alpha"),
    (".diff_b", "diff_b"),
    (".diff", "diff"),
    (".dora_scale", "dora"),
    (".lora_magnitude_vector", "dora"),
    (".lora_magnitude_vector.default.weight", "dora"),
    (".lora_magnitude_vector.weight", "dora"),
)
LORA_KINDS = ("A", "B", "B_bias", "diff", "diff_b")


def split_key(key: str) -> tuple[str, str] | None:
    """``blocks.0.attn1.to_q.lora_A.weight`` -> (``blocks.0.attn1.to_q``, ``A``); None if not a LoRA key."""
    best = None
    for suffix, kind in _SUFFIXES:
        if key.endswith(suffix) and (best is None or len(suffix) > len(best[0])):
            best = (suffix, kind)
    if best is None:
        return None
    return key[: -len(best[0])], best[1]


LoraSpec = tuple[str, float]


def parse_lora_arg(text: str) -> LoraSpec:
    """``PATH[:STRENGTH]`` -> (path, strength); a trailing ``:<number>`` is the strength (Windows drive
    letters and other colons stay in the path)."""
    path, sep, tail = text.rpartition(":")
    if sep and path:
        try:
            return path, float(tail)
        except ValueError:
            pass
    return text, 1.0


def normalize_loras(loras: Iterable[Any] | None) -> list[LoraSpec]:
    """(path, strength) pairs from pairs, ``"PATH[:STRENGTH]"`` strings or ``{"path", "strength"}`` dicts."""
    out: list[LoraSpec] = []
    for item in loras or ():
        if isinstance(item, (str, os.PathLike)):
            path, strength = parse_lora_arg(os.fspath(item))
        elif isinstance(item, dict):
            if "path" not in item:
                raise LoraError(f"a LoRA entry needs a 'path': {item!r}")
            path, strength = item["path"], item.get("strength", 1.0)
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            path, strength = item
        else:
            raise LoraError(f"a LoRA entry must be (path, strength), 'PATH[:STRENGTH]' or a dict; got {item!r}")
        try:
            strength = float(strength)
        except (TypeError, ValueError):
            raise LoraError(f"LoRA {path}: strength must be a number, got {strength!r}") from None
        if strength != strength or strength in (float("inf"), float("-inf")):
            raise LoraError(f"LoRA {path}: strength must be finite, got {strength}")
        out.append((os.fspath(path), strength))
    return out


# ----------------------------------------------------------------------------- format rules

# Kohya / musubi-tuner: flattened official names. The module name arrives with ".weight"/".bias" appended.
KOHYA_RULES: dict[str, str] = {
    r"^lora_unet_(?:diffusion_model_)?blocks_(\d+)_(self_attn|cross_attn)_(q|k|v|o|k_img|v_img|norm_q|norm_k|norm_k_img)\.":
        r"blocks.\1.\2.\3.",
    r"^lora_unet_(?:diffusion_model_)?blocks_(\d+)_ffn_(\d+)\.": r"blocks.\1.ffn.\2.",
    r"^lora_unet_(?:diffusion_model_)?blocks_(\d+)_(norm\d|modulation)(\.|$)": r"blocks.\1.\2\3",
    r"^lora_unet_(?:diffusion_model_)?(time_embedding|text_embedding|time_projection)_(\d+)\.": r"\1.\2.",
    r"^lora_unet_(?:diffusion_model_)?head_head\.": "head.head.",
    r"^lora_unet_(?:diffusion_model_)?head_modulation(\.|$)": r"head.modulation\1",
    r"^lora_unet_(?:diffusion_model_)?img_emb_proj_(\d+)\.": r"img_emb.proj.\1.",
    r"^lora_unet_(?:diffusion_model_)?patch_embedding\.": "patch_embedding.",
}
# Official names: the (ComfyUI) prefixes off; the arch config's official mapping does the rest.
OFFICIAL_PREFIX_RULES: dict[str, str] = {r"^(?:model\.)?diffusion_model\.": ""}
# Diffusers / PEFT: the pipeline component prefix off.
DIFFUSERS_PREFIX_RULES: dict[str, str] = {r"^transformer\.": "", r"^base_model\.model\.": ""}

FORMATS = ("diffusers", "official", "kohya")


def detect_format(modules: list[str]) -> str:
    """The format of a LoRA from its module names (first key prefix that decides)."""
    if any(m.startswith("lora_unet_") for m in modules):
        return "kohya"
    if any(m.startswith(("diffusion_model.", "model.diffusion_model.")) for m in modules):
        return "official"
    if any(m.startswith(("transformer.", "base_model.model.")) for m in modules):
        return "diffusers"
    official = sum(bool(re.search(r"(^|\.)(self_attn|cross_attn)\.|(^|\.)ffn\.\d", m)) for m in modules)
    diffusers = sum(bool(re.search(r"(^|\.)(attn1|attn2)\.|(^|\.)ffn\.net\.", m)) for m in modules)
    return "official" if official > diffusers else "diffusers"


@dataclass
class Stage:
    name: str
    rules: list[Rule]


def format_stages(fmt: str, arch_config: Any) -> list[Stage]:
    """The rule chain of a format: format rules, then (official / kohya) official -> Diffusers, then ours."""
    ours = Stage("param_names_mapping", compile_rules(getattr(arch_config, "param_names_mapping", {}) or {}))
    official = Stage("official_param_names_mapping",
                     compile_rules(getattr(arch_config, "official_param_names_mapping", {}) or {}))
    extra = getattr(arch_config, "lora_param_names_mapping", None) or {}
    first = [Stage("lora_param_names_mapping", compile_rules(extra))] if extra else []
    if fmt == "diffusers":
        return first + [Stage("diffusers", compile_rules(DIFFUSERS_PREFIX_RULES)), ours]
    if fmt == "official":
        return first + [Stage("official", compile_rules(OFFICIAL_PREFIX_RULES)), official, ours]
    if fmt == "kohya":
        return first + [Stage("kohya", compile_rules(KOHYA_RULES)), official, ours]
    raise ValueError(f"unknown LoRA format {fmt!r}; known: {', '.join(FORMATS)}")


@dataclass
class Mapped:
    """Where a LoRA module's weight (or bias) lands: our parameter, the rules that fired, a fused slice."""

    target: str
    rules: list[str]
    merge_index: int | None = None
    merge_count: int | None = None

    @property
    def rule_text(self) -> str:
        return " -> ".join(self.rules) if self.rules else "(name unchanged)"


def map_through(name: str, stages: list[Stage]) -> Mapped:
    merge_index = merge_count = None
    fired = []
    for stage in stages:
        name, rule = map_name(name, stage.rules)
        if rule is not None:
            fired.append(f"{stage.name}#{rule.index} {rule.pattern}")
            if rule.is_merge:
                merge_index, merge_count = rule.merge_index, rule.merge_count
    return Mapped(name, fired, merge_index, merge_count)


# ----------------------------------------------------------------------------- reading


@dataclass
class LoraFile:
    path: Path
    tensors: dict[str, Any]  # key -> torch.Tensor
    metadata: dict[str, str] = field(default_factory=dict)

    def peft_config(self) -> dict[str, Any]:
        raw = self.metadata.get("lora_adapter_metadata")
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, TypeError):
            return {}
        if not isinstance(data, dict):
            return {}
        # Diffusers' save_lora_weights packs the config per component: {"transformer.lora_alpha": ...}
        packed = {k[len("transformer."):]: v for k, v in data.items() if k.startswith("transformer.")}
        return packed or data


def peft_alpha(config: dict[str, Any], module: str) -> float | None:
    """``lora_alpha`` of a module from a PEFT LoraConfig (``alpha_pattern`` first); None without a config."""
    if not config or "lora_alpha" not in config:
        return None
    plain = re.sub(r"^(transformer|base_model\.model)\.", "", module)
    for pattern, alpha in (config.get("alpha_pattern") or {}).items():
        if re.fullmatch(rf"(.*\.)?{pattern}", plain):
            return float(alpha)
    return float(config["lora_alpha"])


# ----------------------------------------------------------------------------- architecture guess

KNOWN_WAN_SIZES = {(1536, 30): "Wan2.1 1.3B", (5120, 40): "Wan 14B", (3072, 30): "Wan2.2 TI2V 5B"}


def describe_size(hidden: int | None, blocks: int | None) -> str:
    parts = []
    if hidden is not None:
        parts.append(f"hidden size {hidden}")
    if blocks is not None:
        parts.append(f"{blocks} blocks")
    text = ", ".join(parts) or "unknown size"
    name = KNOWN_WAN_SIZES.get((hidden, blocks)) if hidden is not None and blocks is not None else None
    return text + (f" (like {name})" if name else "")


def other_architecture(modules: list[str]) -> str | None:
    """A guess at the family of a LoRA whose names are not Wan's; None when they could be Wan's."""
    joined = "\n".join(modules)
    wan = (r"(^|[._])blocks[._]\d+[._](self_attn|cross_attn|attn1|attn2|ffn|norm|modulation|scale_shift)"
           r"|(^|[._])(patch_embedding|head[._]head|proj_out|time_embedding|text_embedding|time_projection"
           r"|condition_embedder|img_emb)([._]|$)")
    if re.search(wan, joined, re.M):
        return None
    guesses = (
        (r"double_blocks|single_blocks|single_transformer_blocks", "a Flux / HunyuanVideo LoRA"),
        (r"down_blocks|up_blocks|input_blocks|output_blocks|mid_block", "a Stable Diffusion (UNet) LoRA"),
        (r"transformer_blocks[._]\d+", "a LoRA for another DiT (transformer_blocks.N: LTX, CogVideoX, Mochi, ...)"),
        (r"lora_te\d?_|text_model|text_encoder", "a text-encoder LoRA"),
        (r"(^|\.)layers\.\d+\.(self_attn|mlp)", "a language-model LoRA"),
    )
    for pattern, what in guesses:
        if re.search(pattern, joined):
            return what
    return "a LoRA for another model (none of the Wan DiT's names: blocks.N.self_attn / attn1 / ffn, ...)"


def block_count(targets: list[str]) -> int | None:
    idx = [int(m.group(1)) for t in targets for m in [re.match(r"^blocks\.(\d+)\.", t)] if m]
    return max(idx) + 1 if idx else None


def prod(shape) -> int:
    return math.prod(int(d) for d in shape)

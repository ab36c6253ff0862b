"""Tiny random-weight LTX-2 models in the real layouts (under a MB), for tests, smoke runs and the porting guide.

``make_tiny_ltx2(out_dir, layout="diffusers", seed=0)`` writes either

* ``layout="diffusers"``: a Diffusers ``LTX2Pipeline`` folder (``model_index.json`` + ``transformer``, ``vae``,
  ``audio_vae``, ``vocoder``, ``connectors``, ``text_encoder`` (a tiny Gemma 3 with its vision tower, as
  Diffusers saves it), ``tokenizer``, ``scheduler``), loadable by ``VideoGenerator`` and by Diffusers'
  ``LTX2Pipeline.from_pretrained``; or
* ``layout="official"``: the official Lightricks layout: one single file ``ltx-2-tiny.safetensors`` holding the
  DiT and connectors (``model.diffusion_model.``), ``text_embedding_projection.``, ``vae.``, ``audio_vae.`` and
  ``vocoder.`` under their official names, the Gemma 3 folder next to it (``gemma/``, with its tokenizer) and
  ``fastvideo_tiny.json`` with the small component configs the released file fixes implicitly.

Both layouts made with the same seed hold the same weights (the converter is tested on that).  The tokenizer
is the tiny SentencePiece one of the Wan tiny models (a real Gemma tokenizer is 4 MB).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from fastvideo.configs.pipelines.ltx2 import LTX2_SCHEDULER_CONFIG
from fastvideo.models.loader.checkpoint import save_safetensors
from fastvideo.models.loader.weights import export_state_dict
from fastvideo.testing.folders import tiny_tokenizer, write_tiny_folder
from fastvideo.testing.tiny import DIFFUSERS_VERSION, _randomize

OFFICIAL_FILE = "ltx-2-tiny.safetensors"
_FILE_PREFIXES = ("model.diffusion_model.", "vae.", "audio_vae.", "vocoder.")
TINY_JSON = "fastvideo_tiny.json"

TINY_LTX2: dict[str, dict[str, Any]] = {
    "transformer": dict(in_channels=8, out_channels=8, num_attention_heads=2, attention_head_dim=8,
                        cross_attention_dim=16, vae_scale_factors=[8, 16, 16], audio_in_channels=8,
                        audio_out_channels=8, audio_num_attention_heads=2, audio_attention_head_dim=4,
                        audio_cross_attention_dim=8, num_layers=2, caption_channels=16),
    "connectors": dict(caption_channels=16, text_proj_in_factor=3, video_connector_num_attention_heads=2,
                       video_connector_attention_head_dim=8, video_connector_num_layers=1,
                       video_connector_num_learnable_registers=4, audio_connector_num_attention_heads=2,
                       audio_connector_attention_head_dim=8, audio_connector_num_layers=1,
                       audio_connector_num_learnable_registers=4),
    "vae": dict(latent_channels=8, block_out_channels=[8, 16, 32, 32], decoder_block_out_channels=[8, 16, 32],
                layers_per_block=[1, 1, 1, 1, 1], decoder_layers_per_block=[1, 1, 1, 1], patch_size=2,
                decoder_causal=False, spatial_compression_ratio=16, temporal_compression_ratio=8),
    "audio_vae": dict(base_channels=8, ch_mult=[1, 2, 4], num_res_blocks=1, latent_channels=2, mel_bins=16,
                      resolution=16),
    "vocoder": dict(in_channels=32, hidden_channels=16, out_channels=2, upsample_kernel_sizes=[4, 4],
                    upsample_factors=[2, 2], resnet_kernel_sizes=[3, 5], resnet_dilations=[[1, 3], [1, 2]],
                    output_sampling_rate=24000),
}
TINY_GEMMA_TEXT = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                       num_key_value_heads=1, head_dim=8, max_position_embeddings=128, sliding_window=4)
TINY_GEMMA_VISION = dict(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
                         image_size=8, patch_size=4)
TINY_TEXT_LEN = 16  # a multiple of the connectors' 4 registers

_CLASSES = {
    "transformer": ("LTX2VideoTransformer3DModel", "diffusers"), "vae": ("AutoencoderKLLTX2Video", "diffusers"),
    "audio_vae": ("AutoencoderKLLTX2Audio", "diffusers"), "vocoder": ("LTX2Vocoder", "ltx2"),
    "connectors": ("LTX2TextConnectors", "ltx2"),
}


def build_tiny_ltx2(seed: int = 0, sizes: dict[str, dict[str, Any]] | None = None) -> dict[str, torch.nn.Module]:
    """Our five LTX-2 modules (not the text encoder) with deterministic random weights and latent statistics."""
    from fastvideo.configs.registry import COMPONENT_CLASSES, import_string

    sizes = {**TINY_LTX2, **(sizes or {})}
    g = torch.Generator().manual_seed(seed)
    modules = {}
    for name, cfg_dict in sizes.items():
        cc = COMPONENT_CLASSES[_CLASSES[name][0]]
        cfg = import_string(cc.arch_config).from_dict(cfg_dict)
        module = import_string(cc.model).from_arch_config(cfg)
        module.arch_config = cfg
        _randomize(module, g, scale=0.2)
        if hasattr(module, "latents_mean"):
            with torch.no_grad():
                module.latents_mean.copy_(torch.randn(module.latents_mean.shape, generator=g) * 0.3)
                module.latents_std.copy_(torch.rand(module.latents_std.shape, generator=g) + 0.5)
        modules[name] = module.eval()
    return modules


def _gemma(seed: int, vocab_size: int):
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Gemma3ForConditionalGeneration(Gemma3Config(
            text_config=dict(TINY_GEMMA_TEXT, vocab_size=vocab_size), vision_config=TINY_GEMMA_VISION,
            mm_tokens_per_image=4)).eval()


def make_tiny_ltx2(out_dir: str | os.PathLike, layout: str = "diffusers", seed: int = 0,
                   overwrite: bool = False) -> Path:
    """Write a tiny LTX-2 model folder; atomically (temp folder, then rename)."""
    def write(tmp: Path) -> None:
        text_dir = tmp / ("text_encoder" if layout == "diffusers" else "gemma")
        vocab = tiny_tokenizer(tmp / "tokenizer" if layout == "diffusers" else text_dir, seed)
        _gemma(seed, max(vocab, 64)).save_pretrained(str(text_dir), safe_serialization=True)
        modules = build_tiny_ltx2(seed)
        (_write_diffusers if layout == "diffusers" else _write_official)(tmp, modules)

    return write_tiny_folder(out_dir, layout, overwrite, write)


def _json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _diffusers_state(module) -> dict[str, torch.Tensor]:
    return export_state_dict(module, module.arch_config.param_names_mapping)


def _write_diffusers(root: Path, modules: dict) -> None:
    _json(root / "vae" / "latent_rgb.json", modules["vae"].fit_latent_rgb())
    index: dict[str, Any] = {"_class_name": "LTX2Pipeline", "_diffusers_version": DIFFUSERS_VERSION}
    for name, module in modules.items():
        cls_name, library = _CLASSES[name]
        _json(root / name / "config.json", {"_class_name": cls_name, "_diffusers_version": DIFFUSERS_VERSION,
                                            **module.arch_config.to_dict()})
        save_safetensors(root / name / "diffusion_pytorch_model.safetensors", _diffusers_state(module),
                         {"format": "pt"})
        index[name] = [library, cls_name]
    _json(root / "scheduler" / "scheduler_config.json", LTX2_SCHEDULER_CONFIG)
    tok_class = json.loads((root / "tokenizer" / "tokenizer_config.json").read_text()).get("tokenizer_class")
    index.update(scheduler=["diffusers", "FlowMatchEulerDiscreteScheduler"],
                 text_encoder=["transformers", "Gemma3ForConditionalGeneration"],
                 tokenizer=["transformers", tok_class or "T5TokenizerFast"])
    _json(root / "model_index.json", index)


def official_state(modules: dict) -> dict[str, torch.Tensor]:
    """The official single file's tensors: Diffusers names renamed by inverting each arch config's official rules
    (the candidate under the component's prefix in the single file whose forward mapping gives the name back)."""
    from fastvideo.conversion.ltx2 import COMPONENTS
    from fastvideo.mapping.rules import compile_rules, invert_name, map_name

    out: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        prefixes = COMPONENTS[name][2]
        rules = compile_rules(type(module.arch_config).official_param_names_mapping)
        for key, tensor in _diffusers_state(module).items():
            try:
                candidates = [c[0] for c in invert_name(key, rules)]
            except ValueError:
                candidates = []
            # A rule that only strips the prefix (or makes it optional) inverts without it: put it back.
            candidates += [p + c for c in [*candidates, key] for p in _FILE_PREFIXES]
            sources = [c for c in candidates if c.startswith(prefixes) and map_name(c, rules)[0] == key]
            if not sources:
                raise ValueError(f"{name}: no official name for {key}")
            out[sources[0]] = tensor
    return out


def _write_official(root: Path, modules: dict) -> None:
    save_safetensors(root / OFFICIAL_FILE, official_state(modules), {"format": "pt"})
    _json(root / TINY_JSON, {name: module.arch_config.to_dict() for name, module in modules.items()})

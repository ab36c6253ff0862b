"""Tiny random-weight Wan models in the real layouts (a few MB), for tests and smoke runs.

``make_tiny_model(out_dir, task="t2v", layout="diffusers", seed=0)`` writes a
complete model folder: the same classes and file layout as the released Wan2.1
checkpoints, with small widths, random weights (deterministic for the seed) and a
real SentencePiece tokenizer trained on a built-in caption corpus.

* ``layout="diffusers"``: ``model_index.json`` + component folders, loadable by
  ``VideoGenerator.from_pretrained`` and by Diffusers' ``WanPipeline`` /
  ``WanImageToVideoPipeline``.
* ``layout="official"``: the official Wan repo layout (``config.json`` of ``WanModel``,
  DiT safetensors, ``Wan2.1_VAE.pth``, ``models_t5_umt5-xxl-enc-bf16.pth``, tokenizer
  folder).  ``fastvideo convert`` turns it into the former, reading the small VAE/T5
  sizes from the tensor shapes as it does for the released checkpoints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from fastvideo.configs.pipelines.wan import WAN_SCHEDULER_CONFIG
from fastvideo.models.loader.checkpoint import save_safetensors
from fastvideo.models.loader.weights import export_state_dict
from fastvideo.testing.folders import tiny_tokenizer, write_tiny_folder

DIFFUSERS_VERSION = "0.42.1"
WAN_LATENTS_MEAN = [-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715, 0.5517,
                    -0.3632, -0.1922, -0.9497, 0.2503, -0.2921]
WAN_LATENTS_STD = [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652, 1.5579,
                   1.6382, 1.1253, 2.8251, 1.916]

TINY_DIT: dict[str, Any] = dict(
    patch_size=[1, 2, 2], num_attention_heads=2, attention_head_dim=16, in_channels=16, out_channels=16,
    text_dim=32, freq_dim=32, ffn_dim=64, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
    eps=1e-6, image_dim=None, added_kv_proj_dim=None, rope_max_seq_len=1024, pos_embed_seq_len=None,
)
TINY_VAE: dict[str, Any] = dict(
    base_dim=8, z_dim=16, dim_mult=[1, 2, 2, 2], num_res_blocks=1, attn_scales=[],
    temperal_downsample=[False, True, True], dropout=0.0, latents_mean=WAN_LATENTS_MEAN, latents_std=WAN_LATENTS_STD,
)
TINY_T5: dict[str, Any] = dict(
    d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, relative_attention_num_buckets=32,
    relative_attention_max_distance=128, feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6,
    dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=False,
)
TINY_CLIP: dict[str, Any] = dict(
    hidden_size=32, intermediate_size=64, projection_dim=32, num_hidden_layers=3, num_attention_heads=2,
    num_channels=3, image_size=32, patch_size=8, hidden_act="gelu", layer_norm_eps=1e-5,
)
WAN_SCHEDULER: dict[str, Any] = WAN_SCHEDULER_CONFIG


def _randomize(module: torch.nn.Module, generator: torch.Generator, scale: float = 0.2) -> None:
    """Deterministic random weights: every parameter ~ N(0, scale) (norm gains near 1)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=generator, dtype=torch.float32) * scale
            is_gain = p.ndim == 1 and any(k in name for k in ("norm", "gamma", "layer_norm")) and "bias" not in name
            p.copy_((1.0 + noise) if is_gain else noise)


def build_tiny_modules(task: str = "t2v", seed: int = 0, vocab_size: int | None = None, dit: dict | None = None,
                       vae: dict | None = None, t5: dict | None = None):
    """The tiny modules (ours for DiT and VAE, transformers' for the encoders) with random weights."""
    from fastvideo.configs.models.dits.wan import WanVideoConfig
    from fastvideo.configs.models.encoders.clip import CLIPVisionArchConfig
    from fastvideo.configs.models.encoders.t5 import T5EncoderArchConfig
    from fastvideo.configs.models.vaes.wan import WanVAEConfig
    from fastvideo.models.dits.wan import WanTransformer3DModel
    from fastvideo.models.encoders.clip import CLIPVisionEncoder
    from fastvideo.models.encoders.t5 import UMT5TextEncoder
    from fastvideo.models.vaes.wan import AutoencoderKLWan

    g = torch.Generator().manual_seed(seed)
    dit_cfg = dict(TINY_DIT, **(dit or {}))
    if task == "i2v":
        dit_cfg.update(image_dim=TINY_CLIP["hidden_size"], added_kv_proj_dim=dit_cfg["num_attention_heads"]
                       * dit_cfg["attention_head_dim"], in_channels=2 * TINY_VAE["z_dim"] + 4)
    modules: dict[str, torch.nn.Module] = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        t5_cfg = dict(TINY_T5, **(t5 or {}), vocab_size=vocab_size or 600)
        configs = {
            "transformer": (WanTransformer3DModel, WanVideoConfig.from_dict(dit_cfg)),
            "vae": (AutoencoderKLWan, WanVAEConfig.from_dict(dict(TINY_VAE, **(vae or {})))),
            "text_encoder": (UMT5TextEncoder.from_arch_config, T5EncoderArchConfig.from_dict(t5_cfg)),
        }
        if task == "i2v":
            configs["image_encoder"] = (CLIPVisionEncoder.from_arch_config, CLIPVisionArchConfig.from_dict(TINY_CLIP))
        for name, (build, cfg) in configs.items():
            modules[name] = build(cfg)
            modules[name].arch_config = cfg
            _randomize(modules[name], g)
    return modules


def make_tiny_model(out_dir: str | os.PathLike, task: str = "t2v", layout: str = "diffusers", seed: int = 0,
                    overwrite: bool = False) -> Path:
    """Write a tiny Wan model folder; atomically (temp folder, then rename)."""
    if task not in ("t2v", "i2v"):
        raise ValueError(f"task must be 't2v' or 'i2v', got {task!r}")
    def write(tmp: Path) -> None:
        vocab = tiny_tokenizer(tmp / ("tokenizer" if layout == "diffusers" else "google/umt5-xxl"), seed)
        modules = build_tiny_modules(task, seed, vocab_size=vocab)
        (_write_diffusers if layout == "diffusers" else _write_official)(tmp, task, modules)

    return write_tiny_folder(out_dir, layout, overwrite, write)


def _json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _write_diffusers(root: Path, task: str, modules: dict) -> None:
    dit, vae, te = modules["transformer"], modules["vae"], modules["text_encoder"]
    _json(root / "transformer" / "config.json", {"_class_name": "WanTransformer3DModel",
                                                 "_diffusers_version": DIFFUSERS_VERSION,
                                                 **dit.arch_config.to_dict()})
    save_safetensors(root / "transformer" / "diffusion_pytorch_model.safetensors",
                     export_state_dict(dit, dit.arch_config.param_names_mapping), {"format": "pt"})
    _json(root / "vae" / "config.json", {"_class_name": "AutoencoderKLWan", "_diffusers_version": DIFFUSERS_VERSION,
                                         **vae.arch_config.to_dict()})
    save_safetensors(root / "vae" / "diffusion_pytorch_model.safetensors",
                     export_state_dict(vae, vae.arch_config.param_names_mapping), {"format": "pt"})
    te_config = te.config.to_dict()
    te_config["architectures"] = ["UMT5EncoderModel"]
    _json(root / "text_encoder" / "config.json", te_config)
    save_safetensors(root / "text_encoder" / "model.safetensors", export_state_dict(te, {}), {"format": "pt"})
    _json(root / "scheduler" / "scheduler_config.json", WAN_SCHEDULER)
    index = {
        "_class_name": "WanPipeline", "_diffusers_version": DIFFUSERS_VERSION,
        "scheduler": ["diffusers", "UniPCMultistepScheduler"], "text_encoder": ["transformers", "UMT5EncoderModel"],
        "tokenizer": ["transformers", "T5TokenizerFast"], "transformer": ["diffusers", "WanTransformer3DModel"],
        "vae": ["diffusers", "AutoencoderKLWan"], "transformer_2": [None, None], "boundary_ratio": None,
    }
    if task == "i2v":
        enc = modules["image_encoder"]
        enc_config = enc.config.to_dict()
        enc_config["architectures"] = ["CLIPVisionModelWithProjection"]
        _json(root / "image_encoder" / "config.json", enc_config)
        save_safetensors(root / "image_encoder" / "model.safetensors", export_state_dict(enc, {}), {"format": "pt"})
        from transformers import CLIPImageProcessor

        size = TINY_CLIP["image_size"]
        CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}).save_pretrained(
            str(root / "image_processor"))
        index.update(_class_name="WanImageToVideoPipeline", image_encoder=["transformers",
                     "CLIPVisionModelWithProjection"], image_processor=["transformers", "CLIPImageProcessor"],
                     expand_timesteps=False)
    _json(root / "model_index.json", index)


def _to_official(sd: dict[str, torch.Tensor], official_to_diffusers: dict) -> dict[str, torch.Tensor]:
    """Rename Diffusers-named tensors to official names by inverting the official->Diffusers rules."""
    from fastvideo.mapping.rules import compile_rules, invert_name

    rules = compile_rules(official_to_diffusers)
    out = {}
    for name, tensor in sd.items():
        (source, _, _), = invert_name(name, rules)
        out[source] = tensor
    return out


def _write_official(root: Path, task: str, modules: dict) -> None:
    from fastvideo.configs.models.encoders.t5 import OFFICIAL_UMT5_MAPPING

    dit, vae, te = modules["transformer"], modules["vae"], modules["text_encoder"]
    c = dit.arch_config
    official_cfg = {
        "_class_name": "WanModel", "_diffusers_version": "0.30.0", "model_type": task,
        "dim": c.num_attention_heads * c.attention_head_dim, "ffn_dim": c.ffn_dim, "freq_dim": c.freq_dim,
        "in_dim": c.in_channels, "out_dim": c.out_channels, "num_heads": c.num_attention_heads,
        "num_layers": c.num_layers, "text_len": 512, "eps": c.eps, "patch_size": list(c.patch_size),
        "text_dim": c.text_dim, "window_size": [-1, -1], "qk_norm": True, "cross_attn_norm": True,
    }
    if task == "i2v":
        official_cfg["image_dim"] = c.image_dim
    _json(root / "config.json", official_cfg)
    diffusers_sd = export_state_dict(dit, c.param_names_mapping)
    save_safetensors(root / "diffusion_pytorch_model.safetensors",
                     _to_official(diffusers_sd, type(c).official_param_names_mapping), {"format": "pt"})
    vae_sd = export_state_dict(vae, vae.arch_config.param_names_mapping)
    torch.save(_to_official(vae_sd, vae.arch_config.official_mapping()), root / "Wan2.1_VAE.pth")
    te_sd = {k: v.to(torch.bfloat16) for k, v in export_state_dict(te, {}).items()}
    torch.save(_to_official(te_sd, OFFICIAL_UMT5_MAPPING), root / "models_t5_umt5-xxl-enc-bf16.pth")
    # No sidecar: fastvideo convert reads the VAE and T5 sizes from the tensor shapes (conversion/wan_sizes.py).

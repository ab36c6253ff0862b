"""Tiny random-weight Wan2.2 models in the real layouts (a few MB), for tests and smoke runs.

``make_tiny_wan22(out_dir, task="ti2v", layout="diffusers", seed=0)``; ``task``:

* ``ti2v``: TI2V-5B's shape: one DiT over the Wan2.2 VAE (patchify 2, residual blocks, 16x16x4
  compression), ``expand_timesteps: true``;
* ``t2v-moe``: T2V-A14B's shape: two experts (``transformer`` high noise, ``transformer_2`` low noise) over the
  Wan2.1 VAE, ``boundary_ratio`` 0.875;
* ``i2v-moe``: I2V-A14B's: two 36-input-channel experts, no CLIP image encoder, ``boundary_ratio`` 0.9.

``layout="diffusers"``: loadable by ``VideoGenerator`` and by Diffusers' ``WanPipeline`` /
``WanImageToVideoPipeline``.  ``layout="official"``: the Wan2.2 repo layout: ``config.json`` (``WanModel``)
and DiT shards at the top (TI2V) or in ``high_noise_model/`` + ``low_noise_model/`` (A14B), ``Wan2.2_VAE.pth``
(TI2V) or ``Wan2.1_VAE.pth``, ``models_t5_umt5-xxl-enc-bf16.pth`` and ``google/umt5-xxl/``.  Unlike the Wan2.1
tiny maker it writes no sidecar: ``fastvideo convert`` reads every size from the files themselves.  Both
layouts made with the same seed hold the same weights.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from fastvideo.configs.models.vaes.wan22 import WAN22_LATENTS_MEAN, WAN22_LATENTS_STD
from fastvideo.testing.folders import tiny_tokenizer, write_tiny_folder
from fastvideo.testing.tiny import (
    DIFFUSERS_VERSION,
    TINY_DIT,
    TINY_T5,
    TINY_VAE,
    WAN_SCHEDULER,
    _json,
    _randomize,
    _to_official,
)

TASKS = ("ti2v", "t2v-moe", "i2v-moe")
BOUNDARY = {"t2v-moe": 0.875, "i2v-moe": 0.9}
Z22 = 8  # tiny Wan2.2 VAE latent channels (the released one has 48)
TINY_VAE22: dict[str, Any] = dict(
    base_dim=8, decoder_base_dim=12, z_dim=Z22, dim_mult=[1, 2, 4, 4], num_res_blocks=1, attn_scales=[],
    temperal_downsample=[False, True, True], dropout=0.0, is_residual=True, in_channels=12, out_channels=12,
    patch_size=2, scale_factor_spatial=16, scale_factor_temporal=4,
    # The official code's statistics (48 values), the first Z22: what fastvideo convert writes for this VAE.
    latents_mean=WAN22_LATENTS_MEAN[:Z22], latents_std=WAN22_LATENTS_STD[:Z22],
)
SHARDS = 2  # official A14B experts are sharded; the tiny ones too (2 files + index)


def build_tiny_wan22(task: str = "ti2v", seed: int = 0, vocab_size: int = 600) -> dict[str, torch.nn.Module]:
    """The tiny modules (ours for the DiTs and VAE, transformers' for the text encoder) with random weights."""
    from fastvideo.configs.models.dits.wan import WanVideoConfig
    from fastvideo.configs.models.encoders.t5 import T5EncoderArchConfig
    from fastvideo.configs.models.vaes.wan import WanVAEConfig
    from fastvideo.models.dits.wan import WanTransformer3DModel
    from fastvideo.models.encoders.t5 import UMT5TextEncoder
    from fastvideo.models.vaes.wan import AutoencoderKLWan

    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    g = torch.Generator().manual_seed(seed)
    vae_cfg = WanVAEConfig.from_dict(dict(TINY_VAE22 if task == "ti2v" else TINY_VAE))
    z = vae_cfg.z_dim
    dit = dict(TINY_DIT, in_channels=z, out_channels=z)
    if task == "i2v-moe":
        dit["in_channels"] = 2 * z + vae_cfg.temporal_compression_ratio  # noise + mask + image latents (36 real)
    experts = ("transformer",) if task == "ti2v" else ("transformer", "transformer_2")
    modules: dict[str, torch.nn.Module] = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        builds = [(name, WanTransformer3DModel, WanVideoConfig.from_dict(dit)) for name in experts]
        builds += [("vae", AutoencoderKLWan.from_arch_config, vae_cfg),
                   ("text_encoder", UMT5TextEncoder.from_arch_config,
                    T5EncoderArchConfig.from_dict(dict(TINY_T5, vocab_size=vocab_size)))]
        for name, build, cfg in builds:
            modules[name] = build(cfg)
            modules[name].arch_config = cfg
            _randomize(modules[name], g)
    return modules


def make_tiny_wan22(out_dir: str | os.PathLike, task: str = "ti2v", layout: str = "diffusers", seed: int = 0,
                    overwrite: bool = False) -> Path:
    """Write a tiny Wan2.2 model folder; atomically (temp folder, then rename)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    def write(tmp: Path) -> None:
        vocab = tiny_tokenizer(tmp / ("tokenizer" if layout == "diffusers" else "google/umt5-xxl"), seed)
        modules = build_tiny_wan22(task, seed, vocab_size=vocab)
        (_write_diffusers if layout == "diffusers" else _write_official)(tmp, task, modules)

    return write_tiny_folder(out_dir, layout, overwrite, write)


def _save_component(root: Path, name: str, module, class_name: str) -> None:
    from fastvideo.models.loader.checkpoint import save_safetensors
    from fastvideo.models.loader.weights import export_state_dict

    _json(root / name / "config.json", {"_class_name": class_name, "_diffusers_version": DIFFUSERS_VERSION,
                                        **module.arch_config.to_dict()})
    save_safetensors(root / name / "diffusion_pytorch_model.safetensors",
                     export_state_dict(module, module.arch_config.param_names_mapping), {"format": "pt"})


def _write_diffusers(root: Path, task: str, modules: dict) -> None:
    from fastvideo.models.loader.checkpoint import save_safetensors
    from fastvideo.models.loader.weights import export_state_dict

    for name in ("transformer", "transformer_2"):
        if name in modules:
            _save_component(root, name, modules[name], "WanTransformer3DModel")
    _save_component(root, "vae", modules["vae"], "AutoencoderKLWan")
    te = modules["text_encoder"]
    te_config = te.config.to_dict()
    te_config["architectures"] = ["UMT5EncoderModel"]
    _json(root / "text_encoder" / "config.json", te_config)
    save_safetensors(root / "text_encoder" / "model.safetensors", export_state_dict(te, {}), {"format": "pt"})
    _json(root / "scheduler" / "scheduler_config.json",
          dict(WAN_SCHEDULER, flow_shift=5.0 if task == "ti2v" else 3.0))
    index = {
        "_class_name": "WanImageToVideoPipeline" if task == "i2v-moe" else "WanPipeline",
        "_diffusers_version": DIFFUSERS_VERSION,
        "scheduler": ["diffusers", "UniPCMultistepScheduler"], "text_encoder": ["transformers", "UMT5EncoderModel"],
        "tokenizer": ["transformers", "T5TokenizerFast"], "transformer": ["diffusers", "WanTransformer3DModel"],
        "transformer_2": ["diffusers", "WanTransformer3DModel"] if "transformer_2" in modules else [None, None],
        "vae": ["diffusers", "AutoencoderKLWan"], "boundary_ratio": BOUNDARY.get(task),
        "expand_timesteps": task == "ti2v",
    }
    if task == "i2v-moe":
        index.update(image_encoder=[None, None], image_processor=[None, None])
    _json(root / "model_index.json", index)


def official_config(cfg, model_type: str) -> dict[str, Any]:
    """The official ``WanModel`` ``config.json`` of a DiT arch config."""
    return {
        "_class_name": "WanModel", "_diffusers_version": "0.33.0", "model_type": model_type,
        "dim": cfg.hidden_size, "ffn_dim": cfg.ffn_dim, "freq_dim": cfg.freq_dim, "in_dim": cfg.in_channels,
        "out_dim": cfg.out_channels, "num_heads": cfg.num_attention_heads, "num_layers": cfg.num_layers,
        "text_len": 512, "eps": cfg.eps, "patch_size": list(cfg.patch_size), "text_dim": cfg.text_dim,
        "window_size": [-1, -1], "qk_norm": True, "cross_attn_norm": True,
    }


def _write_official(root: Path, task: str, modules: dict) -> None:
    from fastvideo.configs.models.encoders.t5 import OFFICIAL_UMT5_MAPPING
    from fastvideo.models.loader.checkpoint import save_safetensors
    from fastvideo.models.loader.weights import export_state_dict

    model_type = {"ti2v": "ti2v", "t2v-moe": "t2v", "i2v-moe": "i2v"}[task]
    folders = {"transformer": root} if task == "ti2v" else {"transformer": root / "high_noise_model",
                                                            "transformer_2": root / "low_noise_model"}
    for name, folder in folders.items():
        dit = modules[name]
        c = dit.arch_config
        _json(folder / "config.json", official_config(c, model_type))
        official = _to_official(export_state_dict(dit, c.param_names_mapping), type(c).official_param_names_mapping)
        _save_sharded(folder, official, SHARDS if task != "ti2v" else 1, save_safetensors)
    vae = modules["vae"]
    vae_sd = export_state_dict(vae, vae.arch_config.param_names_mapping)
    official_vae = _to_official(vae_sd, vae.arch_config.official_mapping())
    if task == "ti2v":
        official_vae = _wan22_resample_names(official_vae)
    torch.save(official_vae, root / ("Wan2.2_VAE.pth" if task == "ti2v" else "Wan2.1_VAE.pth"))
    te_sd = {k: v.to(torch.bfloat16) for k, v in export_state_dict(modules["text_encoder"], {}).items()}
    torch.save(_to_official(te_sd, OFFICIAL_UMT5_MAPPING), root / "models_t5_umt5-xxl-enc-bf16.pth")


def _save_sharded(folder: Path, sd: dict[str, torch.Tensor], shards: int, save) -> None:
    """``diffusion_pytorch_model.safetensors``, or ``shards`` files ``-0000i-of-0000n`` with their index."""
    if shards == 1:
        save(folder / "diffusion_pytorch_model.safetensors", sd, {"format": "pt"})
        return
    names = sorted(sd)
    weight_map = {}
    for i in range(shards):
        file = f"diffusion_pytorch_model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = names[i::shards]
        save(folder / file, {k: sd[k] for k in part}, {"format": "pt"})
        weight_map.update({k: file for k in part})
    total = sum(t.numel() * t.element_size() for t in sd.values())
    _json(folder / "diffusion_pytorch_model.safetensors.index.json",
          {"metadata": {"total_size": total}, "weight_map": weight_map})


def _wan22_resample_names(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The official names of the Wan2.2 VAE's resamples: the last entry of their level's list
    (``encoder.downsamples.I.downsamples.J``, J = the level's residual block count), which the
    official->Diffusers rules drop and so cannot restore."""
    import re

    counts: dict[tuple[str, str], int] = {}
    for name in sd:
        m = re.match(r"^(encoder|decoder)\.(downsamples|upsamples)\.(\d+)\.\2\.(\d+)\.", name)
        if m:
            key = (m.group(1), m.group(3))
            counts[key] = max(counts.get(key, 0), int(m.group(4)) + 1)
    out = {}
    for name, tensor in sd.items():
        m = re.match(r"^(encoder|decoder)\.(down|up)_blocks\.(\d+)\.(?:downsampler|upsampler)\.(.*)$", name)
        if m:
            inner = "downsamples" if m.group(2) == "down" else "upsamples"
            j = counts[(m.group(1), m.group(3))]
            name = f"{m.group(1)}.{inner}.{m.group(3)}.{inner}.{j}.{m.group(4)}"
        out[name] = tensor
    return out

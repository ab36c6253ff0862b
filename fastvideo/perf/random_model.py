"""A full-size Wan model folder with random weights, for end-to-end benchmarks without the hub.

``write_random_model(out, "wan2.1-t2v-1.3b", device="cuda")`` writes the Diffusers layout that the
released checkpoints use (``model_index.json``, transformer / vae / text_encoder / tokenizer /
scheduler), with the real architectures (Wan2.1 DiT 1.3B or 14B, the Wan VAE, UMT5-XXL) and their
default random initialisation in bf16.  Both our ``VideoGenerator`` and Diffusers' ``WanPipeline``
load it through their normal loaders, so the benchmark times prompt-to-MP4 exactly as with real
weights (values differ, work does not).  The tokenizer is the small SentencePiece one of the tiny
models (token ids index the full 256k vocabulary embedding; the text length stays 512).

The folder is written once (atomically) and reused: ~14 GB for 1.3B (UMT5-XXL is 11 GB), ~40 GB for 14B.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

ARCH_DITS: dict[str, dict[str, Any]] = {
    "wan2.1-t2v-1.3b": {},
    "wan2.1-t2v-14b": dict(num_attention_heads=40, ffn_dim=13824, num_layers=40),
}


def _build(cls_fn, cfg, device, dtype):
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            module = cls_fn(cfg)
    finally:
        torch.set_default_dtype(default)
    module.arch_config = cfg
    return module.eval().requires_grad_(False)


def build_random_modules(arch: str, device="cpu", dtype=torch.bfloat16, seed: int = 0, tiny: bool = False):
    """The DiT, VAE and text encoder of ``arch`` with default random weights (``tiny``: the tiny test sizes)."""
    from fastvideo.configs.models.dits.wan import WanVideoConfig
    from fastvideo.configs.models.encoders.t5 import T5EncoderArchConfig
    from fastvideo.configs.models.vaes.wan import WanVAEConfig
    from fastvideo.models.dits.wan import WanTransformer3DModel
    from fastvideo.models.encoders.t5 import UMT5TextEncoder
    from fastvideo.models.vaes.wan import AutoencoderKLWan

    if arch not in ARCH_DITS:
        raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(ARCH_DITS)}")
    if tiny:
        from fastvideo.testing.tiny import TINY_DIT, TINY_T5, TINY_VAE

        dit_cfg = WanVideoConfig.from_dict(dict(TINY_DIT))
        vae_cfg = WanVAEConfig.from_dict(dict(TINY_VAE))
        t5_cfg = T5EncoderArchConfig.from_dict(dict(TINY_T5, vocab_size=600))
    else:
        dit_cfg, vae_cfg, t5_cfg = WanVideoConfig(**ARCH_DITS[arch]), WanVAEConfig(), T5EncoderArchConfig()
    torch.manual_seed(seed)
    return {
        "transformer": _build(WanTransformer3DModel, dit_cfg, device, dtype),
        "vae": _build(AutoencoderKLWan, vae_cfg, device, torch.float32),
        "text_encoder": _build(UMT5TextEncoder.from_arch_config, t5_cfg, device, dtype),
    }


def write_random_model(out: str | os.PathLike, arch: str = "wan2.1-t2v-1.3b", device="cpu", seed: int = 0,
                       tiny: bool = False, log=print) -> Path:
    """Write (or reuse, when ``out/model_index.json`` exists with the same arch) a random-weight model folder."""
    from fastvideo.testing.folders import write_tiny_folder
    from fastvideo.testing.tiny import _write_diffusers
    from fastvideo.testing.tokenizer import make_tiny_t5_tokenizer

    out = Path(out).expanduser()
    stamp = {"arch": arch, "seed": seed, "tiny": tiny}
    marker = out / "random_weights.json"
    if (out / "model_index.json").is_file() and marker.is_file():
        try:
            if json.loads(marker.read_text()) == stamp:
                log(f"reusing the random-weight model in {out}")
                return out
        except ValueError:
            pass
    log(f"building {arch} with random weights on {device} ...")
    modules = build_random_modules(arch, device, seed=seed, tiny=tiny)
    for m in modules.values():
        m.to("cpu")

    def write(tmp: Path) -> None:
        log(f"writing {out} ...")
        make_tiny_t5_tokenizer(tmp / "tokenizer", seed=seed)
        _write_diffusers(tmp, "t2v", modules)
        (tmp / "random_weights.json").write_text(json.dumps(stamp) + "\n")

    return write_tiny_folder(out, "diffusers", True, write)  # a stale or different folder is replaced whole

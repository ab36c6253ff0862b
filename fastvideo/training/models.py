"""Model sizes of the shapes model (the real Wan2.1 classes, small widths)."""

from __future__ import annotations

from typing import Any

import torch

from fastvideo.testing.tiny import TINY_DIT, TINY_T5, TINY_VAE

FULL: dict[str, dict[str, Any]] = {
    "vae": dict(TINY_VAE, base_dim=32, dim_mult=[1, 2, 2, 2], num_res_blocks=1),
    "dit": dict(TINY_DIT, num_attention_heads=4, attention_head_dim=64, ffn_dim=768, num_layers=6, text_dim=64,
                freq_dim=128),
    "t5": dict(TINY_T5, d_model=64, d_kv=16, num_heads=4, d_ff=128, num_layers=2),
}
TINY: dict[str, dict[str, Any]] = {
    "vae": dict(TINY_VAE, base_dim=8, dim_mult=[1, 2, 2, 2], num_res_blocks=1),
    "dit": dict(TINY_DIT, num_attention_heads=2, attention_head_dim=16, ffn_dim=64, num_layers=2, text_dim=32,
                freq_dim=32),
    "t5": dict(TINY_T5),
}


def build_modules(sizes: dict[str, dict[str, Any]], vocab_size: int, seed: int) -> dict[str, torch.nn.Module]:
    """Fresh modules with the libraries' default initialisation (deterministic for ``seed``)."""
    from fastvideo.configs.models.dits.wan import WanVideoConfig
    from fastvideo.configs.models.encoders.t5 import T5EncoderArchConfig
    from fastvideo.configs.models.vaes.wan import WanVAEConfig
    from fastvideo.models.dits.wan import WanTransformer3DModel
    from fastvideo.models.encoders.t5 import UMT5TextEncoder
    from fastvideo.models.vaes.wan import AutoencoderKLWan

    torch.manual_seed(seed)
    vae_cfg = WanVAEConfig.from_dict(dict(sizes["vae"]))
    dit_cfg = WanVideoConfig.from_dict(dict(sizes["dit"]))
    t5_cfg = T5EncoderArchConfig.from_dict(dict(sizes["t5"], vocab_size=vocab_size))
    modules = {"vae": AutoencoderKLWan(vae_cfg), "transformer": WanTransformer3DModel(dit_cfg),
               "text_encoder": UMT5TextEncoder.from_arch_config(t5_cfg)}
    for name, cfg in (("vae", vae_cfg), ("transformer", dit_cfg), ("text_encoder", t5_cfg)):
        modules[name].arch_config = cfg
        modules[name].float()
    return modules


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

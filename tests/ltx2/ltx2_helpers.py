"""Shared helpers of the LTX-2 tests: Diffusers references on tiny configs and loading ours from them."""

from __future__ import annotations

import pytest
import torch

from fastvideo.mapping.rules import compile_rules, map_name
from fastvideo.models.loader.weights import empty_init, map_state_dict, materialize

FP32_ATOL = FP32_RTOL = 1e-4


def perturbed(module: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> torch.nn.Module:
    """Add noise to every parameter and float buffer so each one matters (zero-init tables, norms...)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module.eval()


def config_of(ref, cfg_cls, strict: bool = True):
    config = {k: v for k, v in dict(ref.config).items() if not k.startswith("_")}
    return cfg_cls.from_dict(config, strict=strict)


def ours_from(ref, cfg_cls, model_cls, dtype=None, state_dict=None, strict: bool = True):
    """Our module built from the reference's config, loaded from its state dict through the arch config's
    ``param_names_mapping`` (the loading path of a Diffusers folder)."""
    cfg = config_of(ref, cfg_cls, strict)
    sd = ref.state_dict() if state_dict is None else state_dict
    rules = compile_rules(cfg.param_names_mapping)
    kept = [(k, v) for k, v in sd.items() if (r := map_name(k, rules)[1]) is None or r.replacement is not None]
    mapped, _ = map_state_dict(kept, rules)
    with empty_init():
        model = model_cls.from_arch_config(cfg) if hasattr(model_cls, "from_arch_config") else model_cls(cfg)
    materialize(model, mapped, dtype=dtype, keep_fp32=cfg.keep_fp32_modules)
    return model.eval()


def assert_close(ours: torch.Tensor, ref: torch.Tensor, atol: float = FP32_ATOL, rtol: float = FP32_RTOL):
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    err = (ours.float() - ref.float()).abs().max().item()
    torch.testing.assert_close(ours.float(), ref.float(), atol=atol, rtol=rtol, msg=f"max abs err {err:.3g}")
    return err


def diffusers_or_skip():
    return pytest.importorskip("diffusers")

"""Compact DiT weights: fp8 storage (fastvideo.layers.quant.FP8Linear) and GGUF files
(fastvideo.models.loader.gguf), against their plain twins and the full-precision DiT."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from fastvideo.configs.models.dits import WanVideoConfig
from fastvideo.layers.quant import GGML_BY_NAME, FP8Linear, GGUFLinear, dequantize, quantize_linears_fp8
from fastvideo.models.dits import WanTransformer3DModel
from fastvideo.models.loader.gguf import GGUFError, load_gguf_dit, quantize, storage_summary, write_gguf
from fastvideo.models.loader.weights import empty_init, export_state_dict
from fastvideo.testing.tiny import _to_official

# d = 256 and an FFN of 512: every block Linear has rows of whole 256-value K-quant blocks.
CFG = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=128, in_channels=4, out_channels=4,
           text_dim=32, freq_dim=32, ffn_dim=512, num_layers=2)
LEVELS = ["Q8_0", "Q6_K", "Q5_K", "Q4_K"]
# Bounds on the DiT output's relative L2 against the fp32 model (tiny random model, 2 blocks; measured
# 2026-12-05 on the CPU: fp8 2.0e-2 (blocks only), Q8_0 7.0e-3, Q6_K 2.6e-2, Q5_K 5.3e-2, Q4_K 1.09e-1 (every
# 2-D weight with whole blocks, embedders and head included; K-quants from our plain min/max encoder, which
# llama.cpp's error search beats).  Each level must also be no worse than the next coarser one.
REL_L2_BOUND = {"fp8": 0.04, "Q8_0": 0.015, "Q6_K": 0.05, "Q5_K": 0.09, "Q4_K": 0.18}


def rel_l2(a, b) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def tiny_dit(seed: int = 0) -> WanTransformer3DModel:
    torch.manual_seed(seed)
    model = WanTransformer3DModel(WanVideoConfig(**CFG)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.requires_grad_(False)


def inputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(1, 4, 2, 4, 4, generator=g), torch.tensor([700.0]), torch.randn(1, 6, 32, generator=g))


# ----------------------------------------------------------------------------------------- fp8


def test_fp8_linear_matches_its_plain_twin():
    torch.manual_seed(0)
    lin = nn.Linear(64, 48).to(torch.bfloat16)
    q = FP8Linear.from_linear(lin)
    assert q.weight_fp8.dtype == torch.float8_e4m3fn and q.weight_scale.shape == (48,)
    twin = q.to_linear()
    x = torch.randn(3, 5, 64, dtype=torch.bfloat16)
    assert torch.equal(q(x), twin(x))  # the same GEMM on the same dequantised weight
    # per-channel scales: each row's error is relative to its own magnitude
    w = lin.weight.float()
    err = (twin.weight.float() - w).abs().amax(dim=1) / w.abs().amax(dim=1)
    assert err.max() < 0.07  # e4m3 has a 3-bit mantissa: at most 1/16 relative rounding per value
    assert q.weight_fp8.element_size() * q.weight_fp8.numel() == lin.weight.numel()  # half of bf16


def test_fp8_dit_output_close_to_full_precision(capsys):
    model = tiny_dit()
    ref = model(*inputs())
    q = copy.deepcopy(model)
    n = quantize_linears_fp8(q, include=lambda name: name.startswith("blocks."))
    assert n == 2 * 8  # qkv, out, q, k, v, out, fc_in, fc_out per block
    assert not isinstance(q.head.proj, FP8Linear)  # only the blocks
    err = rel_l2(q(*inputs()), ref)
    print(f"fp8 e4m3 (per-channel scales) DiT output rel. L2 vs fp32: {err:.2e}")
    assert 0 < err < REL_L2_BOUND["fp8"]


# ----------------------------------------------------------------------------------------- GGUF blocks


@pytest.mark.parametrize("name", LEVELS + ["F16"])
def test_dequantize_matches_the_gguf_package(name):
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as gguf_dequantize

    rng = np.random.default_rng(0)
    x = (rng.standard_normal((6, 512)) * rng.uniform(0.01, 3, (6, 1))).astype(np.float32)
    q = quantize(x, name)
    ref = gguf_dequantize(q, GGMLQuantizationType[name])
    ours = dequantize(torch.from_numpy(np.ascontiguousarray(q)).view(torch.uint8), GGML_BY_NAME[name], (6, 512))
    assert np.array_equal(ours.numpy(), ref), name
    assert rel_l2(torch.from_numpy(ref), torch.from_numpy(x)) < 0.1


def test_unsupported_and_bad_rows_are_refused():
    with pytest.raises(ValueError, match="not supported"):
        dequantize(torch.zeros(10, dtype=torch.uint8), 2, (1, 32))  # Q4_0
    with pytest.raises(ValueError, match="multiple of 256"):
        quantize(np.zeros((2, 100), dtype=np.float32), "Q4_K")


# ----------------------------------------------------------------------------------------- GGUF files


def official_state_dict(model: WanTransformer3DModel) -> dict[str, torch.Tensor]:
    diffusers = export_state_dict(model, model.config.param_names_mapping)
    return _to_official(diffusers, WanVideoConfig.official_param_names_mapping)


def load(path, dtype=torch.float32) -> WanTransformer3DModel:
    cfg = WanVideoConfig(**CFG)
    with empty_init():
        module = WanTransformer3DModel(cfg)
    return load_gguf_dit(path, module, cfg, dtype=dtype, keep_fp32=cfg.keep_fp32_modules)


def reference_from_file(path) -> dict[str, torch.Tensor]:
    """The file dequantised with the gguf package (the numerical reference), official names."""
    from gguf import GGUFReader
    from gguf.quants import dequantize as gguf_dequantize

    out = {}
    for t in GGUFReader(str(path)).tensors:
        arr = gguf_dequantize(t.data, t.tensor_type)
        out[t.name] = torch.from_numpy(np.array(arr, dtype=np.float32)).reshape(tuple(reversed(t.shape.tolist())))
    return out


@pytest.mark.parametrize("level", LEVELS)
def test_gguf_file_loads_and_matches_the_dequantised_reference(tmp_path, level, capsys):
    model = tiny_dit()
    path = write_gguf(tmp_path / f"wan-tiny-{level}.gguf", official_state_dict(model), level)
    ours = load(path)
    # every 2-D weight with whole 256-value rows is quantised: 16 in the blocks, 4 in the embedders and head
    assert storage_summary(ours) == {level: 20}
    assert isinstance(ours.blocks[0].self_attn.to_qkv, GGUFLinear)
    assert len(ours.blocks[0].self_attn.to_qkv.qtypes) == 3  # q, k, v kept as three segments (fused target)
    # The reference: the gguf package's dequantisation loaded into a plain model through the same mapping.
    ref_model = copy.deepcopy(model)
    ref_sd = reference_from_file(path)
    from fastvideo.models.loader.weights import map_state_dict

    diff_names = {}
    from fastvideo.mapping.rules import compile_rules, map_name

    rules = compile_rules(WanVideoConfig.official_param_names_mapping)
    for k, v in ref_sd.items():
        diff_names[map_name(k, rules)[0]] = v
    mapped, _ = map_state_dict(diff_names.items(), model.config.param_names_mapping)
    ref_model.load_state_dict(mapped)
    x = inputs()
    out = ours(*x)
    assert torch.allclose(out, ref_model(*x), rtol=1e-5, atol=1e-6)
    err = rel_l2(out, model(*x))
    print(f"GGUF {level} DiT output rel. L2 vs fp32: {err:.2e}")
    assert 0 < err < REL_L2_BOUND[level]


def test_gguf_levels_order_by_precision(tmp_path):
    model = tiny_dit()
    sd = official_state_dict(model)
    ref = model(*inputs())
    errs = [rel_l2(load(write_gguf(tmp_path / f"{lv}.gguf", sd, lv))(*inputs()), ref) for lv in LEVELS]
    assert errs == sorted(errs), dict(zip(LEVELS, errs))


def test_gguf_with_comfyui_prefix_and_bf16_compute(tmp_path):
    model = tiny_dit()
    sd = {f"model.diffusion_model.{k}": v for k, v in official_state_dict(model).items()}
    path = write_gguf(tmp_path / "prefixed.gguf", sd, "Q8_0")
    ours = load(path, dtype=torch.bfloat16)
    lin = ours.blocks[1].ffn.fc_in
    assert isinstance(lin, GGUFLinear) and lin.weight.dtype == torch.bfloat16
    assert ours.blocks[0].modulation.dtype == torch.float32  # kept fp32 like the safetensors path
    x, t, text = inputs()
    assert rel_l2(ours(x, t, text), model(x, t, text)) < 0.03


def test_gguf_file_that_does_not_fit_is_refused(tmp_path):
    model = tiny_dit()
    sd = official_state_dict(model)
    del sd["blocks.1.ffn.0.weight"]
    path = write_gguf(tmp_path / "broken.gguf", sd, "Q8_0")
    with pytest.raises(GGUFError, match="does not fit the model"):
        load(path)
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf file at all")
    with pytest.raises(GGUFError, match="not a readable GGUF file"):
        load(tmp_path / "junk.gguf")


def test_fp8_loading_tensor_by_tensor_equals_quantising_the_loaded_model(tiny_t2v):
    from fastvideo.configs.registry import resolve_model
    from fastvideo.models.loader.component_loader import load_component
    from fastvideo.models.loader.quantized import load_fp8_module

    info = resolve_model(str(tiny_t2v))
    # (float32: the tiny checkpoint is float32, so both quantise the same values; a bf16 one is read as bf16)
    ref = load_component(str(tiny_t2v), "transformer", dtype=torch.float32)
    quantize_linears_fp8(ref, include=lambda n: n.startswith("blocks."))
    ours = load_fp8_module(tiny_t2v / "transformer", info.component_class("transformer"), torch.float32)
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert list(our_sd) == list(ref_sd)
    for k in ref_sd:
        assert our_sd[k].dtype == ref_sd[k].dtype, k
        assert torch.equal(our_sd[k].view(torch.uint8) if our_sd[k].dtype == torch.float8_e4m3fn else our_sd[k],
                           ref_sd[k].view(torch.uint8) if ref_sd[k].dtype == torch.float8_e4m3fn else ref_sd[k]), k
    assert isinstance(ours.blocks[0].self_attn.to_qkv, FP8Linear)  # fused q/k/v quantised after the merge


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", LEVELS)
def test_dequantize_on_the_gpu_equals_the_cpu(name):
    rng = np.random.default_rng(0)
    q = torch.from_numpy(np.ascontiguousarray(quantize(rng.standard_normal((64, 512)).astype(np.float32), name)))
    cpu = dequantize(q, GGML_BY_NAME[name], (64, 512))
    gpu = dequantize(q.cuda(), GGML_BY_NAME[name], (64, 512))
    assert torch.equal(gpu.cpu(), cpu)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fp8_linear_on_the_gpu_matches_its_twin():
    torch.manual_seed(0)
    q = FP8Linear.from_linear(nn.Linear(256, 128).to(torch.bfloat16)).cuda()
    x = torch.randn(4, 100, 256, dtype=torch.bfloat16, device="cuda")
    assert torch.equal(q(x), q.to_linear()(x))

"""Wan2.1 DiT: numerical parity with Diffusers' WanTransformer3DModel on tiny configs.

Diffusers is the reference and a test-only dependency.  Reference weights are
perturbed after init so every parameter (norm weights included) matters.
"""

from __future__ import annotations

import copy

import pytest
import torch

from fastvideo.configs.models.dits import WanVideoConfig
from fastvideo.mapping.rules import TensorInfo, build_report
from fastvideo.models.dits import WanTransformer3DModel
from fastvideo.models.loader.weights import empty_init, map_state_dict, materialize, target_infos, unmap_state_dict

TINY = dict(
    patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4,
    text_dim=32, freq_dim=32, ffn_dim=32, num_layers=2,
)
# I2V: 36 input channels (16 noise + 4 mask + 16 image latents, scaled down: 16 + 4 + 16), CLIP dim -> 24.
TINY_I2V = dict(TINY, in_channels=36, out_channels=16, image_dim=24, added_kv_proj_dim=32)
TEXT_LEN_I2V = 512  # Diffusers splits the I2V context as [image | last 512 text tokens]
IMAGE_TOKENS = 257

FP32_ATOL = FP32_RTOL = 1e-4
# bf16 weights/activations vs the fp32 reference, relative L2 of the output.  bf16 has
# an 8-bit mantissa (~4e-3 relative per rounding); 2 layers accumulate to ~5e-3 here.
BF16_REL_L2 = 2e-2


def _rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def _reference(kwargs: dict, seed: int = 0):
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(seed)
    ref = diffusers.WanTransformer3DModel(**kwargs).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return ref


def _config_of(ref) -> WanVideoConfig:
    config = {k: v for k, v in dict(ref.config).items() if not k.startswith("_")}
    return WanVideoConfig.from_dict(config, strict=True)


def _ours(ref, dtype=None):
    cfg = _config_of(ref)
    state_dict, reverse = map_state_dict(ref.state_dict().items(), cfg.param_names_mapping)
    with empty_init():
        model = WanTransformer3DModel(cfg)
    materialize(model, state_dict, dtype=dtype, keep_fp32=cfg.keep_fp32_modules)
    return model.eval(), reverse


@pytest.fixture(scope="module")
def t2v_ref():
    return _reference(TINY, seed=0)


@pytest.fixture(scope="module")
def i2v_ref():
    return _reference(TINY_I2V, seed=1)


def _t2v_inputs(batch: int = 2):
    g = torch.Generator().manual_seed(10)
    return (
        torch.randn(batch, 4, 3, 8, 8, generator=g),
        torch.tensor([999.0, 137.5][:batch]),
        torch.randn(batch, 7, 32, generator=g),
    )


def _i2v_inputs():
    g = torch.Generator().manual_seed(11)
    return (
        torch.randn(1, 36, 3, 8, 8, generator=g),
        torch.tensor([500.0]),
        torch.randn(1, TEXT_LEN_I2V, 32, generator=g),
        torch.randn(1, IMAGE_TOKENS, 24, generator=g),
    )


@torch.no_grad()
def test_t2v_fp32_parity(t2v_ref):
    ours, _ = _ours(t2v_ref)
    x, t, ctx = _t2v_inputs()
    expected = t2v_ref(x, t, ctx, return_dict=False)[0]
    got = ours(x, t, ctx)
    assert got.shape == expected.shape == (2, 4, 3, 8, 8)
    torch.testing.assert_close(got, expected, atol=FP32_ATOL, rtol=FP32_RTOL)


@torch.no_grad()
def test_i2v_fp32_parity(i2v_ref):
    ours, _ = _ours(i2v_ref)
    x, t, ctx, img = _i2v_inputs()
    expected = i2v_ref(x, t, ctx, img, return_dict=False)[0]
    got = ours(x, t, ctx, img)
    assert got.shape == expected.shape == (1, 16, 3, 8, 8)
    torch.testing.assert_close(got, expected, atol=FP32_ATOL, rtol=FP32_RTOL)


def _diffusers_bf16(ref):
    """Diffusers' own bf16 load: parameters cast except `_keep_in_fp32_modules` (name components)."""
    ref16 = copy.deepcopy(ref)
    keep = type(ref)._keep_in_fp32_modules
    for name, p in ref16.named_parameters():
        if not any(k in name.split(".") for k in keep):
            p.data = p.data.to(torch.bfloat16)
    return ref16


@torch.no_grad()
def test_i2v_bf16_close_to_fp32_reference(i2v_ref):
    ours16, _ = _ours(i2v_ref, dtype=torch.bfloat16)
    x, t, ctx, img = _i2v_inputs()
    expected = i2v_ref(x, t, ctx, img, return_dict=False)[0]
    got = ours16(x, t, ctx, img)
    assert got.dtype == torch.bfloat16
    assert _rel_l2(got, expected) < BF16_REL_L2
    # Same precision recipe as Diffusers in bf16: agreement far tighter than bf16 vs fp32.
    ref16 = _diffusers_bf16(i2v_ref)
    expected16 = ref16(x.bfloat16(), t, ctx.bfloat16(), img.bfloat16(), return_dict=False)[0]
    assert _rel_l2(got, expected16) < 1e-3


def test_keep_fp32_matches_diffusers(i2v_ref):
    """Our keep_fp32_modules select exactly the (renamed) parameters Diffusers keeps in fp32."""
    cfg = _config_of(i2v_ref)
    ours16, reverse = _ours(i2v_ref, dtype=torch.bfloat16)
    ours_fp32 = {n for n, p in ours16.named_parameters() if p.dtype == torch.float32}
    theirs = {n for n, p in _diffusers_bf16(i2v_ref).named_parameters() if p.dtype == torch.float32}
    mapped, _ = map_state_dict(((n, torch.empty(0)) for n in theirs), cfg.param_names_mapping)
    assert ours_fp32 == set(mapped)
    assert any("modulation" in n for n in ours_fp32) and any("time_embedder" in n for n in ours_fp32)


def test_fused_qkv_in_mapping_report(t2v_ref):
    cfg = _config_of(t2v_ref)
    source = {k: TensorInfo(tuple(v.shape), "F32") for k, v in t2v_ref.state_dict().items()}
    with empty_init():
        model = WanTransformer3DModel(cfg)
    report = build_report(source, target_infos(model), cfg.param_names_mapping, "transformer")
    assert report.ok, report.summary()
    # q, k, v (weight + bias) of every block's self-attention merge into one to_qkv.
    assert report.counts["merged"] == 3 * 2 * cfg.num_layers
    merged_targets = {r.target for r in report.rows if r.status == "merged"}
    assert merged_targets == {f"blocks.{i}.self_attn.to_qkv.{p}" for i in range(2) for p in ("weight", "bias")}
    assert model.blocks[0].self_attn.to_qkv.weight.shape == (3 * cfg.hidden_size, cfg.hidden_size)


def test_reverse_mapping_round_trip(i2v_ref):
    ours, reverse = _ours(i2v_ref)
    back = unmap_state_dict(ours.state_dict(), reverse)
    original = i2v_ref.state_dict()
    assert set(back) == set(original)
    for name, tensor in original.items():
        assert torch.equal(back[name], tensor), name


def test_model_has_no_buffers_and_builds_on_meta():
    cfg = WanVideoConfig(**TINY)
    with empty_init():
        model = WanTransformer3DModel(cfg)
    assert all(p.is_meta for p in model.parameters())
    assert list(model.buffers()) == []  # RoPE tables are computed per grid, not stored


def test_rope_table_layout():
    from fastvideo.models.dits.wan import rope_cos_sin, rope_dims

    assert rope_dims(128) == (44, 42, 42)
    cos, sin = rope_cos_sin((3, 4, 5), 16, "cpu")
    assert cos.shape == sin.shape == (60, 8) and cos.dtype == torch.float32
    # Token 0 sits at the origin: no rotation.
    assert torch.equal(cos[0], torch.ones(8)) and torch.equal(sin[0], torch.zeros(8))
    # Tokens in one frame share the time channels (first t_dim/2 = 4 pairs for head_dim 16).
    t_pairs = rope_dims(16)[0] // 2
    assert torch.equal(cos[:20, :t_pairs], cos[:1, :t_pairs].expand(20, -1))


def test_config_round_trip():
    cfg = WanVideoConfig()
    assert cfg.hidden_size == 1536 and cfg.num_layers == 30 and cfg.patch_size == (1, 2, 2)
    again = WanVideoConfig.from_dict(cfg.to_dict(), strict=True)
    assert again.to_dict() == cfg.to_dict()
    i2v = WanVideoConfig.from_dict({**cfg.to_dict(), "image_dim": 1280, "added_kv_proj_dim": 5120, "in_channels": 36})
    assert i2v.is_i2v and not cfg.is_i2v


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(x=torch.randn(1, 4, 3, 7, 8)), "height 7 is not divisible by the patch size 2"),
        (dict(x=torch.randn(1, 4, 3, 8, 9)), "width 9 is not divisible"),
        (dict(x=torch.randn(1, 5, 3, 8, 8)), "5 channels"),
        (dict(x=torch.randn(4, 3, 8, 8)), r"\[B, C, F, H, W\]"),
        (dict(t=torch.tensor([1.0, 2.0])), "timestep must be"),
        (dict(ctx=torch.randn(1, 7, 31)), "encoder_hidden_states must be"),
        (dict(img=torch.randn(1, 257, 24)), "no image conditioning"),
    ],
)
def test_bad_inputs_raise_clear_errors(change, message):
    cfg = WanVideoConfig(**TINY)
    model = WanTransformer3DModel(cfg)
    args = dict(x=torch.randn(1, 4, 3, 8, 8), t=torch.tensor([10.0]), ctx=torch.randn(1, 7, 32), img=None)
    args.update(change)
    with pytest.raises(ValueError, match=message):
        model(args["x"], args["t"], args["ctx"], args["img"])


def test_i2v_requires_image_tokens():
    model = WanTransformer3DModel(WanVideoConfig(**TINY_I2V))
    with pytest.raises(ValueError, match="needs encoder_hidden_states_image"):
        model(torch.randn(1, 36, 1, 4, 4), torch.tensor([1.0]), torch.randn(1, 5, 32))


def test_unknown_attention_backend_is_clear(monkeypatch):
    monkeypatch.setenv("FASTVIDEO_ATTENTION_BACKEND", "NOPE")
    with pytest.raises(ValueError, match="unknown attention backend 'NOPE'.*TORCH_SDPA"):
        WanTransformer3DModel(WanVideoConfig(**TINY))


@torch.no_grad()
def test_first_last_frame_pos_embed_fp32_parity():
    """FLF2V variant: two images' tokens joined, plus a learned position embedding."""
    ref = _reference(dict(TINY_I2V, pos_embed_seq_len=2 * IMAGE_TOKENS), seed=2)
    ours, _ = _ours(ref)
    x, t, ctx, _ = _i2v_inputs()
    images = torch.randn(2, IMAGE_TOKENS, 24, generator=torch.Generator().manual_seed(12))  # first, last frame
    expected = ref(x, t, ctx, images, return_dict=False)[0]
    torch.testing.assert_close(ours(x, t, ctx, images), expected, atol=FP32_ATOL, rtol=FP32_RTOL)

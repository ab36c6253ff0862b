"""benchmarks/dit_variants.py's alternative kernel shapes compute exactly the model's math."""

import sys
from pathlib import Path

import torch

from fastvideo.models.dits.wan import WanTransformer3DModel, apply_rope

ROOT = Path(__file__).resolve().parents[2]


def _variants():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import dit_variants
    finally:
        sys.path.pop(0)
    return dit_variants


def test_rope_swap_equals_apply_rope():
    dv = _variants()
    assert dv.VARIANTS[0] == "default"
    g = torch.Generator().manual_seed(0)
    cos, sin = torch.randn(7, 4, generator=g), torch.randn(7, 4, generator=g)
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(2, 7, 3, 8, generator=g).to(dtype)  # [B, S, H, D]
        out = dv.apply_rope_swap(x, cos, sin)
        assert out.dtype == dtype
        torch.testing.assert_close(out, apply_rope(x, cos, sin), rtol=0, atol=0)


def test_heads_first_variant_is_bit_identical_to_the_model(monkeypatch):
    """The ``heads-first`` variant (q/k/v stored [B, H, S, D] for cuDNN; measured slower on an H100, so the
    model keeps the token-first order) gives the model's bits, and its q/k/v really are heads-first."""
    from fastvideo.configs.models.dits.wan import WanVideoConfig
    from fastvideo.models.dits import wan
    from fastvideo.testing.tiny import TINY_DIT

    dv = _variants()
    cfg = WanVideoConfig(**dict(TINY_DIT, num_attention_heads=4, attention_head_dim=16))
    torch.manual_seed(0)
    model = WanTransformer3DModel(cfg).eval()
    seen = []
    model.blocks[0].self_attn.attn.register_forward_pre_hook(lambda module, args: seen.append(args))
    for dtype in (torch.float32, torch.bfloat16):
        model = model.to(dtype)
        x = torch.randn(1, cfg.in_channels, 3, 8, 8).to(dtype)
        t, text = torch.tensor([500.0]), torch.randn(1, 7, cfg.text_dim).to(dtype)
        with torch.no_grad():
            ours = model(x, t, text)
            monkeypatch.setattr(wan.SelfAttention, "attend", dv.self_attention_heads_first)
            variant = model(x, t, text)
            monkeypatch.undo()
        assert torch.equal(ours, variant)
    q, k, v = seen[1]  # the variant's, float32
    for tensor in (q, k, v):  # [B, S, H, D] views of [B, H, S, D] storage
        assert tensor.transpose(1, 2).is_contiguous()

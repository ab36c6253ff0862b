"""benchmarks/dit_variants.py's alternative RoPE kernel shape computes exactly the model's RoPE."""

import sys
from pathlib import Path

import torch

from fastvideo.models.dits.wan import apply_rope

ROOT = Path(__file__).resolve().parents[2]


def test_rope_swap_equals_apply_rope():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from dit_variants import VARIANTS, apply_rope_swap
    finally:
        sys.path.pop(0)
    assert VARIANTS[0] == "default"
    g = torch.Generator().manual_seed(0)
    cos, sin = torch.randn(7, 4, generator=g), torch.randn(7, 4, generator=g)
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(2, 7, 3, 8, generator=g).to(dtype)
        out = apply_rope_swap(x, cos, sin)
        assert out.dtype == dtype
        torch.testing.assert_close(out, apply_rope(x, cos, sin), rtol=0, atol=0)

"""fastvideo bench's report: the floor follows the fastest attention kernel measured, and the table says so."""

from __future__ import annotations

import pytest

from fastvideo.perf import bench


def results(fa4: float | None):
    ceilings = {"matmul_flops": 780e12, "attention_cudnn_flops": 580e12, "attention_flash_flops": 360e12}
    if fa4:
        ceilings["attention_fa4_flops"] = fa4
    ceilings["attention_fastest"] = max(bench.ATTENTION_KERNELS,
                                        key=lambda k: ceilings.get(f"attention_{k}_flops", 0.0))
    return {"env": {"gpu": "NVIDIA H100 80GB HBM3"}, "shape": {"steps": 50}, "ceilings": ceilings,
            "floor": {"forward_s": 0.40}, "attention_backend": {"self": "FLASH_ATTN_4", "cross": "TORCH_SDPA"},
            "timings": {"dit_forward_compiled": {"median": 0.44}, "dit_forward": {"median": 0.52},
                        "diffusers_dit_forward": {"median": 0.64}},
            "agreement": {"dit_rel_l2": 5.6e-3}}


@pytest.mark.parametrize("fa4, fastest", [(690e12, "fa4"), (None, "cudnn")])
def test_report_names_the_floor_kernel_and_the_backends(fa4, fastest):
    r = results(fa4)
    assert r["ceilings"]["attention_fastest"] == fastest
    r["ratios"] = bench.ratios(r)
    assert r["ratios"]["dit_forward_over_floor"] == pytest.approx(1.1)
    assert r["ratios"]["diffusers_over_ours_dit"] == pytest.approx(0.64 / 0.44)
    table = bench.format_table(r)
    assert f"(floor: {fastest}; our model: self FLASH_ATTN_4, cross TORCH_SDPA)" in table
    assert "attention cudnn 580 / flash 360" in table
    assert ("fa4 690" in table) == (fa4 is not None)
    assert "DiT forward compiled" in table and "1.100" in table
    assert "GEMM epilogues" not in table  # older results say nothing about them
    r["gemm_epilogues"] = "quack"
    assert "cross TORCH_SDPA; GEMM epilogues: quack)" in bench.format_table(r)


def test_attention_ceilings_skip_fa4_where_it_cannot_run(monkeypatch):
    measured = []
    monkeypatch.setattr(bench, "attention_ceiling",
                        lambda h, s, d, backend: measured.append(backend) or {"cudnn": 5.0, "flash": 3.0}[backend])
    out = bench.attention_ceilings(12, 64, 128)
    assert measured == ["cudnn", "flash"]  # no FlashAttention-4 on this machine
    assert out == {"attention_cudnn_flops": 5.0, "attention_flash_flops": 3.0, "attention_fastest": "cudnn"}


def test_sdpa_bshd_takes_and_returns_the_model_layout():
    import torch

    from fastvideo.perf.timing import sdpa_bshd

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 7, 3, 8, generator=g) for _ in range(3))  # [B, S, H, D]
    scores = torch.einsum("bshd,bthd->bhst", q, k) / 8**0.5
    expected = torch.einsum("bhst,bthd->bshd", scores.softmax(-1), v)
    torch.testing.assert_close(sdpa_bshd("flash")(q, k, v), expected, atol=1e-5, rtol=1e-5)  # flash runs on CPU

import pytest
import torch
from torch import nn

from fastvideo.models.loader.checkpoint import save_safetensors, weight_files
from fastvideo.models.loader.weights import (
    WeightLoadError,
    empty_init,
    export_state_dict,
    load_mapped_weights,
    map_state_dict,
    target_infos,
    unmap_state_dict,
)

RULES = {
    r"^q\.(.*)$": (r"qkv.\1", 0, 3),
    r"^k\.(.*)$": (r"qkv.\1", 1, 3),
    r"^v\.(.*)$": (r"qkv.\1", 2, 3),
    r"^embedding\.(.*)$": r"emb.\1",
}


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(4, 12)
        self.emb = nn.Embedding(10, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight  # tied
        self.register_buffer("positions", torch.arange(6), persistent=False)


def _checkpoint():
    g = torch.Generator().manual_seed(1)
    return {
        "q.weight": torch.randn(4, 4, generator=g), "k.weight": torch.randn(4, 4, generator=g),
        "v.weight": torch.randn(4, 4, generator=g), "q.bias": torch.randn(4, generator=g),
        "k.bias": torch.randn(4, generator=g), "v.bias": torch.randn(4, generator=g),
        "embedding.weight": torch.randn(10, 4, generator=g),
        "norm.weight": torch.randn(4, generator=g), "norm.bias": torch.randn(4, generator=g),
    }


def test_empty_init_allocates_nothing_and_keeps_buffers():
    with empty_init():
        m = Tiny()
    assert all(p.is_meta for p in m.parameters())
    assert torch.equal(m.positions, torch.arange(6))
    infos = target_infos(m)
    assert "head.weight" not in infos and infos["emb.weight"].aliases == ("head.weight",)


def test_load_maps_fuses_casts_and_keeps_fp32(tmp_path):
    sd = _checkpoint()
    save_safetensors(tmp_path / "m.safetensors", sd)
    with empty_init():
        m = Tiny()
    report, reverse = load_mapped_weights(m, weight_files(tmp_path), RULES, dtype=torch.bfloat16,
                                          keep_fp32=[r"^norm\."])
    assert report.ok and report.counts["merged"] == 6
    assert m.qkv.weight.dtype == torch.bfloat16 and m.norm.weight.dtype == torch.float32
    assert torch.equal(m.qkv.weight[4:8], sd["k.weight"].bfloat16())
    assert m.head.weight is m.emb.weight
    # Reverse mapping writes the weights back under their original names.
    back = unmap_state_dict({k: v.float() for k, v in m.state_dict().items()}, reverse)
    assert set(back) == set(sd)
    assert torch.allclose(back["v.bias"], sd["v.bias"], atol=1e-2)


def test_strict_error_lists_problems_before_reading_tensors(tmp_path, monkeypatch):
    sd = _checkpoint()
    sd["stray.weight"] = torch.zeros(1)
    sd["norm.weight"] = torch.zeros(5)
    del sd["norm.bias"]
    save_safetensors(tmp_path / "m.safetensors", sd)
    import fastvideo.models.loader.checkpoint as ck

    monkeypatch.setattr(ck, "iter_tensors", lambda *a, **k: pytest.fail("tensors read before the check"))
    with empty_init():
        m = Tiny()
    with pytest.raises(WeightLoadError) as exc:
        load_mapped_weights(m, weight_files(tmp_path), RULES, component="tiny")
    msg = str(exc.value)
    assert "1 missing: norm.bias [4]" in msg and "1 unexpected: stray.weight" in msg
    assert "norm.weight -> norm.weight: checkpoint [5], model [4]" in msg


def test_map_state_dict_reports_incomplete_fusion():
    sd = _checkpoint()
    del sd["v.weight"]
    with pytest.raises(WeightLoadError, match="qkv.weight is incomplete"):
        map_state_dict(sd.items(), RULES)


def test_export_state_dict_inverts_rules_and_reloads(tmp_path):
    torch.manual_seed(0)
    m = Tiny()
    sd = export_state_dict(m, RULES)
    assert set(sd) == {"q.weight", "k.weight", "v.weight", "q.bias", "k.bias", "v.bias", "embedding.weight",
                       "norm.weight", "norm.bias"}
    save_safetensors(tmp_path / "m.safetensors", sd)
    with empty_init():
        m2 = Tiny()
    load_mapped_weights(m2, weight_files(tmp_path), RULES)
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k

"""Issue 30 on the command line: duplicate targets fail inspect-mapping and loading, --format json carries
the near misses, and ``fastvideo parity --rules FILE`` keeps the rules' order."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fastvideo.configs.models.dits.wan import WanVideoConfig

DUP = (r"^blocks\.(\d+)\.attn2\.to_v\.", r"blocks.\1.cross_attn.to_k.")  # to_k and to_v both onto to_k


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "fastvideo", *args], capture_output=True, text=True, timeout=300)


def test_duplicate_target_fails_inspect_and_loading(tiny_t2v, tmp_path):
    rules = tmp_path / "dup.json"
    rules.write_text(json.dumps({DUP[0]: DUP[1], **WanVideoConfig().param_names_mapping}))
    proc = _cli("inspect-mapping", str(tiny_t2v), "--format", "json", "--rules", str(rules))
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["ok"] is False and data["counts"]["duplicate_target"] == 8  # to_k + to_v, weight + bias, 2 blocks
    dup = [r for r in data["rows"] if r["status"] == "duplicate_target" and r["target"] == "blocks.0.cross_attn.to_k.weight"]
    assert sorted(r["source"] for r in dup) == ["blocks.0.attn2.to_k.weight", "blocks.0.attn2.to_v.weight"]
    assert data["counts"]["missing"] == 4  # cross_attn.to_v of 2 blocks
    assert "near_misses" in data
    table = _cli("inspect-mapping", str(tiny_t2v), "--rules", str(rules))
    assert table.returncode == 1 and "duplicate_target" in table.stdout

    from fastvideo.configs.registry import resolve_model
    from fastvideo.models.loader.component_loader import load_module
    from fastvideo.models.loader.weights import WeightLoadError

    info = resolve_model(str(tiny_t2v))
    with pytest.raises(WeightLoadError, match="another key also maps onto") as exc:
        load_module(tiny_t2v / "transformer", info.component_class("transformer"), component="transformer",
                    rules=[DUP, *WanVideoConfig().param_names_mapping.items()])
    assert "blocks.0.attn2.to_v.weight" in str(exc.value)


def test_inspect_json_has_shape_aware_near_misses(tiny_t2v, tmp_path):
    import shutil

    from fastvideo.models.loader.checkpoint import iter_tensors, save_safetensors

    model = tmp_path / "m"
    shutil.copytree(tiny_t2v, model)
    f = model / "transformer" / "diffusion_pytorch_model.safetensors"
    sd = dict(iter_tensors(f))
    sd["proj_out.biasX"] = sd.pop("proj_out.bias")
    sd["proj_out.bias_small"] = sd["proj_out.biasX"][:3].clone()  # a close name, a shape that cannot fit
    save_safetensors(f, sd)
    data = json.loads(_cli("inspect-mapping", str(model), "--format", "json").stdout)
    [miss] = [n for n in data["near_misses"] if n["status"] == "missing"]
    top, *rest = miss["suggestions"]
    assert top["source"] == "proj_out.biasX" and top["possible"] is True
    small = next(s for s in rest if s["source"] == "proj_out.bias_small")
    assert small["possible"] is False and small["fit"] == "impossible"


def test_parity_rules_file_keeps_order(tiny_t2v, tmp_path):
    pytest.importorskip("diffusers")
    swap = {r"^blocks\.(\d+)\.attn2\.to_k\.": r"blocks.\1.cross_attn.to_v.",
            r"^blocks\.(\d+)\.attn2\.to_v\.": r"blocks.\1.cross_attn.to_k."}
    rules = tmp_path / "swap.json"
    rules.write_text(json.dumps({**swap, **WanVideoConfig().param_names_mapping}, indent=1))
    proc = _cli("parity", str(tiny_t2v), "--component", "transformer", "--rules", str(rules), "--format", "json")
    assert proc.returncode == 1, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["passed"] is False and result["first_divergent"]["module"] == "blocks.0.cross_attn.to_k"
    assert [p for p, _ in result["rules"][:2]] == list(swap)

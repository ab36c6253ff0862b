"""``run_parity`` / ``fastvideo parity`` against Diffusers on tiny Diffusers-layout models (CPU, fp32)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("diffusers")

from fastvideo.configs.models.dits.wan import WanVideoConfig  # noqa: E402
from fastvideo.entrypoints.cli.main import main  # noqa: E402
from fastvideo.parity import run_parity  # noqa: E402
from fastvideo.parity.runner import module_correspondence  # noqa: E402

TOP_KEYS = {"rules", "component", "reference", "dtype", "seed", "versions", "passed", "outputs", "first_divergent", "modules"}
OUTPUT_KEYS = {"name", "max_abs", "mean_abs", "rel_l2", "atol", "rtol", "rel_l2_tol", "passed"}
MODULE_KEYS = {"ours", "reference", "max_abs", "rel_l2", "passed"}


def broken_mapping() -> dict:
    """Cross-attention to_k and to_v swapped (same shapes, so it loads without complaint)."""
    rules = {r"^blocks\.(\d+)\.attn2\.to_k\.": r"blocks.\1.cross_attn.to_v.",
             r"^blocks\.(\d+)\.attn2\.to_v\.": r"blocks.\1.cross_attn.to_k."}
    rules.update(WanVideoConfig().param_names_mapping)
    return rules


@pytest.fixture(scope="module")
def t2v(tmp_path_factory):
    from fastvideo.testing.tiny import make_tiny_model

    return str(make_tiny_model(tmp_path_factory.mktemp("parity") / "t2v", task="t2v", seed=1))


@pytest.fixture(scope="module")
def i2v(tmp_path_factory):
    from fastvideo.testing.tiny import make_tiny_model

    return str(make_tiny_model(tmp_path_factory.mktemp("parity") / "i2v", task="i2v", seed=2))


def _check_schema(result: dict) -> None:
    assert set(result) == TOP_KEYS
    assert json.loads(json.dumps(result)) == result  # plain JSON types only
    assert {"fastvideo", "torch", "diffusers", "transformers"} <= set(result["versions"])
    for o in result["outputs"]:
        assert set(o) == OUTPUT_KEYS
    for m in result["modules"]:
        assert set(m) == MODULE_KEYS
    fd = result["first_divergent"]
    assert fd is None or set(fd) == {"module", "ours", "reference"}


@pytest.mark.parametrize("which, component, outputs", [
    ("t2v", "transformer", ["noise_pred"]),
    ("i2v", "transformer", ["noise_pred"]),
    ("t2v", "vae", ["encode.mean", "decode"]),
    ("t2v", "text_encoder", ["prompt_embeds"]),
    ("i2v", "image_encoder", ["image_embeds"]),
    ("t2v", "scheduler", ["timesteps", "trajectory"]),
])
def test_parity_passes_fp32(request, which, component, outputs):
    events = []
    result = run_parity(request.getfixturevalue(which), component, seed=4, progress=events.append)
    _check_schema(result)
    assert result["passed"], result["outputs"]
    assert [o["name"] for o in result["outputs"]] == outputs
    assert all(o["atol"] == 1e-4 and o["rtol"] == 1e-4 and o["max_abs"] <= 1e-4 for o in result["outputs"])
    assert result["first_divergent"] is None and result["modules"] == []
    assert (result["component"], result["reference"], result["dtype"], result["seed"]) == (
        component, "diffusers", "fp32", 4)
    assert events[0]["stage"] == "load" and events[-1] == {"stage": "done", "component": component, "passed": True}


def test_broken_mapping_fails_and_names_first_divergent_module(t2v):
    result = run_parity(t2v, "transformer", rules=broken_mapping())
    _check_schema(result)
    assert not result["passed"] and not result["outputs"][0]["passed"]
    assert result["first_divergent"] == {"module": "blocks.0.cross_attn.to_k", "ours": "blocks.0.cross_attn.to_k",
                                         "reference": "blocks.0.attn2.to_k"}
    modules = {m["ours"]: m for m in result["modules"]}
    order = [m["ours"] for m in result["modules"]]
    # Everything before the swapped projection agrees (fused q/k/v compared by concatenation).
    fused = modules["blocks.0.self_attn.to_qkv"]
    assert fused["passed"] and fused["reference"] == "blocks.0.attn1.to_q+blocks.0.attn1.to_k+blocks.0.attn1.to_v"
    assert all(modules[n]["passed"] for n in order[: order.index("blocks.0.cross_attn.to_k")])
    assert modules["blocks.0.cross_attn_norm"]["reference"] == "blocks.0.norm2"
    assert modules["blocks.0.ffn.fc_in"]["reference"] == "blocks.0.ffn.net.0.proj"
    assert modules["blocks.0.ffn"]["reference"] == "blocks.0.ffn"
    assert order.index("condition_embedder.time_embedder") < order.index("blocks.0.self_attn") < order.index(
        "blocks.0") < order.index("blocks.1") < order.index("head.proj")


def test_correspondence_for_i2v_dit(i2v):
    import torch

    from fastvideo.configs.registry import resolve_model
    from fastvideo.parity import reference_diffusers as ref_lib
    from fastvideo.parity.runner import _Transformer

    info = resolve_model(i2v)
    case = _Transformer(info, "transformer", info.path / "transformer", torch.float32, 0, None)
    case.load(ref_lib)
    pairs = dict((o, "+".join(r)) for o, r in module_correspondence(case.ours, case.ref, case.mapping))
    assert pairs["blocks.1.cross_attn.to_k_img"] == "blocks.1.attn2.add_k_proj"
    assert pairs["blocks.1.cross_attn.norm_k_img"] == "blocks.1.attn2.norm_added_k"
    assert pairs["condition_embedder.image_embedder"] == "condition_embedder.image_embedder"
    assert pairs["condition_embedder.image_embedder.fc_in"] == "condition_embedder.image_embedder.ff.net.0.proj"
    assert pairs["blocks.0.self_attn.to_qkv"].count("+") == 2


def test_cli_exit_codes_and_formats(t2v, tmp_path, capsys):
    assert main(["parity", t2v, "--component", "scheduler", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    _check_schema(data)
    assert data["passed"] and data["component"] == "scheduler"

    rules_file = tmp_path / "broken.json"
    rules_file.write_text(json.dumps(broken_mapping()))
    assert main(["parity", t2v, "--component", "transformer", "--rules", str(rules_file)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "first divergent module: blocks.0.cross_attn.to_k" in out and "FAILED" in out

    assert main(["parity", str(tmp_path / "nope"), "--component", "vae"]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_bf16_uses_rel_l2_tolerance(t2v):
    result = run_parity(t2v, "transformer", dtype="bf16")
    _check_schema(result)
    (out,) = result["outputs"]
    assert result["passed"] and result["dtype"] == "bf16"
    assert out["atol"] is None and out["rtol"] is None and out["rel_l2_tol"] == 2e-2 and out["rel_l2"] <= 2e-2

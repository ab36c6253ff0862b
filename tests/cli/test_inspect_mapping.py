import json
import shutil
import subprocess
import sys
import time

import pytest

from fastvideo.mapping.rules import TensorInfo, compile_rules, invert_name
from fastvideo.models.loader.checkpoint import SafetensorsWriter, iter_tensors, save_safetensors
from fastvideo.models.loader.inspect import inspect_mapping

FILE = "diffusion_pytorch_model.safetensors"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "fastvideo", "inspect-mapping", *args], capture_output=True,
                          text=True, timeout=120)


def test_tiny_model_maps_completely(tiny_t2v):
    proc = _cli(str(tiny_t2v), "--component", "transformer", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["component"] == "transformer"
    assert data["counts"]["missing"] == data["counts"]["unexpected"] == data["counts"]["shape_mismatch"] == 0
    assert data["counts"]["merged"] == 2 * 6  # q, k, v weights and biases of 2 blocks
    row = next(r for r in data["rows"] if r["source"] == "blocks.0.attn1.to_k.weight")
    assert row["target"] == "blocks.0.self_attn.to_qkv.weight" and row["status"] == "merged"
    assert row["source_shape"] == [32, 32] and row["target_shape"] == [96, 32]
    table = _cli(str(tiny_t2v), "--component", "vae")
    assert table.returncode == 0 and "mapped:" in table.stdout


def test_crafted_checkpoint_reports_each_problem(tiny_t2v, tmp_path):
    model = tmp_path / "broken"
    shutil.copytree(tiny_t2v, model)
    sd = dict(iter_tensors(model / "transformer" / FILE))
    sd["blocks.0.ffn.net.0.proj.weightX"] = sd.pop("blocks.0.ffn.net.0.proj.weight")  # renamed: missing+unexpected
    del sd["proj_out.bias"]  # missing
    sd["scale_shift_table"] = sd["scale_shift_table"][:, :1]  # wrong shape
    save_safetensors(model / "transformer" / FILE, sd)
    proc = _cli(str(model), "--format", "json")
    assert proc.returncode == 1
    counts = json.loads(proc.stdout)["counts"]
    assert (counts["missing"], counts["unexpected"], counts["shape_mismatch"]) == (2, 1, 1)
    # A rule fixes the rename.
    rules = tmp_path / "rules.json"
    from fastvideo.configs.models.dits.wan import WanVideoConfig

    fixed = {r"^blocks\.(\d+)\.ffn\.net\.0\.proj\.weightX$": r"blocks.\1.ffn.fc_in.weight",
             **WanVideoConfig().param_names_mapping}
    rules.write_text(json.dumps(fixed))
    data = json.loads(_cli(str(model), "--format", "json", "--rules", str(rules)).stdout)
    assert (data["counts"]["missing"], data["counts"]["unexpected"]) == (1, 0)
    fired = next(r for r in data["rows"] if r["source"] == "blocks.0.ffn.net.0.proj.weightX")
    assert fired["rule"] == 0 and fired["status"] == "mapped"


@pytest.fixture(scope="module")
def wan14b_headers(tmp_path_factory):
    """An I2V-14B-sized Diffusers transformer checkpoint: real names and shapes, sparse file (no data written)."""
    from fastvideo.configs.models.dits.wan import WanVideoConfig
    from fastvideo.models.dits.wan import WanTransformer3DModel
    from fastvideo.models.loader.weights import empty_init, target_infos

    root = tmp_path_factory.mktemp("wan14b")
    cfg = WanVideoConfig(num_attention_heads=40, ffn_dim=13824, num_layers=40, in_channels=36, image_dim=1280,
                         added_kv_proj_dim=5120)
    with empty_init():
        model = WanTransformer3DModel(cfg)
    rules = compile_rules(cfg.param_names_mapping)
    infos = {}
    for name, t in target_infos(model).items():
        parts = invert_name(name, rules)
        shape = (t.shape[0] // len(parts),) + t.shape[1:]
        for source, _, _ in parts:
            infos[source] = TensorInfo(shape, "F32")
    (root / "transformer").mkdir()
    (root / "transformer" / "config.json").write_text(json.dumps({"_class_name": "WanTransformer3DModel",
                                                                   **cfg.to_dict()}))
    for comp in ("vae", "text_encoder", "tokenizer", "scheduler"):
        (root / comp).mkdir()
    (root / "model_index.json").write_text(json.dumps({
        "_class_name": "WanPipeline", "transformer": ["diffusers", "WanTransformer3DModel"],
        "vae": ["diffusers", "AutoencoderKLWan"], "text_encoder": ["transformers", "UMT5EncoderModel"],
        "tokenizer": ["transformers", "T5TokenizerFast"], "scheduler": ["diffusers", "UniPCMultistepScheduler"]}))
    w = SafetensorsWriter(root / "transformer" / FILE, infos)
    w._f.close()
    w.tmp.rename(root / "transformer" / FILE)
    return root, len(infos)


def test_14b_checkpoint_inspected_in_under_a_second(wan14b_headers):
    root, n = wan14b_headers
    assert n > 1300 and (root / "transformer" / FILE).stat().st_size > 60e9  # ~66 GB of fp32 weights
    inspect_mapping(str(root), "transformer")  # warm imports
    t = time.perf_counter()
    report = inspect_mapping(str(root), "transformer")
    elapsed = time.perf_counter() - t
    assert report.ok and len(report.rows) == n
    assert elapsed < 1.0, f"{elapsed:.2f} s"

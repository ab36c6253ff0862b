"""``fastvideo convert``: official Wan2.1 folder -> Diffusers layout, on tiny models.

The official tiny model and its Diffusers-layout twin come from the same seed, so
the converted weights must equal the twin's bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from fastvideo.conversion.base import ConversionError
from fastvideo.conversion.wan import WAN_SCHEDULER_CONFIG, convert_official_to_diffusers
from fastvideo.entrypoints.cli.main import main
from fastvideo.models.loader.checkpoint import read_headers, save_safetensors
from fastvideo.models.loader.component_loader import load_component


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _siblings(folder: Path) -> set[str]:
    return {p.name for p in folder.parent.iterdir()}


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k


def _config(folder: Path, sub: str) -> dict:
    data = json.loads((folder / sub).read_text())
    return {k: v for k, v in data.items() if k not in ("_diffusers_version", "transformers_version")}


# ----------------------------------------------------------------------------- (a) round trip


def test_layout_and_configs(converted_t2v, twin_t2v):
    files = {str(p.relative_to(converted_t2v)) for p in converted_t2v.rglob("*") if p.is_file()}
    assert files == {
        "model_index.json", "transformer/config.json", "transformer/diffusion_pytorch_model.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "text_encoder/config.json",
        "text_encoder/model.safetensors", "scheduler/scheduler_config.json", "tokenizer/spiece.model",
        "tokenizer/tokenizer.json", "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json",
    }
    for sub in ("model_index.json", "transformer/config.json", "vae/config.json"):
        assert _config(converted_t2v, sub) == _config(twin_t2v, sub), sub
    sched = _config(converted_t2v, "scheduler/scheduler_config.json")
    assert sched == {k: v for k, v in WAN_SCHEDULER_CONFIG.items() if k != "_diffusers_version"}
    assert sched["flow_shift"] == 3.0 and sched["prediction_type"] == "flow_prediction"
    twin_sched = _config(twin_t2v, "scheduler/scheduler_config.json")
    assert sched == twin_sched
    for name in ("spiece.model", "tokenizer.json"):
        assert (converted_t2v / "tokenizer" / name).read_bytes() == (twin_t2v / "tokenizer" / name).read_bytes()


def test_weights_equal_diffusers_twin_bit_for_bit(converted_t2v, twin_t2v):
    for comp in ("transformer", "vae"):
        _assert_same_weights(load_component(str(converted_t2v), comp), load_component(str(twin_t2v), comp))
    # The official T5 is stored in bf16 (kept as is); the twin holds fp32: equal once both are bf16.
    assert set(read_headers(converted_t2v / "text_encoder" / "model.safetensors")[k].dtype
               for k in read_headers(converted_t2v / "text_encoder" / "model.safetensors")) == {"BF16"}
    _assert_same_weights(load_component(str(converted_t2v), "text_encoder", dtype=torch.bfloat16),
                         load_component(str(twin_t2v), "text_encoder", dtype=torch.bfloat16))


def test_converted_loads_in_diffusers(converted_t2v, converted_i2v):
    diffusers = pytest.importorskip("diffusers")
    pipe = diffusers.WanPipeline.from_pretrained(str(converted_t2v))
    assert type(pipe.transformer).__name__ == "WanTransformer3DModel"
    assert type(pipe.scheduler).__name__ == "UniPCMultistepScheduler"
    pipe = diffusers.WanImageToVideoPipeline.from_pretrained(str(converted_i2v))
    assert pipe.transformer.config.image_dim is not None
    assert type(pipe.image_encoder).__name__ == "CLIPVisionModelWithProjection"


def test_i2v_converts_and_equals_twin(converted_i2v, twin_i2v):
    assert _config(converted_i2v, "model_index.json") == _config(twin_i2v, "model_index.json")
    assert _config(converted_i2v, "transformer/config.json") == _config(twin_i2v, "transformer/config.json")
    _assert_same_weights(load_component(str(converted_i2v), "transformer"),
                         load_component(str(twin_i2v), "transformer"))
    assert _hashes(converted_i2v / "image_encoder") == _hashes(twin_i2v / "image_encoder")
    assert _hashes(converted_i2v / "image_processor") == _hashes(twin_i2v / "image_processor")


def test_sharded_comfyui_source_and_sharded_output(official_t2v, twin_t2v, tmp_path):
    """DiT split into two shards with an index and ComfyUI's prefix; output written in shards."""
    src = tmp_path / "src"
    shutil.copytree(official_t2v, src)
    dit = src / "diffusion_pytorch_model.safetensors"
    from fastvideo.models.loader.checkpoint import iter_tensors

    tensors = {"model.diffusion_model." + k.removeprefix("model.diffusion_model."): v for k, v in iter_tensors([dit])}
    dit.unlink()
    names = list(tensors)
    shards = {"diffusion_pytorch_model-00001-of-00002.safetensors": names[: len(names) // 2],
              "diffusion_pytorch_model-00002-of-00002.safetensors": names[len(names) // 2:]}
    for fname, keys in shards.items():
        save_safetensors(src / fname, {k: tensors[k] for k in keys})
    (src / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: f for f, keys in shards.items() for k in keys}}))
    events = []
    out = convert_official_to_diffusers(src, tmp_path / "out", max_shard_bytes=60_000, progress=events.append)
    assert events[-1]["done"] == events[-1]["total"] == len(events)
    assert "transformer/diffusion_pytorch_model.safetensors.index.json" in {e["file"] for e in events}
    tdir = out / "transformer"
    index = json.loads((tdir / "diffusion_pytorch_model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    assert not (tdir / "diffusion_pytorch_model.safetensors").exists()
    _assert_same_weights(load_component(str(out), "transformer"), load_component(str(twin_t2v), "transformer"))


# ----------------------------------------------------------------------------- (b) errors and safety


def test_wrong_model_type(official_t2v, tmp_path):
    before = _hashes(official_t2v)
    with pytest.raises(ConversionError, match="wrong model type.*'t2v'.*'i2v'"):
        convert_official_to_diffusers(official_t2v, tmp_path / "out", model_type="i2v")
    assert not (tmp_path / "out").exists() and _siblings(tmp_path / "out") == set()
    assert _hashes(official_t2v) == before


def test_existing_output_needs_overwrite(official_t2v, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(ConversionError, match="not empty.*--overwrite"):
        convert_official_to_diffusers(official_t2v, out)
    assert (out / "keep.txt").read_text() == "x" and _siblings(out) == {"out"}
    with pytest.raises(ConversionError, match="not a model folder"):  # overwrite replaces only model folders
        convert_official_to_diffusers(official_t2v, out, overwrite=True)
    assert (out / "keep.txt").read_text() == "x" and _siblings(out) == {"out"}
    (out / "model_index.json").write_text("{}")
    convert_official_to_diffusers(official_t2v, out, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "model_index.json").is_file()
    assert _siblings(out) == {"out"}  # no temp or old folder left
    with pytest.raises(ConversionError, match="must not be the source"):
        convert_official_to_diffusers(official_t2v, official_t2v / "inside", overwrite=True)


def _truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("victim", ["diffusion_pytorch_model.safetensors", "Wan2.1_VAE.pth",
                                    "models_t5_umt5-xxl-enc-bf16.pth"])
def test_truncated_source_file(official_t2v, tmp_path, victim):
    src = tmp_path / "src"
    shutil.copytree(official_t2v, src)
    _truncate(src / victim, 0.6)
    before = _hashes(src)
    out = tmp_path / "out"
    with pytest.raises(ConversionError) as info:
        convert_official_to_diffusers(src, out)
    assert victim in str(info.value)
    assert not out.exists() and _siblings(out) == {"src"}  # no output, no temp folder
    assert _hashes(src) == before


def test_unmappable_key_lists_problem(official_t2v, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(official_t2v, src)
    from fastvideo.models.loader.checkpoint import iter_tensors

    dit = src / "diffusion_pytorch_model.safetensors"
    sd = dict(iter_tensors([dit]))
    sd["blocks.0.mystery.weight"] = torch.zeros(2)
    del sd["blocks.1.ffn.2.bias"]
    save_safetensors(dit, sd)
    with pytest.raises(ConversionError) as info:
        convert_official_to_diffusers(src, tmp_path / "out")
    msg = str(info.value)
    assert "blocks.0.mystery.weight" in msg and "blocks.1.ffn.fc_out.bias" in msg and "nothing was written" in msg
    assert _siblings(tmp_path / "out") == {"src"}


def test_i2v_without_image_encoder_is_a_clear_error(official_i2v, tmp_path):
    with pytest.raises(ConversionError, match="image-encoder-from"):
        convert_official_to_diffusers(official_i2v, tmp_path / "out")
    assert not (tmp_path / "out").exists() and _siblings(tmp_path / "out") == set()


def test_progress_events(official_t2v, tmp_path):
    before = _hashes(official_t2v)
    events = []
    convert_official_to_diffusers(official_t2v, tmp_path / "out", progress=events.append)
    assert _hashes(official_t2v) == before  # the source is only read
    assert [e["done"] for e in events] == list(range(1, len(events) + 1))
    assert {e["total"] for e in events} == {len(events)}
    assert all(set(e) == {"file", "done", "total", "bytes"} and e["bytes"] > 0 for e in events)
    files = {e["file"] for e in events}
    assert {str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file()} == files


def test_cli_convert(official_t2v, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["convert", str(official_t2v), str(out), "--model-type", "t2v", "--flow-shift", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[1/12] ") and lines[-1].startswith("[12/12] model_index.json")
    assert json.loads((out / "scheduler" / "scheduler_config.json").read_text())["flow_shift"] == 5.0
    assert main(["convert", str(official_t2v), str(out)]) == 2  # exists, no --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main(["convert", str(official_t2v), str(tmp_path / "o2"), "--model-type", "i2v"]) == 2
    assert "wrong model type" in capsys.readouterr().err


# ----------------------------------------------------------------------------- (d) make-tiny CLI


def test_cli_make_tiny(tmp_path, capsys):
    out = tmp_path / "tiny"
    assert main(["make-tiny", str(out), "--layout", "official", "--seed", "5"]) == 0
    assert "official layout, seed 5" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"config.json", "diffusion_pytorch_model.safetensors", "Wan2.1_VAE.pth",
                                               "models_t5_umt5-xxl-enc-bf16.pth", "google"}  # no sidecar file
    assert main(["make-tiny", str(out)]) == 2  # exists
    assert main(["make-tiny", str(out), "--task", "i2v", "--overwrite"]) == 0
    assert json.loads((out / "model_index.json").read_text())["_class_name"] == "WanImageToVideoPipeline"

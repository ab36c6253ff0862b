"""The porting tools on Wan2.2 folders: ``--component transformer_2`` in inspect-mapping and parity, and the
conversion preview of an official A14B folder (its two expert folders)."""

from __future__ import annotations

import json

import pytest

from fastvideo.entrypoints.cli.main import main
from fastvideo.testing.tiny_wan22 import make_tiny_wan22


@pytest.fixture(scope="module")
def moe(tmp_path_factory):
    root = tmp_path_factory.mktemp("moe")
    return make_tiny_wan22(root / "diffusers", "t2v-moe", seed=2), make_tiny_wan22(root / "official", "t2v-moe",
                                                                                   layout="official", seed=2)


def test_inspect_mapping_transformer_2(moe, capsys):
    diffusers_folder, _ = moe
    assert main(["inspect-mapping", str(diffusers_folder), "--component", "transformer_2", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["component"] == "transformer_2"


def test_parity_transformer_2(moe, capsys):
    pytest.importorskip("diffusers")
    diffusers_folder, _ = moe
    assert main(["parity", str(diffusers_folder), "--component", "transformer_2", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["component"] == "transformer_2" and result["passed"]
    assert result["outputs"][0]["max_abs"] < 1e-4


def test_conversion_preview_of_official_experts(moe):
    from fastvideo.conversion.preview import inspect_mapping, is_official_folder

    _, official = moe
    assert is_official_folder(official)  # no config.json at the top: the experts' folders tell
    for component in ("transformer", "transformer_2", "vae", "text_encoder"):
        report = inspect_mapping(str(official), component)
        assert report.ok, (component, report.counts)
    with pytest.raises(ValueError, match="transformer, transformer_2, vae, text_encoder"):
        inspect_mapping(str(official), "image_encoder")


def test_make_tiny_and_convert_cli(tmp_path, capsys):
    out = tmp_path / "ti2v-official"
    assert main(["make-tiny", str(out), "--family", "wan2.2", "--task", "ti2v", "--layout", "official"]) == 0
    assert "Wan2.2 ti2v model, official layout" in capsys.readouterr().out
    assert main(["make-tiny", str(tmp_path / "x"), "--family", "wan2.2", "--task", "t2v"]) == 2
    assert "not a wan2.2 task" in capsys.readouterr().out
    assert main(["convert", str(out), str(tmp_path / "ti2v")]) == 0
    index = json.loads((tmp_path / "ti2v" / "model_index.json").read_text())
    assert index["expand_timesteps"] is True
    assert json.loads((tmp_path / "ti2v" / "scheduler" / "scheduler_config.json").read_text())["flow_shift"] == 5.0
    assert main(["make-tiny", str(tmp_path / "moe"), "--family", "wan2.2", "--task", "i2v-moe"]) == 0
    assert json.loads((tmp_path / "moe" / "model_index.json").read_text())["boundary_ratio"] == 0.9

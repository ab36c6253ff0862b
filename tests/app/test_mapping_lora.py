"""The weight-mapping inspector's LoRA view (issue 23): a LoRA file against a model's DiT, every key with its
target module, rule, rank, alpha and status, filterable; torch-free in the studio (the DiT's shapes come from
the inference process once)."""

from __future__ import annotations

import json

import pytest
import torch

from fastvideo.models.loader.checkpoint import save_safetensors


def _dim(model) -> int:
    cfg = json.loads((model / "transformer" / "config.json").read_text())
    return cfg["num_attention_heads"] * cfg["attention_head_dim"]


def _mixed_lora(path, dim: int):
    """to_q applies (with alpha), to_qq maps to nothing, to_k has the wrong in-features."""
    g = torch.Generator().manual_seed(0)
    sd = {"transformer.blocks.0.attn1.to_q.lora_A.weight": torch.randn(2, dim, generator=g),
          "transformer.blocks.0.attn1.to_q.lora_B.weight": torch.randn(dim, 2, generator=g),
          "transformer.blocks.0.attn1.to_q.alpha": torch.tensor(4.0),
          "transformer.blocks.1.attn1.to_qq.lora_A.weight": torch.zeros(2, dim),
          "transformer.blocks.1.attn1.to_qq.lora_B.weight": torch.zeros(dim, 2),
          "transformer.blocks.0.attn1.to_k.lora_A.weight": torch.zeros(2, dim + 3),
          "transformer.blocks.0.attn1.to_k.lora_B.weight": torch.zeros(dim, 2)}
    save_safetensors(path, sd)
    return path


def model_rule_text(view, row) -> str:
    model = view.table_model
    return model.data(model.index(model.find(row.key), model.RULE))


def test_service_plans_a_header_without_torch_reads(tiny_model, tmp_path):
    from app.services.lora_inspect import inspect_lora
    from fastvideo.models.loader.component_loader import load_component

    dit = load_component(str(tiny_model), "transformer", dtype=torch.float32)
    shapes = {n: tuple(p.shape) for n, p in dit.named_parameters()}
    lora = _mixed_lora(tmp_path / "mixed.safetensors", _dim(tiny_model))
    res = inspect_lora(str(lora), str(tiny_model), shapes)
    assert res.report is not None and not res.ok
    assert res.report.counts == {"applied": 3, "unmatched": 2, "shape_mismatch": 2}
    assert "Strict" in res.message and "2 unmatched" in res.message and "2 with the wrong shape" in res.message
    # A LoRA of another family: no report, the engine's reason.
    flux = tmp_path / "flux.safetensors"
    save_safetensors(flux, {"double_blocks.0.img_attn.qkv.lora_A.weight": torch.zeros(2, 8),
                            "double_blocks.0.img_attn.qkv.lora_B.weight": torch.zeros(8, 2)})
    res = inspect_lora(str(flux), str(tiny_model), shapes)
    assert res.report is None and "Flux" in res.message
    res = inspect_lora(str(tmp_path / "missing.safetensors"), str(tiny_model), shapes)
    assert res.report is None and "not found" in res.message


@pytest.mark.timeout(240)
def test_lora_view_in_the_inspector(make_studio, make_window, tiny_model, qtbot, tmp_path):
    dim = _dim(tiny_model)
    lora = _mixed_lora(tmp_path / "mixed.safetensors", dim)
    studio = make_studio("real")
    win = make_window(studio)
    m = win.mapping
    win.show_panel("mapping")
    m.set_model(str(tiny_model), "transformer")
    rid = m.open_lora(str(lora))
    assert rid is not None and m.showing_lora()  # the DiT's shapes are asked for once
    view = m.lora_view
    qtbot.waitUntil(lambda: view.inspection is not None, timeout=120000)
    assert view.counts() == {"applied": 3, "unmatched": 2, "shape_mismatch": 2}
    assert "7 keys" in view.title.text() and "diffusers format" in view.title.text()
    assert view.message.isVisible() and "fails (Strict)" in view.message.text()
    assert view.status_tabs.tabText(0) == "All (7)" and view.status_tabs.tabText(2) == "Unmatched (2)"
    assert view.status_tabs.isTabVisible(3) and not view.status_tabs.isTabVisible(4)  # no incomplete keys: no tab
    rows = {r.key: r for r in view.table_model.rows}
    q = rows["transformer.blocks.0.attn1.to_q.lora_A.weight"]
    assert q.status == "applied" and q.target.startswith("blocks.0.") and q.rank == 2 and q.alpha == 4.0
    assert q.scale == 2.0 and "param_names_mapping" in q.rule
    assert model_rule_text(view, q) == "ours#" + q.rule.split("param_names_mapping#")[1].split(" ")[0]
    model = view.table_model
    shown = {c: model.data(model.index(model.find(q.key), c)) for c in range(len(model.COLUMNS))}
    assert shown[model.RANK] == "2" and shown[model.ALPHA] == "4" and shown[model.STATUS] == "applied"
    # Filterable like the checkpoint table: by status, by text, by regex.
    view.show_status("unmatched")
    assert sorted(r.key for r in view.visible_rows()) == [
        "transformer.blocks.1.attn1.to_qq.lora_A.weight", "transformer.blocks.1.attn1.to_qq.lora_B.weight"]
    view.show_status(None)
    view.search_edit.setText("to_k")
    assert {r.status for r in view.visible_rows()} == {"shape_mismatch"} and len(view.visible_rows()) == 2
    view.regex_check.setChecked(True)
    view.search_edit.setText(r"blocks\.0\..*alpha$")
    assert [r.key for r in view.visible_rows()] == ["transformer.blocks.0.attn1.to_q.alpha"]
    view.search_edit.setText("(")
    assert view.search_error.isVisible()
    view.search_edit.setText("")
    # Details: the rule chain in order, and the near misses of an unmatched key.
    assert view.select_key("transformer.blocks.1.attn1.to_qq.lora_A.weight")
    assert "Did you mean" in view.details.text() and "blocks.1." in view.details.text()
    assert view.select_key("transformer.blocks.0.attn1.to_k.lora_A.weight")
    assert "B @ A is" in view.details.text()
    # A second LoRA against the same model: no new request, the shapes are known.
    flux = tmp_path / "flux.safetensors"
    save_safetensors(flux, {"double_blocks.0.img_attn.qkv.lora_A.weight": torch.zeros(2, 8),
                            "double_blocks.0.img_attn.qkv.lora_B.weight": torch.zeros(8, 2)})
    assert m.open_lora(str(flux)) is None
    assert view.table_model.rows == [] and "does not fit" in view.title.text() and "Flux" in view.message.text()
    assert "LoRA view" in m.state_label.text()
    view.back_button.click()
    assert not m.showing_lora() and "LoRA view" not in m.state_label.text()

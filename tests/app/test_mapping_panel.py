"""The weight-mapping inspector on a crafted checkpoint (renamed, reshaped and extra keys), live rule
editing, export/import, and a 1,500-key report through the proxy model."""

from __future__ import annotations

import json
import shutil
import struct
import time
from pathlib import Path

import pytest
from studio_wait import wait_until

from app.itemmodels.mapping_models import MappingFilterProxy, MappingInputs, MappingTableModel, RulesModel, evaluate
from app.panels.mapping import MappingPanel
from fastvideo.mapping.rules import TargetInfo, TensorInfo
from fastvideo.models.loader.checkpoint import read_safetensors_header

WEIGHTS = "transformer/diffusion_pytorch_model.safetensors"
RENAMED = {"blocks.0.ffn.net.0.proj.weight": "blocks.0.ffn.proj_in.weight",
           "blocks.0.ffn.net.0.proj.bias": "blocks.0.ffn.proj_in.bias"}
FIX_RULE = (r"^blocks\.(\d+)\.ffn\.proj_in\.", r"blocks.\1.ffn.fc_in.")


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int], bytes]]) -> None:
    """A safetensors file from raw bytes (pure Python: name -> (dtype, shape, data))."""
    header, offset, blobs = {}, 0, []
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


@pytest.fixture
def crafted(tiny_model, tmp_path) -> Path:
    """The tiny model with 2 renamed keys, 1 truncated tensor and 1 extra key in its transformer."""
    out = tmp_path / "crafted"
    shutil.copytree(tiny_model, out)
    entries, _ = read_safetensors_header(tiny_model / WEIGHTS)
    data = (tiny_model / WEIGHTS).read_bytes()
    tensors = {}
    for name, e in sorted(entries.items(), key=lambda kv: kv[1].begin):
        blob = data[e.begin:e.end]
        shape = list(e.info.shape)
        if name == "proj_out.bias":  # shape mismatch: half of it
            shape, blob = [shape[0] // 2], blob[: len(blob) // 2]
        tensors[RENAMED.get(name, name)] = (e.info.dtype, shape, blob)
    tensors["debug.extra_scale"] = ("F32", [1], struct.pack("<f", 1.0))  # nothing maps it anywhere
    write_safetensors(out / WEIGHTS, tensors)
    return out


def test_inspector_on_crafted_checkpoint(make_studio, crafted, tmp_path, qtbot, qtmodeltester):
    studio = make_studio("real")
    panel = MappingPanel(studio)
    qtbot.addWidget(panel)
    panel.resize(1200, 800)
    panel.show()
    panel.set_model(str(crafted))
    assert [panel.component_combo.itemText(i) for i in range(panel.component_combo.count())] == [
        "transformer", "text_encoder", "vae"]  # the denoiser, then model_index order
    panel.set_model(str(crafted), "transformer")
    panel.load_button.click()
    wait_until(qtbot, lambda: panel.inputs is not None or panel.load_error, 60, "inspect reply")
    assert not panel.load_error
    assert panel.counts() == {"mapped": 54, "merged": 12, "missing": 2, "unexpected": 3, "shape_mismatch": 1}
    tabs = [panel.status_tabs.tabText(i) for i in range(panel.status_tabs.count())]
    assert tabs == ["All (72)", "Mapped (54)", "Merged (12)", "Missing (2)", "Unexpected (3)",
                    "Shape mismatch (1)", "Duplicate target (0)", "Ignored (0)"]

    # status tabs filter the table; the counts match the rows shown
    panel.show_status("missing")
    assert sorted(r.target for r in panel.visible_rows()) == ["blocks.0.ffn.fc_in.bias", "blocks.0.ffn.fc_in.weight"]
    panel.show_status("unexpected")
    assert sorted(r.source for r in panel.visible_rows()) == ["blocks.0.ffn.proj_in.bias",
                                                             "blocks.0.ffn.proj_in.weight", "debug.extra_scale"]
    panel.show_status("shape_mismatch")
    [bad] = panel.visible_rows()
    assert (bad.source, bad.target, bad.source_shape, bad.target_shape) == ("proj_out.bias", "head.proj.bias",
                                                                            [32], [64])
    # details of a missing key: the closest unexpected source names are highlighted
    panel.show_status("missing")
    assert panel.select_key(None, "blocks.0.ffn.fc_in.weight")
    near = [r.source for r in panel.highlighted_rows()]
    assert "blocks.0.ffn.proj_in.weight" in near and "proj_out.bias" not in near
    assert "blocks.0.ffn.proj_in.weight " in panel.near_list.item(0).text()
    assert "missing" in panel.details.text()
    # a mapped key names the rule that fired
    panel.show_status(None)
    assert panel.select_key("blocks.1.attn2.to_k.weight")
    assert "Rule #15 fired" in panel.details.text() and "cross_attn.to_k" in panel.details.text()

    # search: text and regex (invalid regex flagged, filters nothing)
    panel.search_edit.setText("proj_in")
    assert len(panel.visible_rows()) == 2
    panel.regex_check.setChecked(True)
    panel.search_edit.setText(r"^blocks\.1\.attn2\.to_[kv]\.")
    assert len(panel.visible_rows()) == 4
    panel.search_edit.setText("blocks.(")
    assert panel.search_error.isVisible() and len(panel.visible_rows()) == 72
    panel.search_edit.clear()

    # the rule editor: an invalid regex is flagged in its row, skipped, and the rest still applies
    n_rules = panel.rules_model.rowCount()
    panel.rules_model.add_rule("blocks.(", "x", row=0)
    wait_until(qtbot, lambda: 0 in panel.rules_model.errors, 5, "invalid rule flagged")
    assert panel.rules_error.isVisible() and "rule #0" in panel.rules_error.text()
    assert panel.rules_model.index(0, RulesModel.PATTERN).data(Qt_Tooltip()).startswith("Invalid")
    assert panel.counts()["mapped"] == 54
    # editing it into the fix rule repairs the renamed keys live
    panel.rules_model.setData(panel.rules_model.index(0, RulesModel.PATTERN), FIX_RULE[0])
    panel.rules_model.setData(panel.rules_model.index(0, RulesModel.REPLACEMENT), FIX_RULE[1])
    wait_until(qtbot, lambda: panel.counts()["missing"] == 0, 5, "live re-evaluation")
    assert panel.counts() == {"mapped": 56, "merged": 12, "missing": 0, "unexpected": 1, "shape_mismatch": 1}
    assert not panel.rules_error.isVisible()
    assert panel.rules_model.index(0, RulesModel.HITS).data() == "2"
    assert panel.status_tabs.tabText(3) == "Missing (0)"
    assert panel.select_key("blocks.0.ffn.proj_in.weight") and "Rule #0 fired" in panel.details.text()

    # export as a Python dict literal and as JSON, import back: same rules, same report
    py = panel.export_rules(tmp_path / "rules.py", "python")
    js = panel.export_rules(tmp_path / "rules.json", "json")
    text = py.read_text()
    assert text.startswith("{\n") and f'r"{FIX_RULE[0]}": r"{FIX_RULE[1]}",' in text
    assert "('blocks.\\1.self_attn.to_qkv.\\2', 0, 3)" in text or 'r"blocks.\\1.self_attn.to_qkv.\\2", 0, 3)' in text
    assert json.loads(js.read_text())[FIX_RULE[0]] == FIX_RULE[1]
    before = panel.rules_model.rules()
    panel.reset_rules(confirm=False)
    wait_until(qtbot, lambda: panel.counts()["missing"] == 2, 5, "reset")
    assert panel.rules_model.rowCount() == n_rules
    assert panel.import_rules(py) == n_rules + 1
    wait_until(qtbot, lambda: panel.counts()["missing"] == 0, 5, "python import")
    assert panel.rules_model.rules() == before
    panel.reset_rules(confirm=False)
    assert panel.import_rules(js) == n_rules + 1
    panel.reevaluate()
    assert panel.rules_model.rules() == before and panel.counts()["unexpected"] == 1

    # reorder and delete: moving the fix rule below a rule that does not match changes nothing; deleting it does
    panel.rules_view.selectRow(0)
    panel.down_button.click()
    panel.reevaluate()
    assert panel.rules_model.rules()[1] == FIX_RULE and panel.counts()["missing"] == 0
    panel.rules_view.selectRow(1)
    panel.up_button.click()
    assert panel.rules_model.rules()[0] == FIX_RULE
    panel.delete_rule_button.click()
    panel.reevaluate()
    assert panel.counts()["missing"] == 2 and panel.rules_model.rowCount() == n_rules

    # "Parity with these rules" hands the (valid) rules over
    sent = []
    panel.rules_for_parity.connect(lambda rules, label: sent.append((rules, label)))
    panel.parity_button.click()
    assert sent and len(sent[0][0]) == n_rules

    qtmodeltester.check(panel.table_model)
    qtmodeltester.check(panel.proxy)
    qtmodeltester.check(panel.rules_model)


def Qt_Tooltip():  # noqa: N802
    from PySide6.QtCore import Qt

    return Qt.ItemDataRole.ToolTipRole


def synthetic_inputs(n_blocks: int = 75) -> MappingInputs:
    """A DiT-like checkpoint with 20 keys per block (1,500 keys), a few broken on purpose."""
    source, target = {}, {}
    for b in range(n_blocks):
        for part in ("q", "k", "v", "o"):
            for kind, shape in (("weight", (64, 64)), ("bias", (64,))):
                source[f"blk.{b}.attn.{part}.{kind}"] = TensorInfo(shape, "BF16")
                target[f"blocks.{b}.attn.to_{part}.{kind}"] = TargetInfo(shape)
        for j in range(8):
            source[f"blk.{b}.mlp.{j}.weight"] = TensorInfo((128, 64), "BF16")
            target[f"blocks.{b}.mlp.{j}.weight"] = TargetInfo((128, 64) if (b, j) != (7, 3) else (64, 64))
        source[f"blk.{b}.norm.weight"] = TensorInfo((64,), "F32")
        source[f"blk.{b}.norm.bias"] = TensorInfo((64,), "F32")
        target[f"blocks.{b}.norm.weight"] = TargetInfo((64,))
        target[f"blocks.{b}.norm.bias"] = TargetInfo((64,))
        for s in ("scale", "shift"):
            source[f"blk.{b}.mod.{s}"] = TensorInfo((64,), "F32")
            target[f"blocks.{b}.mod.{s}"] = TargetInfo((64,))
    rules = [(r"^blk\.(\d+)\.attn\.(q|k|v|o)\.", r"blocks.\1.attn.to_\2."), (r"^blk\.(\d+)\.mlp\.", r"blocks.\1.mlp."),
             (r"^blk\.(\d+)\.norm\.", r"blocks.\1.norm."), (r"^blk\.(\d+)\.mod\.", r"blocks.\1.mod.")]
    return MappingInputs("transformer", source, target, rules)


def test_inspector_stays_smooth_with_1500_keys(make_studio, qtbot, qtmodeltester):
    inputs = synthetic_inputs()
    assert len(inputs.source) == 1500
    panel = MappingPanel(make_studio(engine=None))
    qtbot.addWidget(panel)
    panel.resize(1200, 800)
    panel.show()
    t0 = time.perf_counter()
    panel.set_inputs(inputs)
    first = time.perf_counter() - t0
    assert panel.counts() == {"mapped": 1499, "merged": 0, "missing": 0, "unexpected": 0, "shape_mismatch": 1}
    assert panel.proxy.rowCount() == 1500
    # an edit (break the mlp rule) is re-evaluated and shown quickly: model/view, no widget per row
    t0 = time.perf_counter()
    panel.rules_model.setData(panel.rules_model.index(1, RulesModel.REPLACEMENT), r"blocks.\1.ffn.")
    panel.reevaluate()
    qtbot.wait(1)
    edit = time.perf_counter() - t0
    assert panel.counts()["missing"] == 600 and panel.counts()["unexpected"] == 600
    assert first < 2.0 and edit < 1.0, (first, edit)
    assert panel.table.indexWidget(panel.proxy.index(0, 0)) is None  # no widget per row
    # sort by source shape (element count), then filter by regex and status
    panel.table.sortByColumn(MappingTableModel.SRC_SHAPE, panel.table.horizontalHeader().sortIndicatorOrder()
                             .DescendingOrder)
    assert panel.proxy.index(0, MappingTableModel.SRC_SHAPE).data() == "[128, 64]"
    panel.regex_check.setChecked(True)
    panel.search_edit.setText(r"^blk\.7\.mlp\.")
    assert panel.proxy.rowCount() == 8
    panel.show_status("unexpected")
    assert panel.proxy.rowCount() == 8 and all(r.status == "unexpected" for r in panel.visible_rows())
    # a missing key's near misses are the renamed unexpected ones
    panel.search_edit.clear()
    panel.show_status("missing")
    assert panel.select_key(None, "blocks.7.mlp.2.weight")
    assert panel.highlighted_rows()[0].source == "blk.7.mlp.2.weight"
    # blocks.7.mlp.3.weight is [64, 64]: its namesake [128, 64] is listed as impossible, never highlighted
    assert panel.select_key(None, "blocks.7.mlp.3.weight")
    assert all(r.source != "blk.7.mlp.3.weight" for r in panel.highlighted_rows())
    texts = [panel.near_list.item(i).text() for i in range(panel.near_list.count())]
    assert any("blk.7.mlp.3.weight" in t and "shape cannot fit" in t for t in texts)
    assert texts[0].endswith("blk.7.mlp.3.weight  [128, 64]  — shape cannot fit")  # best name, marked
    qtmodeltester.check(panel.proxy)


def test_rules_model_edits_and_moves(qtmodeltester):
    m = RulesModel()
    m.set_rules({r"^a\.": "b.", r"^q\.": ("qkv.", 0, 3), r"^k\.": ("qkv.", 1, 3)})
    qtmodeltester.check(m)
    assert m.rules()[1] == (r"^q\.", ("qkv.", 0, 3))
    assert m.move(0, 1) == 1 and [p for p, _ in m.rules()] == [r"^q\.", r"^a\.", r"^k\."]
    assert m.move(1, -1) == 0 and m.move(0, -1) == 0
    assert m.insertRows(3, 1) and m.rowCount() == 4
    assert m.setData(m.index(3, RulesModel.PART), "2")
    assert m.items[3][2:4] == [2, 3]
    assert m.setData(m.index(3, RulesModel.PART), "")  # back to a plain rename
    assert m.items[3][2:4] == [None, None]
    assert not m.setData(m.index(3, RulesModel.COUNT), "x")
    assert m.removeRows(3, 1) and m.rowCount() == 3
    report, errors = evaluate(MappingInputs("c", {"a.w": TensorInfo((1,), "F32")}, {"b.w": TargetInfo((1,))}),
                              [("(", "x"), (r"^a\.", r"b.\2")])
    assert set(errors) == {0, 1} and "group 2" in errors[1]
    assert report.counts["unexpected"] == 1
    m2 = RulesModel()
    m2.set_rules(json.loads(m.to_json()))
    assert m2.rules() == m.rules()
    proxy = MappingFilterProxy()
    proxy.setSourceModel(MappingTableModel())
    qtmodeltester.check(proxy)


def test_window_wires_the_porter_panels(make_studio, make_window, tiny_model, tmp_path, qtbot):
    win = make_window(make_studio(engine=None))
    assert win.panel_names()[-3:] == ["models", "mapping", "parity"]
    root = tmp_path / "models"
    shutil.copytree(tiny_model, root / "converted_weights" / "tiny")
    win.models.set_models_root(root)
    win.show_panel("mapping")  # the first visit of a porter panel scans the models folder
    wait_until(qtbot, lambda: win.mapping.model_combo.count() == 1, 10, "model list")
    assert win.parity.model_combo.itemData(0) == str(root / "converted_weights" / "tiny")
    win.mapping.model_path = str(root / "converted_weights" / "tiny")
    win.mapping.set_inputs(synthetic_inputs(2))
    win.mapping.parity_button.click()
    assert win.current_panel() == "parity"
    assert win.parity.rules_combo.currentData() == "custom" and len(win.parity.custom_rules) == 4
    assert win.parity.current_model_path() == str(root / "converted_weights" / "tiny")

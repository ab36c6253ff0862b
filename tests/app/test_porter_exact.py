"""Issue 30, "The porter's tools must be exact": rule order survives editor -> parity, duplicate targets
and ignore rules in the inspector, the Models panel's header-only fit check, and the editor's safety
(Add, Reset, Export, the param_names_mapping block)."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox
from studio_wait import wait_until

from app.itemmodels.mapping_models import MappingInputs, RulesModel
from app.panels.mapping import MappingPanel
from app.services.jobs_db import JobsDB
from app.services.parity_store import ParityStore
from fastvideo.mapping.rules import TargetInfo, TensorInfo

SWAP = [(r"^blocks\.(\d+)\.attn2\.to_k\.", r"blocks.\1.cross_attn.to_v."),
        (r"^blocks\.(\d+)\.attn2\.to_v\.", r"blocks.\1.cross_attn.to_k.")]


def test_rules_swapped_in_the_editor_make_parity_fail(make_studio, make_window, tiny_model, qtbot):
    pytest.importorskip("diffusers")
    studio = make_studio("real")
    win = make_window(studio)
    m = win.mapping
    m.load(str(tiny_model), "transformer")
    wait_until(qtbot, lambda: m.inputs is not None or m.load_error, 60, "inspect reply")
    assert not m.load_error
    # two rules added at the top swap cross-attention to_k / to_v: they fire in the inspector
    for row, (pattern, repl) in enumerate(SWAP):
        m.rules_model.add_rule(pattern, repl, row=row)
    m.reevaluate()
    assert m.rules_model.index(0, RulesModel.HITS).data() == "4"  # weight + bias of 2 blocks
    assert m.rules_model.index(1, RulesModel.HITS).data() == "4"
    assert m.report.ok  # same shapes: it loads without complaint
    m.parity_button.click()
    p = win.parity
    assert win.current_panel() == "parity"
    assert p.custom_rules[:2] == SWAP and p.custom_rules == m.rules_model.active_rules()
    finished = []
    p.run_finished.connect(finished.append)
    p.run_button.click()
    assert isinstance(p._run_spec["rules"], list) and p._run_spec["rules"][0] == list(SWAP[0])  # wire form
    wait_until(qtbot, lambda: finished, 120, "parity run")
    run = finished[0]
    assert run.error is None and run.passed is False, run.result
    assert run.first_divergent == "blocks.0.cross_attn.to_k"
    assert "FAIL" in p.verdict.text() and "blocks.0.cross_attn.to_k" in p.verdict.text()
    # the history keeps the exact rules, in order (not just a label)
    [stored] = ParityStore(JobsDB(studio.paths.jobs_db)).runs()
    assert stored.rules[:2] == [list(r) for r in SWAP] and len(stored.rules) == len(p.custom_rules)
    assert stored.rules_label.startswith("edited rules") and stored.verdict == "fail"
    assert run.result["rules"][:2] == [list(r) for r in SWAP]  # what the inference process used


def _panel(make_studio, qtbot, inputs: MappingInputs) -> MappingPanel:
    panel = MappingPanel(make_studio(engine=None))
    qtbot.addWidget(panel)
    panel.resize(1200, 800)
    panel.show()
    panel.set_inputs(inputs)
    return panel


def test_duplicate_target_and_ignore_rule_in_the_inspector(make_studio, qtbot):
    inputs = MappingInputs(
        "transformer",
        {"proj.weight": TensorInfo((4, 4), "F32"), "old_proj.weight": TensorInfo((2, 4), "F32"),
         "debug.scale": TensorInfo((1,), "F32")},
        {"proj.weight": TargetInfo((4, 4))},
        [(r"^old_proj\.", "proj.")])
    panel = _panel(make_studio, qtbot, inputs)
    tabs = [panel.status_tabs.tabText(i) for i in range(panel.status_tabs.count())]
    assert "Duplicate target (2)" in tabs and "Unexpected (1)" in tabs
    panel.show_status("duplicate_target")
    assert sorted(r.source for r in panel.visible_rows()) == ["old_proj.weight", "proj.weight"]
    assert panel.select_key("old_proj.weight") and "Duplicate target" in panel.details.text()
    assert not panel.report.ok
    # an ignore rule for the truly extra key
    panel.show_status("unexpected")
    assert panel.select_key("debug.scale")
    row = panel.ignore_button.click() or 0
    panel.reevaluate()
    assert panel.rules_model.rules()[row] == (r"^debug\.scale$", None)
    assert panel.counts()["ignored"] == 1 and panel.counts()["unexpected"] == 0
    assert "None," in panel.rules_model.to_python() and '"^debug\\\\.scale$": null' in panel.rules_model.to_json()


def _small_inputs() -> MappingInputs:
    return MappingInputs("transformer", {"a.w": TensorInfo((2,), "F32"), "b.w": TensorInfo((2,), "F32")},
                         {"x.w": TargetInfo((2,)), "b.w": TargetInfo((2,))}, [(r"^a\.", "x.")])


def test_editor_add_reset_export_and_arch_block(make_studio, qtbot, tmp_path, monkeypatch):
    panel = _panel(make_studio, qtbot, _small_inputs())
    assert panel.report.ok
    # Add with nothing selected: an empty rule that is off (never a match-everything "^" -> "")
    panel.rules_view.clearSelection()
    panel.rules_view.selectionModel().clearCurrentIndex()
    panel.add_rule_button.click()
    panel.reevaluate()
    assert panel.rules_model.items[0][:2] == ["", ""] and 0 in panel.rules_model.disabled()
    assert panel.report.ok and panel.counts()["mapped"] == 2
    # Add with a rule selected: a copy of it, off
    panel.rules_view.selectRow(1)
    panel.add_rule_button.click()
    assert panel.rules_model.rules()[1] == (r"^a\.", "x.") and 1 in panel.rules_model.disabled()
    assert panel.rules_model.active_rules() == [(r"^a\.", "x.")]
    # Export refuses an invalid rule, naming it; nothing is written
    panel.rules_model.add_rule("a.(", "x", row=0)
    with pytest.raises(ValueError, match=r"rule #0 \('a\.\('\)"):
        panel.export_rules(tmp_path / "bad.py")
    assert not (tmp_path / "bad.py").exists()
    notes = []
    panel.notify.connect(lambda text, kind: notes.append((kind, text)))
    monkeypatch.setattr("app.panels.mapping_rules.QFileDialog.getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "bad.json"), ""))
    panel.export_json_button.click()
    assert notes[-1][0] == "error" and "rule #0" in notes[-1][1] and not (tmp_path / "bad.json").exists()
    panel.rules_model.removeRows(0, 1)
    assert panel.export_rules(tmp_path / "good.py").read_text().startswith("{")
    # the ready-to-paste param_names_mapping block, copied
    panel.arch_block_button.click()
    block = QGuiApplication.clipboard().text()
    assert block.startswith("    param_names_mapping: dict[str, MappingValue] = field(default_factory=lambda: {")
    assert 'r"^a\\.": r"x.",' in block and block.rstrip().endswith("})")
    assert panel.block_dialog.isVisible() and panel.block_text.toPlainText() == block
    # Reset asks first: No keeps the edits, Yes discards them
    answers = [QMessageBox.StandardButton.No]
    monkeypatch.setattr("app.panels.mapping_rules.QMessageBox.question", lambda *a, **k: answers[0])
    n = panel.rules_model.rowCount()
    panel.reset_rules_button.click()
    assert panel.rules_model.rowCount() == n
    answers[0] = QMessageBox.StandardButton.Yes
    panel.reset_rules_button.click()
    assert panel.rules_model.rules() == [(r"^a\.", "x.")] and not panel.rules_model.edited


def _misfit(tiny_model, tmp_path):
    from fastvideo.models.loader.checkpoint import iter_tensors, save_safetensors

    out = tmp_path / "models" / "converted_weights" / "misfit"
    shutil.copytree(tiny_model, out)
    f = out / "transformer" / "diffusion_pytorch_model.safetensors"
    sd = dict(iter_tensors(f))
    sd["blocks.0.ffn.net.0.proj.weightX"] = sd.pop("blocks.0.ffn.net.0.proj.weight")  # missing + unexpected
    sd["scale_shift_table"] = sd["scale_shift_table"][:, :1]  # wrong shape
    save_safetensors(f, sd)
    return out


def test_models_panel_loads_comes_from_the_header_check(make_studio, tiny_model, tmp_path, qtbot):
    from app.panels.models import ModelsPanel

    bad = _misfit(tiny_model, tmp_path)
    good = tmp_path / "models" / "converted_weights" / "good"
    shutil.copytree(tiny_model, good)
    studio = make_studio("real")
    panel = ModelsPanel(studio, models_root=tmp_path / "models")
    qtbot.addWidget(panel)
    panel.resize(1100, 800)
    panel.show()
    panel.refresh()
    wait_until(qtbot, lambda: panel.scan_count >= 1, 10, "scan")
    wait_until(qtbot, lambda: all((panel.fit_state(p) or {}).get("state") in ("ok", "bad", "error")
                                  for p in (bad, good)), 90, "fit check")
    assert panel.fit_state(good)["state"] == "ok"
    fit = panel.fit_state(bad)
    assert fit["state"] == "bad" and fit["problems"]["transformer"] == {"missing": 1, "unexpected": 1,
                                                                        "wrong shape": 1}
    rows = {panel.model.index(r, 0).data(): r for r in range(panel.model.rowCount())}
    assert panel.model.index(rows["misfit"], 6).data() == "no — checkpoint does not fit"
    assert panel.model.index(rows["good"], 6).data() == "yes"
    panel.select_path(bad)
    assert not panel.parity_button.isEnabled() and panel.inspect_button.isEnabled()
    assert "checkpoint does not fit: transformer: 1 missing, 1 unexpected, 1 wrong shape" in panel.detail_label.text()
    # the link opens the inspector on that model
    asked = []
    panel.inspect_requested.connect(asked.append)
    panel.detail_label.linkActivated.emit(f"inspect:{bad}")
    assert asked == [str(bad)]

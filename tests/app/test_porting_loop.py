"""Issue 30, the porting loop in the studio: layout at the default window size (every column and
component name visible, multi-line errors keep their lines, rules stay with their model), the
models-folder setting, the inspector on an official folder (a preview of `fastvideo convert`),
"Parity: all components", "Use in Generate" and the converter's flow shift."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from studio_wait import wait_until

from app.itemmodels.mapping_models import MappingInputs, RulesModel
from app.panels.mapping import MappingPanel
from app.panels.parity import ParityPanel
from fastvideo.mapping.rules import TargetInfo, TensorInfo

SWAP = [(r"^blocks\.(\d+)\.attn2\.to_k\.", r"blocks.\1.cross_attn.to_v."),
        (r"^blocks\.(\d+)\.attn2\.to_v\.", r"blocks.\1.cross_attn.to_k.")]


@pytest.fixture(scope="module")
def tiny_official(tmp_path_factory) -> Path:
    from fastvideo.testing.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("official") / "tiny-official", layout="official", seed=0)


def styled_window(make_studio, make_window, **kw):
    """The main window at the default size (1280x820) with the studio's style sheet, as users see it."""
    from app.resources import stylesheet

    win = make_window(make_studio(**kw))
    win.setStyleSheet(stylesheet())
    win.resize(1280, 820)
    return win


def wan_inputs() -> MappingInputs:
    """The real Wan transformer rules (long patterns), on a few keys."""
    from fastvideo.configs.models.dits.wan import WanVideoConfig

    return MappingInputs("transformer", {"blocks.0.attn2.to_k.weight": TensorInfo((8, 8), "F32")},
                         {"blocks.0.cross_attn.to_k.weight": TargetInfo((8, 8))},
                         list(WanVideoConfig().param_names_mapping.items()))


def columns_fit(view) -> bool:
    hh = view.horizontalHeader()
    right = max(hh.sectionViewportPosition(c) + hh.sectionSize(c) for c in range(hh.count()))
    return all(not hh.isSectionHidden(c) and hh.sectionSize(c) > 0 for c in range(hh.count())) \
        and right <= view.viewport().width() + 1


# ---------------------------------------------------------------------------------------------- 1. layout
def test_default_window_size_shows_every_column_and_whole_patterns(make_studio, make_window, qtbot):
    win = styled_window(make_studio, make_window, engine=None)
    win.show_panel("mapping")
    m = win.mapping
    m.set_inputs(wan_inputs())
    qtbot.wait(50)
    for view in (m.table, m.rules_view):
        assert columns_fit(view), f"a column of {view} is cut off or hidden"
        assert view.horizontalScrollBar().maximum() == 0
    # the pattern column holds the longest arch-config pattern without cutting it
    fm = m.rules_view.fontMetrics()
    longest = max((p for p, _v in m.rules_model.rules()), key=fm.horizontalAdvance)
    assert m.rules_view.columnWidth(RulesModel.PATTERN) >= fm.horizontalAdvance(longest) + 8, longest
    # the component combos show whole component names
    for panel in (win.mapping, win.parity):
        combo = panel.component_combo
        combo.clear()
        combo.addItems(["transformer", "text_encoder", "image_encoder"])
        qtbot.wait(10)
        for name in ("transformer", "image_encoder"):
            assert combo.width() >= combo.fontMetrics().horizontalAdvance(name) + 24, (panel, combo.width())


def test_multi_line_errors_keep_their_line_breaks(make_studio, qtbot, tmp_path):
    from PySide6.QtCore import Qt

    from app.panels.models import ModelsPanel
    from app.services.parity_store import ParityStore

    studio = make_studio(engine=None)
    message = "transformer: the checkpoint does not convert cleanly; 2 problem(s):\n  missing: a\n  unexpected: <b>"
    m = MappingPanel(studio)
    qtbot.addWidget(m)
    m._show_load_error("transformer", "/x/model", message)
    assert m.error_text.text() == message and m.error_text.textFormat() == Qt.TextFormat.PlainText
    assert not m.error_text.isHidden() and m.error_text.wordWrap()
    m.set_inputs(wan_inputs())
    assert m.error_text.isHidden()

    p = ParityPanel(studio)
    qtbot.addWidget(p)
    store = ParityStore(studio.db)
    run = store.get(store.add(model_path="/x/model", component="vae", reference="diffusers", dtype="fp32", seed=0,
                              error=message, rules_label="", duration=0.1, rules=None))
    p._show_result(run)
    assert "ERROR" in p.verdict.text()
    assert p.error_text.text() == message and p.error_text.textFormat() == Qt.TextFormat.PlainText
    assert not p.error_text.isHidden()

    mp = ModelsPanel(studio, models_root=tmp_path)
    qtbot.addWidget(mp)
    mp._conversion_failed(message)
    assert "Conversion failed" in mp.convert_label.text()
    assert mp.convert_error.text() == message and mp.convert_error.textFormat() == Qt.TextFormat.PlainText


def test_rules_chosen_for_one_model_are_cleared_for_another(make_studio, qtbot, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "model_index.json").write_text('{"_class_name": "WanPipeline", "transformer": ["diffusers", "X"]}')
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([[r"^x\.", "y."]]))
    p = ParityPanel(make_studio(engine=None))
    qtbot.addWidget(p)
    p.set_model(str(a), "transformer")
    p.load_rules_file(rules)
    assert p.rules_combo.currentData() == "custom" and p._rules_for_run()[0] == [(r"^x\.", "y.")]
    p.set_model(str(a))  # the same model: kept
    assert p.rules_combo.currentData() == "custom"
    p.set_model(str(b))
    assert p.custom_rules is None and p.rules_combo.currentData() == "default"
    assert p._rules_for_run() == (None, "")
    assert not p.rules_combo.model().item(p.rules_combo.findData("custom")).isEnabled()


# ---------------------------------------------------------------------------------------------- 2a. models folder
def test_models_folder_setting_rescans_and_reaches_the_engine(make_studio, make_window, tiny_model, tmp_path, qtbot):
    from app.services.settings import SettingsStore

    win = make_window(make_studio(engine=None))
    models = win.models
    root = tmp_path / "my-models"
    shutil.copytree(tiny_model, root / "converted_weights" / "tiny-t2v")
    assert models.models_root != root
    settings = win.settings
    assert settings.rows["models_dir"] is not None and settings.models_dir.placeholderText().startswith("default:")
    before = models.scan_count
    settings.models_dir.setText(str(root))
    assert settings.save()
    assert models.models_root == root and f"Models folder: {root}" == models.root_label.text()
    wait_until(qtbot, lambda: models.scan_count > before, 30, "rescan")
    assert [e.name for e in models.entries()] == ["tiny-t2v"]
    # the inference process (started later) and the converter get it as FASTVIDEO_MODELS_DIR
    assert win.studio.client.extra_env["FASTVIDEO_MODELS_DIR"] == str(root)
    assert models.engine_env() == {"FASTVIDEO_MODELS_DIR": str(root)}
    # persisted
    assert SettingsStore(win.studio.paths.settings_file, "").load().models_dir == str(root)
    # a file is not a folder
    (tmp_path / "file").write_text("x")
    settings.models_dir.setText(str(tmp_path / "file"))
    assert not settings.save() and "Not a folder" in settings.rows["models_dir"].error.text()
    # back to the default: the variable is taken out again
    settings.models_dir.setText("")
    assert settings.save()
    assert "FASTVIDEO_MODELS_DIR" not in win.studio.client.extra_env


# ---------------------------------------------------------------------------------------------- 2d. use in generate
def test_use_in_generate_from_the_models_panel(make_studio, make_window, tiny_model, tmp_path, qtbot):
    win = make_window(make_studio(engine=None))
    models = win.models
    root = tmp_path / "models"
    shutil.copytree(tiny_model, root / "converted_weights" / "tiny-t2v")
    models.set_models_root(root, scan=True)
    wait_until(qtbot, lambda: models.entries(), 30, "scan")
    win.show_panel("models")
    assert models.select_path(root / "converted_weights" / "tiny-t2v")
    assert models.generate_button.isEnabled()
    models.generate_button.click()
    assert win.current_panel() == "generate"
    assert win.generate.model_path() == str(root / "converted_weights" / "tiny-t2v")
    assert win.generate.model_combo.currentText() == "tiny-t2v"  # the name shows; the path is the tooltip


# ---------------------------------------------------------------------------------------------- 2e. flow shift
def test_convert_with_a_flow_shift(make_studio, tiny_official, tmp_path, qtbot):
    from app.panels.models import ModelsPanel

    panel = ModelsPanel(make_studio(engine=None), models_root=tmp_path / "models")
    qtbot.addWidget(panel)
    assert panel.convert_flow_shift.text() == "auto"  # fastvideo convert's model-dependent default
    assert panel.chosen_flow_shift() is None
    panel.convert_source_edit.setText(str(tiny_official))
    panel.convert_flow_shift.setValue(5.0)
    proc = panel.start_conversion()
    assert proc is not None and proc.args[-2:] == ["--flow-shift", "5.0"]
    assert proc.env == {"FASTVIDEO_MODELS_DIR": str(tmp_path / "models")}
    wait_until(qtbot, lambda: proc.state != "running", 180, "conversion")
    assert proc.state == "done", "\n".join(proc.lines[-20:])
    out = panel.conversion_output()
    assert json.loads((out / "scheduler" / "scheduler_config.json").read_text())["flow_shift"] == 5.0


def test_bad_flow_shift_is_not_offered(make_studio, tiny_official, tmp_path, qtbot):
    from app.panels.models import ModelsPanel

    panel = ModelsPanel(make_studio(engine=None), models_root=tmp_path)
    qtbot.addWidget(panel)
    panel.convert_flow_shift.setValue(-2)
    assert panel.convert_flow_shift.value() == 0 and panel.convert_flow_shift.text() == "auto"  # never below 0
    panel.convert_source_edit.setText(str(tiny_official))
    proc = panel.start_conversion()
    assert proc is not None and "--flow-shift" not in proc.args  # auto: the converter's default for the model
    wait_until(qtbot, lambda: proc.state != "running", 180, "conversion")
    assert proc.state == "done", "\n".join(proc.lines[-20:])
    scheduler = json.loads((panel.conversion_output() / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["flow_shift"] == 3.0  # a Wan2.1 T2V checkpoint: 3.0 (TI2V-5B would get 5.0)


# ---------------------------------------------------------------------------------------------- 2b. official preview
def test_inspector_previews_the_conversion_of_an_official_folder(make_studio, make_window, tiny_official, qtbot):
    from PySide6.QtCore import Qt

    win = make_window(make_studio("real"))
    m = win.mapping
    m.set_model(str(tiny_official))
    assert [m.component_combo.itemText(i) for i in range(m.component_combo.count())] == [
        "transformer", "vae", "text_encoder"]
    m.load(str(tiny_official), "transformer")
    wait_until(qtbot, lambda: m.inputs is not None or m.load_error, 120, "inspect reply")
    assert not m.load_error, m.load_error
    assert m.official and "Official layout" in m.state_label.text() and "fastvideo convert" in m.state_label.text()
    assert m.report.ok and m.counts()["mapped"] == len(m.inputs.source)
    # official names on the left, the Diffusers names the converter writes on the right
    assert "blocks.0.self_attn.q.weight" in m.inputs.source
    assert m.select_key("blocks.0.self_attn.q.weight")
    row = m._current_row()
    assert row.target == "blocks.0.attn1.to_q.weight" and row.status == "mapped"
    assert not m.parity_button.isEnabled()  # parity needs the converted folder
    # a broken conversion rule shows at once
    first = next(i for i, (p, _v) in enumerate(m.rules_model.rules()) if "self_attn" in p)
    m.rules_model.setData(m.rules_model.index(first, RulesModel.ENABLED), Qt.CheckState.Unchecked.value,
                          Qt.ItemDataRole.CheckStateRole)
    m.reevaluate()
    assert not m.report.ok and m.counts()["missing"] > 0
    # the VAE and T5 previews too
    for comp in ("vae", "text_encoder"):
        m.inputs = None
        m.load(str(tiny_official), comp)
        wait_until(qtbot, lambda: m.inputs is not None or m.load_error, 120, f"{comp} reply")
        assert not m.load_error and m.report.ok, (comp, m.load_error)


# ---------------------------------------------------------------------------------------------- 2c. all components
def test_parity_all_components_summary(make_studio, tiny_model, qtbot):
    pytest.importorskip("diffusers")
    p = ParityPanel(make_studio("real"))
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    p.set_model(str(tiny_model), "transformer")
    # the custom rules apply to the selected component only
    from fastvideo.configs.models.dits.wan import WanVideoConfig

    p.set_rules(SWAP + list(WanVideoConfig().param_names_mapping.items()), "swapped to_k/to_v")
    done = []
    p.all_finished.connect(done.append)
    comps = p.run_all()
    assert comps == ["transformer", "text_encoder", "vae", "scheduler"]  # the denoiser, then model_index order
    assert p.tabs.currentIndex() == p.SUMMARY_TAB and not p.run_all_button.isEnabled()
    assert p.summary_rows()[1][1] == "waiting"
    wait_until(qtbot, lambda: done, 600, "all components")
    rows = {r[0]: r for r in p.summary_rows()}
    assert list(rows) == comps
    assert rows["transformer"][1] == "FAIL" and rows["transformer"][3] == "blocks.0.cross_attn.to_k"
    for comp in ("vae", "text_encoder", "scheduler"):
        assert rows[comp][1] == "PASS", rows[comp]
    assert rows["transformer"][2] not in ("", "—")  # a max abs error
    runs = done[0]
    assert [r.component for r in runs] == comps and runs[0].rules_label == "swapped to_k/to_v"
    assert all(r.rules is None for r in runs[1:])  # the others ran with their arch config's rules
    assert p.run_all_button.isEnabled() and p.component_combo.currentText() == "transformer"
    # double-click a row: its run in the Result tab
    p._show_summary_row(p.summary_model.index(0, 0))
    assert p.tabs.currentIndex() == 0 and "FAIL" in p.verdict.text()

"""The Parity panel on the tiny model, through the real inference process: a passing run, a run with a
deliberately broken mapping (first divergent module highlighted), stored history, compare, export."""

from __future__ import annotations

import csv
import json

import pytest
from PySide6.QtCore import Qt
from studio_wait import wait_until

from app.itemmodels.parity_models import CompareModel, HistoryModel, ModulesModel
from app.panels.parity import ParityPanel
from app.services.jobs_db import JobsDB
from app.services.parity_store import ParityStore

pytest.importorskip("diffusers")


def broken_rules() -> dict:
    """Cross-attention to_k and to_v swapped (same shapes: it loads without complaint)."""
    from fastvideo.configs.models.dits.wan import WanVideoConfig

    rules = {r"^blocks\.(\d+)\.attn2\.to_k\.": r"blocks.\1.cross_attn.to_v.",
             r"^blocks\.(\d+)\.attn2\.to_v\.": r"blocks.\1.cross_attn.to_k."}
    rules.update(WanVideoConfig().param_names_mapping)
    return rules


def test_parity_pass_then_broken_mapping(make_studio, tiny_model, tmp_path, qtbot, qtmodeltester):
    studio = make_studio("real")
    panel = ParityPanel(studio)
    qtbot.addWidget(panel)
    panel.resize(1200, 800)
    panel.show()
    panel.set_models([str(tiny_model)])
    panel.set_model(str(tiny_model), "transformer")
    assert [panel.component_combo.itemText(i) for i in range(panel.component_combo.count())] == [
        "transformer", "text_encoder", "vae", "scheduler"]  # the denoiser, then model_index order
    assert not panel.rules_combo.model().item(1).isEnabled()  # no inspector rules yet
    stages = []
    studio.client.event.connect(lambda h: stages.append(h.get("name")) if h.get("request_id") else None)
    finished = []
    panel.run_finished.connect(finished.append)

    panel.run_button.click()
    assert not panel.run_button.isEnabled() and panel.running
    wait_until(qtbot, lambda: finished, 120, "first parity run")
    run = finished[0]
    assert run.error is None and run.passed, run.result
    assert stages[:2] == ["parity:load", "parity:run"] and stages[-1] == "parity:done"
    assert panel.progress.value() == 4 and panel.run_button.isEnabled()
    assert "PASS" in panel.verdict.text()
    assert panel.outputs_model.rowCount() == 1
    assert panel.outputs_model.index(0, 0).data() == "noise_pred"
    assert panel.outputs_model.index(0, 5).data() == "pass"
    assert panel.outputs_model.index(0, 4).data().startswith("atol 0.0001")
    assert not panel.modules_view.isVisibleTo(panel) and panel.modules_model.rowCount() == 0

    # the broken mapping (as handed over by the mapping inspector)
    panel.set_rules(broken_rules(), "swapped to_k/to_v")
    assert panel.rules_combo.currentData() == "custom" and panel.rules_combo.currentText() == "swapped to_k/to_v"
    panel.seed_spin.setValue(3)
    panel.run_button.click()
    wait_until(qtbot, lambda: len(finished) == 2, 120, "broken parity run")
    bad = finished[1]
    assert bad.error is None and bad.passed is False
    assert bad.first_divergent == "blocks.0.cross_attn.to_k"
    assert "parity:activation_summary" in stages
    assert "FAIL" in panel.verdict.text() and "blocks.0.cross_attn.to_k" in panel.verdict.text()
    assert panel.outputs_model.index(0, 5).data() == "FAIL"
    mm = panel.modules_model
    assert mm.rowCount() > 10 and panel.modules_view.isVisibleTo(panel)
    first = mm.first_row
    assert mm.index(first, 1).data() == "blocks.0.cross_attn.to_k"
    assert mm.index(first, 2).data() == "blocks.0.attn2.to_k"
    assert mm.index(first, 5).data() == "FIRST DIVERGENCE"
    assert all(mm.index(r, 5).data() == "pass" for r in range(first))
    assert mm.index(first, 0).data(Qt.ItemDataRole.BackgroundRole).color().name() == "#6b2a31"  # highlighted
    assert mm.index(first, 1).data(Qt.ItemDataRole.FontRole).bold()
    qtbot.wait(50)
    rect = panel.modules_view.visualRect(mm.index(first, 1))
    assert panel.modules_view.viewport().rect().contains(rect.center())  # scrolled into view
    assert panel.chart.first == first and len(panel.chart.entries) == mm.rowCount()
    img = panel.chart.grab()
    assert img.width() > 100 and img.height() >= 100

    # history: stored with model, component, versions, time; survives a reopen of the database
    assert panel.history_model.rowCount() == 2
    stored = ParityStore(JobsDB(studio.paths.jobs_db)).runs()
    assert [r.verdict for r in stored] == ["fail", "pass"]
    assert stored[0].model_path == str(tiny_model) and stored[0].component == "transformer"
    assert stored[0].rules_label == "swapped to_k/to_v" and stored[0].seed == 3
    assert {"fastvideo", "torch", "diffusers"} <= set(stored[0].versions) and stored[0].created_at > 0
    panel.select_runs([r.id for r in stored])
    rows = panel.compare_selected()
    assert [r["name"] for r in rows] == ["noise_pred"]
    assert rows[0]["a_passed"] is True and rows[0]["b_passed"] is False  # A is the older run
    assert panel.compare_model.index(0, 5).data().startswith("worse")
    csv_path = panel.export_history(tmp_path / "runs.csv", "csv")
    lines = list(csv.DictReader(csv_path.open()))
    assert [(r["verdict"], r["output"], r["output_passed"]) for r in lines] == [
        ("pass", "noise_pred", "pass"), ("fail", "noise_pred", "fail")]
    assert lines[1]["first_divergent"] == "blocks.0.cross_attn.to_k" and lines[1]["torch"]
    js = json.loads(panel.export_history(tmp_path / "runs.json", "json").read_text())
    assert [r["passed"] for r in js["parity_runs"]] == [True, False]
    assert js["parity_runs"][1]["result"]["modules"]
    # show an older run again, then delete one
    panel.select_runs([stored[1].id])
    panel.show_button.click()
    assert "PASS" in panel.verdict.text()
    panel.delete_button.click()
    assert panel.history_model.rowCount() == 1

    for m in (panel.outputs_model, mm, panel.history_model, panel.history_proxy, panel.compare_model):
        qtmodeltester.check(m)
    assert isinstance(mm, ModulesModel) and isinstance(panel.history_model, HistoryModel)
    assert isinstance(panel.compare_model, CompareModel)


def test_parity_error_is_stored_and_shown(make_studio, tmp_path, qtbot):
    studio = make_studio("fake")  # the test engine has no diffusers-backed parity: a clean error
    panel = ParityPanel(studio)
    qtbot.addWidget(panel)
    model = tmp_path / "m"
    model.mkdir()
    (model / "model_index.json").write_text('{"_class_name": "WanPipeline", "transformer": ["diffusers", "X"]}')
    panel.set_model(str(model), "transformer")
    done = []
    panel.run_finished.connect(done.append)
    panel.run()
    wait_until(qtbot, lambda: done, 60, "error reply")
    assert done[0].verdict == "error" and done[0].error
    assert "ERROR" in panel.verdict.text() and "could not run" in panel.stage_label.text()
    assert panel.history_model.index(0, 6).data() == "error"


def test_parity_runs_table_is_added_to_a_v1_database(tmp_path):
    import sqlite3

    path = tmp_path / "jobs.sqlite3"
    db = JobsDB(path)
    job = db.add(prompt="kept", model_path="m", params={})
    db.close()
    conn = sqlite3.connect(path)  # make it a schema-1 database, as an older studio left it
    conn.execute("DROP TABLE parity_runs")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    db = JobsDB(path)
    assert db.get(job).prompt == "kept"
    store = ParityStore(db)
    run_id = store.add(model_path="m", component="vae", reference="diffusers", dtype="bf16", seed=1,
                       result={"passed": True, "dtype": "bf16", "versions": {"torch": "x"},
                               "outputs": [{"name": "decode", "rel_l2": 1e-3, "max_abs": 0.1, "passed": True}]})
    run = store.get(run_id)
    assert (run.verdict, run.dtype, run.versions, run.worst_rel_l2) == ("pass", "bf16", {"torch": "x"}, 1e-3)
    db.close()

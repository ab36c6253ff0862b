"""The studio's second round of fixes (issue 24): devices, menus and shortcuts, About, open-file fallback,
model names, form labels, Copy seed of a cancelled job, mapping details and columns."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication
from studio_wait import wait_until

from app.panels.generate_form import GenerateForm, in_form_words, model_labels
from app.services.runner import model_info

GIB = 2**30


# ------------------------------------------------------------------------------------------------ devices
def test_model_info_keeps_what_the_inference_process_says_about_devices():
    h = {"type": "described", "reply_to": "r1", "model_path": "/m", "defaults": {"width": 64}, "tasks": ["t2v"],
         "gpu_count": 2, "devices": [{"index": 0, "name": "H100", "memory": 80 * GIB}], "cpu": {"cores": 8},
         "geometry": {"temporal_compression": 4}}
    info = model_info(h)
    assert info["gpu_count"] == 2 and info["devices"][0]["name"] == "H100" and info["cpu"] == {"cores": 8}
    assert info["geometry"] == {"temporal_compression": 4}  # what a newer engine adds passes through
    assert "reply_to" not in info and "type" not in info and "model_path" not in info
    assert model_info({"type": "ready"}) == {"defaults": {}, "tasks": [], "gpu_count": None, "devices": None,
                                             "cpu": None}


def test_devices_in_words():
    hint = GenerateForm.gpus_hint
    assert hint(None) == "" and hint({"gpu_count": None}) == ""
    assert hint({"gpu_count": 0, "cpu": {"cores": 16, "memory": 125 * GIB}}) == \
        "CPU only (16 cores, 125.0 GiB): no GPU visible"
    one = {"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory": int(79.1 * GIB)}
    assert hint({"gpu_count": 1, "devices": [one]}) == "GPU 0: NVIDIA H100 80GB HBM3, 79.1 GiB"
    assert hint({"gpu_count": 2, "devices": [one, {**one, "index": 1}]}) == \
        "2 × NVIDIA H100 80GB HBM3 (79.1 GiB each)"
    mixed = {"gpu_count": 2, "devices": [one, {"index": 1, "name": "RTX 4090", "memory": 24 * GIB}]}
    assert hint(mixed) == "2 GPUs: 0: NVIDIA H100 80GB HBM3, 79.1 GiB; 1: RTX 4090, 24.0 GiB"
    assert hint({"gpu_count": 3, "devices": None}) == "3 GPUs visible"  # names unknown: no made-up ones
    tip = GenerateForm.devices_tooltip(mixed)
    assert "GPU 0: NVIDIA H100 80GB HBM3, 79.1 GiB" in tip and "GPU 1: RTX 4090, 24.0 GiB" in tip


def test_cpu_only_inference_process_shows_cpu_and_refuses_more_than_one_gpu(make_studio, make_window, fake_model,
                                                                           qtbot):
    """The real path: the inference process (fake engine, no GPU) describes the model; its gpu_count reaches the
    panel (it used to be dropped), the row says CPU, and GPUs=4 is refused at the row instead of queued."""
    studio = make_studio(engine="fake", env={"FAKE_ENGINE_GPUS": "0"})
    studio.db.paused = True
    win = make_window(studio)
    g = win.generate
    g.set_model(str(fake_model))
    wait_until(qtbot, lambda: str(fake_model) in g.model_info, 60, "the model's description")
    info = g.model_info[str(fake_model)]
    assert info["gpu_count"] == 0 and info["devices"] == [] and info["cpu"]["cores"] >= 1
    assert g.gpus_hint.text().startswith("CPU only (") and "no GPU visible" in g.gpus_hint.text()
    g.prompt.setPlainText("a red circle")
    g.gpus.setValue(4)
    assert g.generate() is None
    assert "No GPU is visible to the inference process" in g.field_error("num_gpus")
    assert studio.db.counts()["queued"] == 0
    g.gpus.setValue(1)
    assert g.generate() is not None


def test_gpus_of_the_inference_process_are_listed_with_their_memory(make_studio, make_window, fake_model, qtbot):
    studio = make_studio(engine="fake", env={"FAKE_ENGINE_GPUS": "2"})
    studio.db.paused = True
    win = make_window(studio)
    g = win.generate
    g.set_model(str(fake_model))
    wait_until(qtbot, lambda: str(fake_model) in g.model_info, 60, "the model's description")
    assert g.gpus_hint.text() == "2 × Fake GPU (24.0 GiB each)"
    assert "GPU 1: Fake GPU, 24.0 GiB" in g.gpus.toolTip()
    g.prompt.setPlainText("x")
    g.gpus.setValue(3)
    assert g.generate() is None and "Only 2 GPUs are visible" in g.field_error("num_gpus")


# ------------------------------------------------------------------------------------------------ menus
def test_menu_bar_and_shortcuts(make_studio, make_window, fake_model, qtbot, monkeypatch):
    studio = make_studio(engine=None)
    studio.db.paused = True
    win = make_window(studio)
    titles = [a.text().replace("&", "") for a in win.menuBar().actions()]
    assert titles == ["File", "Edit", "View", "Help"]
    acts = win.actions_by_name
    assert acts["Quit"].shortcut().toString() == "Ctrl+Q"
    assert [k.toString() for k in acts["Generate"].shortcuts()] == ["Ctrl+Return", "Ctrl+Enter"]
    assert acts["Cancel running job"].shortcut().toString() == "Esc"
    view = [a.text() for a in win.view_menu.actions()]
    assert view[:3] == ["Generate", "Queue", "History"] and len(view) == len(win.panels)
    assert win.view_menu.actions()[2].shortcut().toString() == "Ctrl+3"
    # Ctrl+Enter queues from another panel and brings Generate forward.
    g = win.generate
    g.set_model(str(fake_model))
    g.prompt.setPlainText("a red circle")
    win.show_panel("history")
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win)  # window shortcuts need the active window
    qtbot.keyClick(win.history, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert studio.db.counts()["queued"] == 1 and win.current_panel() == "generate"
    # Esc does nothing (and is not taken) while no job runs; with one running it cancels it.
    assert not acts["Cancel running job"].isEnabled()
    cancelled = []
    monkeypatch.setattr(studio.runner, "cancel", lambda job_id: cancelled.append(job_id))
    studio.runner.current = 42
    win._update_actions()
    assert acts["Cancel running job"].isEnabled()
    qtbot.keyClick(win.history, Qt.Key.Key_Escape)
    assert cancelled == [42]
    studio.runner.current = None
    # Ctrl+Q closes the window (the studio shuts down).
    qtbot.keyClick(g, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert win._closed


def test_about_dialog_names_versions_and_paths(make_studio, make_window):
    studio = make_studio(engine=None)
    win = make_window(studio)
    win.actions_by_name["About FastVideo Studio"].trigger()
    dlg = win.about_dialog
    assert dlg is not None and dlg.isVisible()
    text = dlg.facts.text()
    import app
    import fastvideo

    for needle in (app.__version__, fastvideo.__version__, str(studio.paths.data_dir), str(studio.paths.settings_file),
                   studio.settings.output_dir, "Qt", "Python", "Inference process"):
        assert needle in text, needle
    dlg.copy_button.click()
    copied = QGuiApplication.clipboard().text()
    assert f"Settings: {studio.paths.settings_file}" in copied and f"Outputs: {studio.settings.output_dir}" in copied
    dlg.close()


# ------------------------------------------------------------------------------------------------ open file
def _done_job(studio, path, seed=5, state="done"):
    job_id = studio.db.add(prompt="p", model_path="/m", params={"seed": seed, "width": 64, "height": 64})
    studio.db.start(job_id)
    if state == "done":
        studio.db.finish_done(job_id, {"video_path": str(path), "seed": seed, "generation_time": 1.0})
    else:
        studio.db.finish_cancelled(job_id, "Cancelled at step 2.")
    return job_id


def test_open_file_without_a_desktop_launcher_copies_the_path_and_says_why(make_studio, make_window, tmp_path,
                                                                          monkeypatch):
    from app.widgets import open_path

    video = tmp_path / "out" / "clip.mp4"
    video.parent.mkdir()
    video.write_bytes(b"not really a video")
    studio = make_studio(engine=None)
    job_id = _done_job(studio, video)
    win = make_window(studio)
    monkeypatch.setattr(open_path, "_open_url", lambda url: False)  # what Qt answers without xdg-open
    monkeypatch.setattr(open_path.shutil, "which", lambda name: None)
    win.generate.show_job(job_id)
    assert win.generate.open_file() is False
    assert QGuiApplication.clipboard().text() == str(video)
    banner = win.banner.text()
    assert "Could not open the file" in banner and "xdg-open" in banner and str(video) in banner
    assert win.history.select_job(job_id)
    win.history.open_folder_button.click()
    assert QGuiApplication.clipboard().text() == str(video.parent)
    assert "Could not open the folder" in win.banner.text() and str(video.parent) in win.banner.text()
    opened = []
    monkeypatch.setattr(open_path, "_open_url", lambda url: opened.append(url.toLocalFile()) or True)
    win.banner.hide()
    assert win.generate.open_file() is True and opened == [str(video)] and win.banner.text() == ""
    video.unlink()
    assert win.generate.open_file() is False and "does not exist" in win.banner.text()


# ------------------------------------------------------------------------------------------------ model names
def test_model_field_shows_the_name_and_keeps_the_path(make_studio, make_window, fake_model, tmp_path):
    from app.panels.generate_form import builtin_model

    studio = make_studio(engine=None)
    win = make_window(studio)
    g = win.generate
    g.set_model(str(fake_model))
    assert g.model_combo.currentText() == "fake-model"
    assert g.model_path() == str(fake_model) and g.model_combo.toolTip() == str(fake_model)
    g.model_combo.setEditText(str(tmp_path))  # a typed path stays a path
    assert g.model_path() == str(tmp_path)
    assert model_labels(["/a/x/m", "/b/y/m", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"], builtin="") == \
        ["m (x)", "m (y)", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"]
    builtin = builtin_model()
    if builtin:
        assert model_labels([builtin])[0].endswith("(built-in)")
        # Settings: an empty Default model says which model is used instead.
        studio.settings.recent_models = []
        win.settings.load()
        placeholder = win.settings.default_model.lineEdit().placeholderText()
        assert "built-in model" in placeholder and builtin.rsplit("/", 1)[-1] in placeholder
        assert win.settings.default_model.toolTip() == builtin


# ------------------------------------------------------------------------------------------------ form words
def test_messages_use_the_form_labels(make_studio, make_window):
    assert in_form_words("num_frames must be 4n+1; 80 is not: use 77 or 81") == \
        "Frames must be 4n+1; 80 is not: use 77 or 81"
    assert in_form_words("guidance_scale must be >= 0") == "Guidance must be >= 0"
    assert in_form_words("too large: num_frames x height x width") == "too large: frames x height x width"
    assert in_form_words("the prompt is empty") == "the prompt is empty"
    studio = make_studio(engine=None)
    win = make_window(studio)
    g = win.generate
    g.show_field_error("num_frames", "num_frames must be 4n+1 (the VAE packs 4 frames per latent)")
    label = g.form.labelForField(g.rows["num_frames"]).text()
    assert label == "Frames" and g.field_error("num_frames").startswith("Frames must be 4n+1")
    assert "num_frames" not in g.field_error("num_frames").lower().replace("frames must", "")


def test_copy_seed_of_a_cancelled_job(make_studio, make_window, tmp_path):
    studio = make_studio(engine=None)
    job_id = _done_job(studio, tmp_path / "x.mp4", seed=1234, state="cancelled")
    win = make_window(studio)
    win.generate.show_job(job_id)
    assert win.generate.copy_seed_button.isEnabled()
    win.generate.copy_seed_button.click()
    assert QGuiApplication.clipboard().text() == "1234"
    assert "seed 1234" in win.generate.result_info.text()
    assert win.history.select_job(job_id) and win.history.copy_seed_button.isEnabled()


# ------------------------------------------------------------------------------------------------ mapping
def test_fused_parts_are_counted_from_one_like_the_engine():
    from app.panels.mapping import fused_part_text

    assert fused_part_text(("blocks.0.attn.qkv.weight", 1, 3)) == "blocks.0.attn.qkv.weight [part 2 of 3, index 1]"
    assert fused_part_text(("t", 0, 2)).endswith("[part 1 of 2, index 0]")


@pytest.mark.parametrize("sortable", [False, True])
def test_table_columns_fit_their_headers(qtbot, sortable):
    from PySide6.QtGui import QStandardItemModel
    from PySide6.QtWidgets import QTableView

    from app.panels.common import fit_columns

    model = QStandardItemModel(3, 4)
    model.setHorizontalHeaderLabels(["Source key", "Source shape", "Target shape", "dtype"])
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.setSortingEnabled(sortable)
    fit_columns(view, stretch=(0,), samples={1: "[5120, 5120]"})
    hh = view.horizontalHeader()
    for col in (1, 2, 3):  # a header never needs more room than its section has (no clipped titles)
        assert hh.sectionSize(col) >= hh.sectionSizeHint(col), (col, hh.sectionSize(col), hh.sectionSizeHint(col))


def test_parity_label_says_unedited_rules(make_studio, make_window):
    from app.itemmodels.mapping_models import MappingInputs

    studio = make_studio(engine=None)
    win = make_window(studio)
    m = win.mapping
    rules = [(r"^a\.(.*)$", r"b.\1"), (r"^c$", ("d", 0, 2))]
    m.inputs = MappingInputs(source={}, target={}, default_rules=rules, component="transformer")
    assert m.parity_rules_label(list(rules)) == "arch config rules (2, unedited)"
    assert m.parity_rules_label(rules[:1]) == "edited rules (1)"


def test_component_box_shows_transformer_whole(make_studio, make_window):
    studio = make_studio(engine=None)
    win = make_window(studio)
    for panel in (win.parity, win.mapping):
        combo = panel.component_combo
        combo.addItems(["transformer", "text_encoder"])
        win.show_panel("parity" if panel is win.parity else "mapping")
        QGuiApplication.processEvents()
        needed = combo.fontMetrics().horizontalAdvance("text_encoder")
        assert combo.width() >= needed + 30, (combo.width(), needed)


# ------------------------------------------------------------------------------------------------ parity reference
FAKE_PY = """#!/bin/sh
if [ "$1" = "-m" ]; then
  echo "$@" > "$(dirname "$0")/pip-args.txt"
  echo "Collecting diffusers==0.42.1"
  echo "  Downloading diffusers-0.42.1-py3-none-any.whl (4.0 MB)"
  echo "Installing collected packages: diffusers"
  [ "${FAKE_PIP_EXIT:-0}" = 0 ] || { echo "ERROR: No matching distribution found for diffusers==0.42.1"; exit 1; }
  echo "Successfully installed diffusers-0.42.1"
  exit 0
fi
echo "REFERENCE 0.42.1"
"""


def _fake_python(tmp_path):
    py = tmp_path / "fakepy" / "python"
    py.parent.mkdir()
    py.write_text(FAKE_PY)
    py.chmod(0o755)
    return py


def test_the_reference_requirement_is_the_pinned_test_one():
    from pathlib import Path

    import tomllib

    from app.services.references import REFERENCE_REQUIREMENTS, pip_stage

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert REFERENCE_REQUIREMENTS["diffusers"] in project["project"]["optional-dependencies"]["test"]
    assert pip_stage("Collecting diffusers==0.42.1") == 1 and pip_stage("Successfully installed x-1") == 4
    assert pip_stage("Requirement already satisfied: torch") is None


def test_the_inference_process_says_which_references_it_has(make_studio, make_window, qtbot):
    import importlib.metadata

    studio = make_studio(engine="fake")
    win = make_window(studio)
    win.show_panel("parity")  # showing the panel starts the inference process: its hello says what is there
    refs = studio.references
    wait_until(qtbot, lambda: "diffusers" in refs.versions, 60, "the hello's references")
    assert refs.versions["diffusers"] == importlib.metadata.version("diffusers")  # this venv has the test extra
    assert refs.status("diffusers")[0] is True
    assert win.parity.reference_box.isHidden() and win.parity.reference_ready()[0]


def test_missing_reference_disables_parity_and_installs_it_with_progress(make_studio, make_window, qtbot, tmp_path,
                                                                        tiny_model):
    studio = make_studio(engine=None)
    win = make_window(studio)
    p = win.parity
    p.set_model(str(tiny_model), "transformer")
    win.show_panel("parity")
    refs = studio.references
    refs.versions["diffusers"] = None  # what the hello of an inference runtime without diffusers says
    refs.changed.emit()
    assert not p.run_button.isEnabled() and not p.run_all_button.isEnabled()
    assert "not installed in the inference runtime" in p.run_button.toolTip()
    assert "not installed" in p.reference_note.text() and p.reference_box.isVisibleTo(p)
    assert p.install_button.isVisibleTo(p) and p.install_button.text() == "Install diffusers 0.42.1"
    assert p.run() is None and "not installed" in p.stage_label.text()  # nothing is sent
    studio.client.python = str(_fake_python(tmp_path))
    steps = []
    refs.install_progress.connect(lambda step, total, text: steps.append((step, total)))
    with qtbot.waitSignal(refs.install_finished, timeout=30000) as done:
        p.install_button.click()
        assert not p.install_button.isEnabled()  # one install at a time
    assert done.args[0] is True, done.args
    total = refs.total_steps()
    assert [s for s, _ in steps] == sorted(s for s, _ in steps) and steps[-1] == (total, total)
    assert {1, 2, 3, 4} <= {s for s, _ in steps}  # pip's own stages moved the bar, not a timer
    args = (tmp_path / "fakepy" / "pip-args.txt").read_text()
    assert args.startswith("-m pip install") and args.strip().endswith("diffusers==0.42.1")
    assert refs.versions["diffusers"] == "0.42.1"
    assert p.run_button.isEnabled() and not p.install_button.isVisibleTo(p)
    assert p.install_progress.value() == total and "0.42.1 is installed" in p.install_log.text()


def test_failed_install_leaves_no_full_bar_and_says_why(make_studio, make_window, qtbot, tmp_path, tiny_model,
                                                       monkeypatch):
    monkeypatch.setenv("FAKE_PIP_EXIT", "1")
    studio = make_studio(engine=None)
    win = make_window(studio)
    p = win.parity
    p.set_model(str(tiny_model), "transformer")
    win.show_panel("parity")
    studio.references.versions["diffusers"] = None
    studio.client.python = str(_fake_python(tmp_path))
    with qtbot.waitSignal(studio.references.install_finished, timeout=30000) as done:
        assert p.install_reference()
    assert done.args[0] is False and "pip could not install diffusers==0.42.1 (exit code 1)" in done.args[1]
    assert "No matching distribution" in p.install_log.text()
    assert p.install_progress.value() == 0 and p.install_progress.isHidden()
    assert not p.run_button.isEnabled() and p.install_button.isEnabled()  # it can be tried again
    studio.client.python = str(tmp_path / "nowhere" / "python")
    assert not studio.references.install("diffusers")
    assert "not on this machine" in studio.references.can_install()[1]


def test_a_parity_error_never_shows_a_full_progress_bar(make_studio, make_window, tiny_model):
    studio = make_studio(engine=None)
    win = make_window(studio)
    p = win.parity
    studio.references.versions["diffusers"] = "0.42.1"
    p.set_model(str(tiny_model), "transformer")
    p._run_spec = {"model_path": str(tiny_model), "component": "transformer", "reference": "diffusers",
                   "dtype": "fp32", "seed": 0}
    p.running = True
    p.progress.setValue(2)
    p._on_reply({"type": "error", "message": "the Diffusers reference needs the diffusers package (a porting/test "
                                            "dependency of fastvideo): pip install diffusers"})
    assert p.progress.value() == 0 and "could not run" in p.stage_label.text()
    assert studio.references.versions["diffusers"] is None and not p.run_button.isEnabled()
    assert p.install_button.isVisibleTo(p)


def test_porter_model_choosers_show_names_and_keep_the_chosen_path(qtbot, tmp_path):
    from app.widgets.model_combo import ModelPathCombo

    a, b = tmp_path / "x" / "tiny", tmp_path / "y" / "tiny"
    combo = ModelPathCombo()
    qtbot.addWidget(combo)
    combo.set_models([str(a), str(b)])
    combo.select_path(str(b))  # two folders of one name: the chosen one counts, not the first
    assert combo.currentText() == "tiny" and combo.model_path() == str(b) and combo.toolTip() == str(b)
    combo.select_path(str(tmp_path / "elsewhere"))
    assert combo.model_path() == str(tmp_path / "elsewhere")

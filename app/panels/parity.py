"""The Parity panel: our component vs the reference implementation, run in the inference process.

A run sends ``run_parity`` (with ``progress``) to the inference process, shows its stages,
then the per-output table and, for a failure, the per-module activation table with the first
divergent module highlighted and the error by layer.  Every run is stored (``parity_runs``)
and the history can be compared and exported.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.itemmodels.mapping_models import parse_rules_text, rules_json, rules_list
from app.itemmodels.parity_models import (
    ModulesModel,
    OutputsModel,
)
from app.panels.common import ModelChooserMixin, component_combo, data_table, error_label, esc
from app.panels.parity_history import ParityHistoryMixin
from app.services.catalogue import describe_local, weight_components
from app.services.parity_store import ParityRun, ParityStore
from app.services.references import REFERENCE_REQUIREMENTS
from app.widgets.error_chart import ErrorByLayerChart
from app.widgets.model_combo import ModelPathCombo


def refs_requirement(name: str) -> str:
    """"diffusers 0.42.1": the requirement the Install button names."""
    return REFERENCE_REQUIREMENTS.get(name, name).replace("==", " ")


REFERENCES = ("diffusers",)
DTYPES = ("fp32", "bf16")
STAGES = {"load": (1, "Loading ours and the reference…"), "run": (2, "Running…"),
          "activation_summary": (3, "An output differs: comparing every module's activations…"),
          "done": (4, "Done")}


class ParityPanel(ParityHistoryMixin, ModelChooserMixin, QWidget):
    notify = Signal(str, str)
    #: emitted when a run finishes (its stored ParityRun)
    run_finished = Signal(object)
    #: emitted when "Parity: all components" is done (the list of its ParityRuns, in component order)
    all_finished = Signal(list)

    def __init__(self, studio, parent: QWidget | None = None):
        super().__init__(parent)
        self.studio = studio
        self.store = ParityStore(studio.db)
        #: rules from the inspector or a file: an ordered list of (pattern, value) pairs (first match wins)
        self.custom_rules: list[tuple[str, Any]] | None = None
        self.custom_label = ""
        #: the model folder the custom rules were chosen for: another model clears them
        self.custom_model = ""
        self.running = False
        self._rid: str | None = None
        self._started = 0.0
        self._run_spec: dict[str, Any] = {}
        self.current_run: ParityRun | None = None
        #: "Parity: all components": the components still to run, and the one custom rules apply to
        self._all_queue: list[str] = []
        self._all_rules_component = ""
        self.all_running = False

        title = QLabel("Parity")
        title.setObjectName("panelTitle")
        self.model_combo = ModelPathCombo(320)
        self.browse_button = QPushButton("Browse…")
        self.component_combo = component_combo()
        self.reference_combo = QComboBox()
        self.reference_combo.addItems(REFERENCES)
        self.dtype_combo = QComboBox()
        self.dtype_combo.addItems(DTYPES)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.rules_combo = QComboBox()
        self.rules_combo.addItem("arch config (default)", "default")
        self.rules_combo.addItem("from the mapping inspector", "custom")
        self.rules_combo.addItem("from a file…", "file")
        self.rules_file = ""
        self.run_button = QPushButton("Run parity")
        self.run_button.setObjectName("primaryButton")
        self.run_all_button = QPushButton("Parity: all components")
        self.run_all_button.setToolTip("Run every component of the model in turn (each through the same parity "
                                       "request) and show one summary row per component")
        self.progress = QProgressBar()
        self.progress.setRange(0, 4)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(6)
        self.stage_label = QLabel("Runs in the inference process: both implementations load the same weights "
                                  "and get the same seeded inputs.")
        self.stage_label.setObjectName("dimLabel")
        self.stage_label.setWordWrap(True)
        # The reference package (diffusers) may be missing from the inference runtime: say so, offer to install.
        self.reference_note = QLabel()
        self.reference_note.setObjectName("fieldNote")
        self.reference_note.setWordWrap(True)
        self.reference_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.install_button = QPushButton("Install")
        self.install_button.setToolTip("pip install the reference into the inference process's environment")
        self.install_progress = QProgressBar()
        self.install_progress.setTextVisible(False)
        self.install_progress.setMaximumHeight(6)
        self.install_log = QLabel()
        self.install_log.setObjectName("dimLabel")
        self.install_log.setWordWrap(True)
        self.reference_box = QWidget()
        rbl = QVBoxLayout(self.reference_box)
        rbl.setContentsMargins(0, 0, 0, 0)
        nrow = QHBoxLayout()
        nrow.addWidget(self.reference_note, 1)
        nrow.addWidget(self.install_button)
        rbl.addLayout(nrow)
        rbl.addWidget(self.install_progress)
        rbl.addWidget(self.install_log)
        self.install_progress.hide()
        self.install_log.hide()

        form = QFormLayout()
        mrow = QHBoxLayout()
        mrow.addWidget(self.model_combo, 1)
        mrow.addWidget(self.browse_button)
        form.addRow("Model", mrow)
        orow = QHBoxLayout()
        orow.addWidget(self.component_combo)
        for label, w in (("Reference", self.reference_combo), ("dtype", self.dtype_combo), ("Seed", self.seed_spin)):
            orow.addWidget(QLabel(label))
            orow.addWidget(w)
        orow.addStretch(1)
        form.addRow("Component", orow)
        rrow = QHBoxLayout()
        rrow.addWidget(self.rules_combo, 1)
        rrow.addWidget(self.run_button)
        rrow.addWidget(self.run_all_button)
        form.addRow("Mapping rules", rrow)

        # ---- result tab
        self.verdict = QLabel("No run yet.")
        self.verdict.setObjectName("sectionTitle")
        self.verdict.setWordWrap(True)
        self.verdict.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        #: an error run's message, as plain text with its line breaks
        self.error_text = error_label()
        self.outputs_model = OutputsModel(self)
        self.outputs_view = data_table(self.outputs_model)
        self.outputs_view.setMaximumHeight(100)
        for c, w in enumerate((150, 100, 100, 100, 200)):
            self.outputs_view.setColumnWidth(c, w)
        self.modules_model = ModulesModel(self)
        self.modules_view = data_table(self.modules_model)
        for c, w in enumerate((36, 280, 280, 90, 90)):
            self.modules_view.setColumnWidth(c, w)
        self.chart = ErrorByLayerChart()
        self.modules_label = QLabel("Per-module activations (ours ↔ reference, execution order)")
        self.modules_label.setObjectName("sectionTitle")
        result = QWidget()
        rl = QVBoxLayout(result)
        rl.addWidget(self.verdict)
        rl.addWidget(self.error_text)
        rl.addWidget(self.outputs_view)
        rl.addWidget(self.modules_label)
        msplit = QSplitter(Qt.Orientation.Vertical)
        msplit.addWidget(self.modules_view)
        msplit.addWidget(self.chart)
        msplit.setSizes([260, 150])
        msplit.setChildrenCollapsible(False)
        rl.addWidget(msplit, 1)
        self.chart.bar_clicked.connect(self._select_module)

        history = self._build_history_tab()
        summary = self._build_summary_tab()

        self.tabs = QTabWidget()
        self.tabs.addTab(result, "Result")
        self.tabs.addTab(history, "History")
        self.tabs.addTab(summary, "All components")
        self.SUMMARY_TAB = 2

        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 16, 16, 16)
        lay.addWidget(title)
        lay.addLayout(form)
        lay.addWidget(self.reference_box)
        lay.addWidget(self.progress)
        lay.addWidget(self.stage_label)
        lay.addWidget(self.tabs, 1)

        self.model_combo.currentTextChanged.connect(lambda _t: self._model_changed())
        self.browse_button.clicked.connect(self._browse)
        self.rules_combo.activated.connect(self._rules_choice)
        self.run_button.clicked.connect(lambda: self.run())
        self.run_all_button.clicked.connect(lambda: self.run_all())
        studio.runner.request_stage.connect(self._on_stage)
        refs = studio.references
        refs.changed.connect(self._update_reference)
        refs.install_progress.connect(self._install_progress)
        refs.install_output.connect(lambda line: self.install_log.setText(line[:200]))
        refs.install_finished.connect(self._install_finished)
        self.reference_combo.currentIndexChanged.connect(lambda _i: self._update_reference())
        self.install_button.clicked.connect(self.install_reference)
        self._show_result(None)
        self.refresh_history()
        self._update_rules_item()
        self._update_reference()

    # ================================================================== choosing
    def _model_changed(self) -> None:
        if self.custom_rules is not None and self.current_model_path() != self.custom_model:
            # rules (from a file or the inspector) belong to the model they were chosen for
            self.set_rules(None)
        # Every component with weights (the registry's list: a new family's components come with it) and the
        # scheduler; the engine's parity runner checks the component against the family's parity cases.
        path = self.current_model_path()
        listed = describe_local(path)["components"] if path else []
        self._set_components((weight_components(path) if path else []) + (["scheduler"] if "scheduler" in listed
                                                                          else []))

    def set_rules(self, rules: list[tuple[str, Any]] | dict[str, Any] | None, label: str = "custom rules") -> None:
        """Rules to load *ours* with, in order (None: the arch config's); selects them for the next run."""
        self.custom_rules = rules_list(rules) if rules is not None else None
        self.custom_label = label if rules is not None else ""
        self.custom_model = self.current_model_path() if rules is not None else ""
        self._update_rules_item()
        self.rules_combo.setCurrentIndex(self.rules_combo.findData("custom" if rules is not None else "default"))

    def _update_rules_item(self) -> None:
        i = self.rules_combo.findData("custom")
        self.rules_combo.setItemText(i, self.custom_label or "from the mapping inspector")
        item = self.rules_combo.model().item(i)
        if item is not None:
            item.setEnabled(self.custom_rules is not None)

    def _rules_choice(self, i: int) -> None:
        if self.rules_combo.itemData(i) != "file":
            return
        path, _ = QFileDialog.getOpenFileName(self, "Rules file", "", "Rules (*.json *.py *.txt);;All files (*)")
        if path:
            self.load_rules_file(path)
        else:
            self.rules_combo.setCurrentIndex(self.rules_combo.findData("default"))

    def load_rules_file(self, path: str | os.PathLike) -> None:
        try:
            rules = parse_rules_text(Path(path).read_text())
        except (OSError, ValueError, SyntaxError) as exc:
            self.notify.emit(f"Could not read rules from {path}: {exc}", "error")
            return
        self.set_rules(rules, f"file {Path(path).name}")

    def _rules_for_run(self) -> tuple[list[tuple[str, Any]] | None, str]:
        if self.all_running and self.component_combo.currentText() != self._all_rules_component:
            return None, ""  # custom rules belong to one component: the others run with their arch config's
        if self.rules_combo.currentData() == "custom" and self.custom_rules is not None:
            return self.custom_rules, self.custom_label
        return None, ""

    # ================================================================== running
    def run(self) -> str | None:
        if self.running:
            return None
        path, comp = self.current_model_path(), self.component_combo.currentText()
        if not path or not comp:
            self.stage_label.setText("Pick a model folder and a component first.")
            return None
        ready, why = self.reference_ready()
        if not ready:
            self.stage_label.setText(why)
            return None
        rules, label = self._rules_for_run()
        args: dict[str, Any] = {"model_path": path, "component": comp, "reference": self.reference_combo.currentText(),
                                "dtype": self.dtype_combo.currentText(), "seed": int(self.seed_spin.value())}
        if rules is not None:
            args["rules"] = rules_json(rules)  # ordered [[pattern, replacement], ...]: never a map
        self._run_spec = {**args, "rules_label": label}
        self.running = True
        self._started = time.monotonic()
        self.progress.setValue(0)
        self.stage_label.setText(f"Sent to the inference process: {comp} of {Path(path).name} "
                                 f"({args['dtype']}, seed {args['seed']}" + (f", {label}" if label else "") + ")…")
        self._update_buttons()
        self._rid = self.studio.runner.call("run_parity", self._on_reply, args=args, progress=True)
        return self._rid

    def _on_stage(self, h: dict[str, Any]) -> None:
        if not self.running or h.get("request_id") != self._rid:
            return
        stage = str(h.get("name", "")).removeprefix("parity:")
        step, text = STAGES.get(stage, (self.progress.value(), stage))
        if stage == "run":
            side = h.get("side")
            step = 2 if side == "ours" else 3
            text = f"Running {'ours' if side == 'ours' else 'the reference'}…"
        self.progress.setValue(step)
        self.stage_label.setText(text)

    def _on_reply(self, h: dict[str, Any]) -> None:
        self.running = False
        self._rid = None
        duration = time.monotonic() - self._started
        spec = self._run_spec
        ok = h.get("type") == "parity_result" and isinstance(h.get("result"), dict)
        self.progress.setValue(4 if ok else 0)  # an error is not a completed run
        if not ok and "needs the diffusers package" in str(h.get("message") or ""):
            self.studio.references.mark_missing(spec.get("reference", "diffusers"))
        if ok:
            result = h["result"]
            run_id = self.store.add(model_path=spec["model_path"], component=spec["component"],
                                    reference=spec["reference"], dtype=spec["dtype"], seed=spec["seed"],
                                    result=result, rules_label=spec.get("rules_label", ""), duration=duration,
                                    rules=spec.get("rules"))
            self.stage_label.setText(f"Finished in {duration:.1f} s.")
        else:
            message = str(h.get("message") or "no answer from the inference process")
            run_id = self.store.add(model_path=spec["model_path"], component=spec["component"],
                                    reference=spec["reference"], dtype=spec["dtype"], seed=spec["seed"],
                                    error=message, rules_label=spec.get("rules_label", ""), duration=duration,
                                    rules=spec.get("rules"))
            self.stage_label.setText("Parity could not run (the error is below).")
        run = self.store.get(run_id)
        self.refresh_history()
        self._show_result(run)
        self.tabs.setCurrentIndex(self.SUMMARY_TAB if self.all_running else 0)
        self._update_buttons()
        self.run_finished.emit(run)
        if self.all_running:
            self.summary_model.update(spec["component"], "done", run)
            self._run_next_component()

    # ================================================================== showing a run
    def _show_result(self, run: ParityRun | None) -> None:
        self.current_run = run
        self.error_text.setVisible(bool(run is not None and run.error))
        self.error_text.setText(run.error if run is not None and run.error else "")
        if run is None:
            self.outputs_model.set_items([])
            self.modules_model.set_items([])
            self.chart.set_entries([])
            self.verdict.setText("No run yet.")
            self.modules_label.setVisible(False)
            self.modules_view.setVisible(False)
            self.chart.setVisible(False)
            return
        r = run.result
        self.verdict.setToolTip("Rules: arch config (default)" if run.rules is None else "Rules, in order:\n"
                                + "\n".join(f"#{i} {p} -> {v}" for i, (p, v) in enumerate(run.rules)))
        head = (f"{Path(run.model_path).name} · {run.component} vs {run.reference} · {run.dtype} · seed {run.seed}"
                + (f" · {run.rules_label}" if run.rules_label else ""))
        if run.error:
            self.verdict.setText(f"<span style='color:#ff6b6b'>ERROR</span> — {esc(head)}")
        elif run.passed:
            self.verdict.setText(f"<span style='color:#45c486'>PASS</span> — {head}: every output is within "
                                 "tolerance.")
        else:
            fd = run.first_divergent
            self.verdict.setText(f"<span style='color:#ff6b6b'>FAIL</span> — {head}"
                                 + (f"<br>First divergent module: <b>{fd}</b> (reference "
                                    f"{(r.get('first_divergent') or {}).get('reference', '?')})" if fd else ""))
        self.outputs_model.set_items(r.get("outputs") or [])
        modules = r.get("modules") or []
        self.modules_model.set_items(modules)
        tol = next((o.get("rel_l2_tol") for o in r.get("outputs", []) if o.get("rel_l2_tol")), None)
        self.chart.set_entries(modules, tolerance=tol)
        show = bool(modules)
        self.modules_label.setVisible(show)
        self.modules_view.setVisible(show)
        self.chart.setVisible(show)
        self.modules_view.clearSelection()
        if self.modules_model.first_row >= 0:
            self._select_module(self.modules_model.first_row, select=False)  # its own highlight shows

    def _select_module(self, row: int, select: bool = True) -> None:
        if 0 <= row < self.modules_model.rowCount():
            if select:
                self.modules_view.selectRow(row)
            # a few passing modules above it stay in view, for context
            self.modules_view.scrollTo(self.modules_model.index(max(0, row - 3), 0),
                                       QAbstractItemView.ScrollHint.PositionAtTop)

    # ================================================================== the reference package
    def reference_ready(self) -> tuple[bool, str]:
        """Whether the chosen reference can run (unknown counts as yes: the run itself will say), and why not."""
        available, words = self.studio.references.status(self.reference_combo.currentText())
        return available is not False, words

    def _update_reference(self) -> None:
        name = self.reference_combo.currentText()
        refs = self.studio.references
        available, words = refs.status(name)
        if available is None and self.studio.worker_enabled and self.isVisible():
            refs.client.ensure_started()  # its hello says what is installed
        installing = refs.installing == name
        can, why = refs.can_install()
        self.reference_note.setText("" if available else words)
        self.reference_box.setVisible(available is False or installing or self.install_log.isVisible())
        self.install_button.setVisible(available is False)
        self.install_button.setEnabled(available is False and can)
        self.install_button.setText(f"Install {refs_requirement(name)}")
        self.install_button.setToolTip(why or "pip install it into the inference process's environment "
                                             f"({refs.python})")
        self._update_buttons()

    def install_reference(self) -> bool:
        name = self.reference_combo.currentText()
        self.install_progress.setRange(0, self.studio.references.total_steps())
        self.install_progress.setValue(0)
        self.install_progress.show()
        self.install_log.show()
        self.install_log.setText("")
        started = self.studio.references.install(name)
        self._update_reference()
        return started

    def _install_progress(self, step: int, total: int, text: str) -> None:
        self.install_progress.setRange(0, total)
        self.install_progress.setValue(step)
        self.reference_note.setText(text)

    def _install_finished(self, ok: bool, message: str) -> None:
        if not ok:
            self.install_progress.setValue(0)  # no bar left full after a failure
        self.install_progress.setVisible(ok)
        self.install_log.setText(message)
        self.install_log.setVisible(True)
        self._update_reference()
        self.notify.emit(message, "info" if ok else "error")

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self._update_reference()

    def _update_buttons(self) -> None:
        ready, why = self.reference_ready()
        self.run_button.setEnabled(not self.running and not self.all_running and ready
                                   and bool(self.component_combo.currentText()))
        self.run_all_button.setEnabled(not self.running and not self.all_running and ready
                                       and self.component_combo.count() > 0)
        for b in (self.run_button, self.run_all_button):
            if not hasattr(b, "_usual_tip"):
                b._usual_tip = b.toolTip()
            b.setToolTip(b._usual_tip if ready else why)
        n = len(self.history_view.selectionModel().selectedRows()) if self.history_view.selectionModel() else 0
        self.show_button.setEnabled(n >= 1)
        self.compare_button.setEnabled(n == 2)
        self.delete_button.setEnabled(n >= 1)
        has = self.history_model.rowCount() > 0
        self.export_csv_button.setEnabled(has)
        self.export_json_button.setEnabled(has)

"""The Parity panel's History and All-components tabs (a mixin of :class:`app.panels.parity.ParityPanel`).

History: every stored run (``parity_runs``), shown, compared two at a time, exported, deleted.
All components: "Parity: all components" runs each component of the model in turn through the
panel's ``run`` and keeps one summary row per component.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.itemmodels.parity_models import CompareModel, HistoryModel, RunRole, SortRole, SummaryModel
from app.panels.common import data_table
from app.services.parity_store import ParityRun, compare_runs


class ParityHistoryMixin:
    """History and all-components views; the panel provides ``store``, ``run``, ``tabs``, ``component_combo``,
    ``_show_result`` and ``_update_buttons``."""

    # ================================================================== history
    def _build_history_tab(self) -> QWidget:
        """Every stored run: show, compare two, export, delete."""
        self.history_model = HistoryModel(self)
        self.history_proxy = QSortFilterProxyModel(self)
        self.history_proxy.setSourceModel(self.history_model)
        self.history_proxy.setSortRole(SortRole)
        self.history_view = data_table(self.history_proxy, sortable=True)
        self.history_view.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.history_view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.show_button = QPushButton("Show")
        self.compare_button = QPushButton("Compare two")
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_json_button = QPushButton("Export JSON…")
        self.delete_button = QPushButton("Delete")
        self.compare_model = CompareModel(self)
        self.compare_view = data_table(self.compare_model)
        self.compare_label = QLabel("Select two runs and press Compare.")
        self.compare_label.setObjectName("dimLabel")
        history = QWidget()
        hl = QVBoxLayout(history)
        hb = QHBoxLayout()
        for b in (self.show_button, self.compare_button, self.export_csv_button, self.export_json_button):
            hb.addWidget(b)
        hb.addStretch(1)
        hb.addWidget(self.delete_button)
        hl.addLayout(hb)
        hsplit = QSplitter(Qt.Orientation.Vertical)
        hsplit.addWidget(self.history_view)
        cbox = QWidget()
        cl = QVBoxLayout(cbox)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.addWidget(self.compare_label)
        cl.addWidget(self.compare_view)
        hsplit.addWidget(cbox)
        hsplit.setSizes([320, 200])
        hl.addWidget(hsplit, 1)

        self.show_button.clicked.connect(self._show_selected)
        self.history_view.doubleClicked.connect(lambda _i: self._show_selected())
        self.compare_button.clicked.connect(self.compare_selected)
        self.export_csv_button.clicked.connect(lambda: self._export_dialog("csv"))
        self.export_json_button.clicked.connect(lambda: self._export_dialog("json"))
        self.delete_button.clicked.connect(self._delete_selected)
        self.history_view.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        return history

    def refresh_history(self) -> None:
        self.history_model.set_items(self.store.runs())
        self._update_buttons()

    def selected_runs(self) -> list[ParityRun]:
        rows = self.history_view.selectionModel().selectedRows()
        runs = [self.history_proxy.data(i, RunRole) for i in rows]
        return sorted((r for r in runs if r is not None), key=lambda r: r.created_at)

    def select_runs(self, run_ids: list[int]) -> None:
        sm = self.history_view.selectionModel()
        sm.clearSelection()
        for row in range(self.history_proxy.rowCount()):
            run = self.history_proxy.data(self.history_proxy.index(row, 0), RunRole)
            if run is not None and run.id in run_ids:
                sm.select(self.history_proxy.index(row, 0),
                          sm.SelectionFlag.Select | sm.SelectionFlag.Rows)

    def _show_selected(self) -> None:
        runs = self.selected_runs()
        if runs:
            self._show_result(runs[-1])
            self.tabs.setCurrentIndex(0)

    def compare_selected(self) -> list[dict[str, Any]]:
        runs = self.selected_runs()
        if len(runs) != 2:
            self.compare_label.setText("Select exactly two runs to compare (Ctrl+click).")
            self.compare_model.set_items([])
            return []
        a, b = runs
        rows = compare_runs(a, b)
        self.compare_model.set_items(rows)
        self.compare_label.setText(
            f"A: run {a.id} ({a.verdict}, {a.component}, {a.dtype}, {a.rules_label or 'arch config'})  ·  "
            f"B: run {b.id} ({b.verdict}, {b.component}, {b.dtype}, {b.rules_label or 'arch config'})")
        return rows

    def export_history(self, path: str | os.PathLike, fmt: str, runs: list[ParityRun] | None = None) -> Path:
        runs = runs if runs is not None else (self.selected_runs() or self.store.runs())
        return (self.store.export_csv if fmt == "csv" else self.store.export_json)(runs, path)

    def _export_dialog(self, fmt: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export parity runs", f"parity_runs.{fmt}",
                                              "CSV (*.csv)" if fmt == "csv" else "JSON (*.json)")
        if path:
            n = len(self.selected_runs() or self.store.runs())
            self.export_history(path, fmt)
            self.notify.emit(f"{n} parity run(s) written to {path}.", "info")

    def _delete_selected(self) -> None:
        ids = [r.id for r in self.selected_runs()]
        if ids:
            self.store.delete(ids)
            if self.current_run is not None and self.current_run.id in ids:
                self._show_result(None)
            self.refresh_history()

    # ================================================================== all components
    def _build_summary_tab(self) -> QWidget:
        """“Parity: all components”: one summary row per component."""
        self.summary_model = SummaryModel(self)
        self.summary_view = data_table(self.summary_model)
        for c, w in enumerate((150, 110, 130)):
            self.summary_view.setColumnWidth(c, w)
        self.summary_label = QLabel("“Parity: all components” runs each component in turn; double-click a row to "
                                    "see its run.")
        self.summary_label.setObjectName("dimLabel")
        self.summary_label.setWordWrap(True)
        summary = QWidget()
        sl = QVBoxLayout(summary)
        sl.addWidget(self.summary_label)
        sl.addWidget(self.summary_view, 1)

        self.summary_view.doubleClicked.connect(self._show_summary_row)
        return summary

    def components(self) -> list[str]:
        return [self.component_combo.itemText(i) for i in range(self.component_combo.count())]

    def run_all(self) -> list[str]:
        """Run every component in turn through the same parity request; one summary row each. Custom rules
        (from the inspector or a file) apply only to the component selected now; the others use their arch
        config's rules. Returns the components queued."""
        if self.running or self.all_running:
            return []
        comps = self.components()
        if not self.current_model_path() or not comps:
            self.stage_label.setText("Pick a model folder first.")
            return []
        self._all_rules_component = self.component_combo.currentText()
        self._all_queue = list(comps)
        self.all_running = True
        self.summary_model.set_items([{"component": c, "state": "waiting", "run": None} for c in comps])
        self.summary_label.setText(f"{Path(self.current_model_path()).name}: {len(comps)} components, one after "
                                   "the other (double-click a row to see its run).")
        self.tabs.setCurrentIndex(self.SUMMARY_TAB)
        self._run_next_component()
        return comps

    def _run_next_component(self) -> None:
        while self._all_queue:
            comp = self._all_queue.pop(0)
            self.component_combo.setCurrentText(comp)
            self.summary_model.update(comp, "running")
            if self.run() is not None:
                return
            self.summary_model.update(comp, "skipped")
        self.all_running = False
        self.component_combo.setCurrentText(self._all_rules_component)
        done = [self.summary_model.run_at(i) for i in range(self.summary_model.rowCount())]
        bad = [r.component for r in done if r is not None and r.verdict != "pass"]
        self.summary_label.setText(f"All components done: {len(done) - len(bad)} of {len(done)} pass"
                                   + (f"; not passing: {', '.join(bad)}." if bad else ".")
                                   + " Double-click a row to see its run.")
        self._update_buttons()
        self.all_finished.emit([r for r in done if r is not None])

    def summary_rows(self) -> list[tuple[str, str, str, str]]:
        """The summary table as text: (component, verdict, max abs error, first divergent module)."""
        m = self.summary_model
        return [tuple(m.index(r, c).data() for c in range(4)) for r in range(m.rowCount())]

    def _show_summary_row(self, index) -> None:
        run = self.summary_model.run_at(index.row())
        if run is not None:
            self._show_result(run)
            self.tabs.setCurrentIndex(0)

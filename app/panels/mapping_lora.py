"""The weight-mapping inspector's LoRA view: a LoRA file against the chosen model's DiT, key by key -- the
target module (with the row slice of a fused q/k/v), the rule chain that mapped it, rank, alpha and status
(applied / unmatched / shape mismatch / ...), filterable like the checkpoint table.

:class:`LoraInspectMixin` adds it to :class:`app.panels.mapping.MappingPanel` ("Open LoRA…"). The DiT's
parameter shapes come from the inference process once per model (``inspect`` of the transformer, the same
request the checkpoint view makes); everything else runs here, torch-free (:mod:`app.services.lora_inspect`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.itemmodels.lora_models import (
    LORA_STATUS_COLORS,
    LORA_STATUS_LABELS,
    LORA_STATUSES,
    LoraFilterProxy,
    LoraTableModel,
)
from app.itemmodels.mapping_models import MappingInputs
from app.panels.common import error_label, esc, fit_columns, key_table
from app.services.lora_inspect import LORA_COMPONENT, LoraInspection, inspect_lora
from fastvideo.lora.report import APPLIED, LoraKeyRow

LORA_TABS = (("All", None),) + tuple((LORA_STATUS_LABELS[s].capitalize(), s) for s in LORA_STATUSES)


class LoraView(QWidget):
    """The report of one LoRA: summary, the engine's message, status tabs, search, the key table, details."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.inspection: LoraInspection | None = None
        self.title = QLabel("No LoRA opened.")
        self.title.setObjectName("sectionTitle")
        self.title.setWordWrap(True)
        self.back_button = QPushButton("Back to the checkpoint")
        self.message = error_label()
        self.table_model = LoraTableModel(self)
        self.proxy = LoraFilterProxy(self)
        self.proxy.setSourceModel(self.table_model)
        key_table(self, self.proxy, [label for label, _s in LORA_TABS], "Search LoRA keys or target modules…")
        fit_columns(self.table, stretch=(0, 2), samples={1: "alpha", 3: "off→diff#10", 4: "128", 5: "128",
                                                          6: "shape mismatch", 7: "[5120, 128]"})
        self.details = QLabel("Select a key to see where it goes.")
        self.details.setObjectName("details")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.details.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.back_button)
        srow = QHBoxLayout()
        srow.addWidget(self.search_edit, 1)
        srow.addWidget(self.regex_check)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.status_tabs)
        ll.addLayout(srow)
        ll.addWidget(self.search_error)
        ll.addWidget(self.table, 1)
        # The details under the table: the table keeps the window's width for the long keys and targets.
        details = QScrollArea()
        details.setWidgetResizable(True)
        details.setFrameShape(QFrame.Shape.NoFrame)
        details.setWidget(self.details)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(left)
        split.addWidget(details)
        split.setSizes([380, 200])
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(head)
        lay.addWidget(self.message)
        lay.addWidget(split, 1)

        self.status_tabs.currentChanged.connect(self._status_tab_changed)
        self.search_edit.textChanged.connect(lambda _t: self._apply_search())
        self.regex_check.toggled.connect(lambda _c: self._apply_search())
        self.table.selectionModel().currentRowChanged.connect(lambda cur, _p: self._show_details(self._row(cur)))
        self._update_counts()

    # ------------------------------------------------------------------ content
    def show_loading(self, lora_path: str, model_path: str) -> None:
        self.inspection = None
        self.table_model.set_report(None)
        self.message.hide()
        self.title.setText(f"Reading the DiT of {Path(model_path).name} (the inference process builds it on the "
                           f"meta device; no weights are loaded) to inspect {Path(lora_path).name}…")
        self._update_counts()

    def show_inspection(self, inspection: LoraInspection) -> None:
        self.inspection = inspection
        report = inspection.report
        self.table_model.set_report(report)
        name, model = Path(inspection.lora_path).name, Path(inspection.model_path).name
        if report is None:
            self.title.setText(f"LoRA {name} does not fit {model}:")
        else:
            counts = report.counts
            verdict = ("every key applies" if report.ok else
                       f"{sum(n for s, n in counts.items() if s != APPLIED)} of {len(report.rows)} keys do not apply")
            self.title.setText(f"LoRA {name} · {report.format} format · {len(report.rows)} keys against "
                               f"{model} / {LORA_COMPONENT}: {verdict}")
        self.message.setText(inspection.message)
        self.message.setVisible(bool(inspection.message))
        self._update_counts()
        self._show_details(None)

    def show_error(self, text: str) -> None:
        self.inspection = None
        self.table_model.set_report(None)
        self.title.setText("Cannot inspect the LoRA:")
        self.message.setText(text)
        self.message.show()
        self._update_counts()

    def counts(self) -> dict[str, int]:
        report = self.table_model.report
        return dict(report.counts) if report is not None else {}

    def _update_counts(self) -> None:
        counts = self.counts()
        total = sum(counts.values())
        for i, (label, status) in enumerate(LORA_TABS):
            n = total if status is None else counts.get(status, 0)
            self.status_tabs.setTabText(i, f"{label} ({n})")
            # the rare statuses only when some key has them (applied / unmatched / shape mismatch always)
            self.status_tabs.setTabVisible(i, bool(n) or status in (None, APPLIED, "unmatched", "shape_mismatch"))
            if status is not None and status != APPLIED:
                self.status_tabs.setTabTextColor(i, QColor("#ff8f8f" if n else "#8b95a3"))

    # ------------------------------------------------------------------ filtering
    def show_status(self, status: str | None) -> None:
        self.status_tabs.setCurrentIndex(next(i for i, (_l, s) in enumerate(LORA_TABS) if s == status))

    def _status_tab_changed(self, i: int) -> None:
        status = LORA_TABS[i][1] if 0 <= i < len(LORA_TABS) else None
        self.proxy.set_statuses(None if status is None else {status})

    def _apply_search(self) -> None:
        self.proxy.set_search(self.search_edit.text(), self.regex_check.isChecked())
        self.search_error.setText(f"Invalid regex: {self.proxy.regex_error}" if self.proxy.regex_error else "")
        self.search_error.setVisible(bool(self.proxy.regex_error))

    def visible_rows(self) -> list[LoraKeyRow]:
        return [self.table_model.row_at(self.proxy.mapToSource(self.proxy.index(r, 0)).row())
                for r in range(self.proxy.rowCount())]

    # ------------------------------------------------------------------ details
    def _row(self, idx: QModelIndex) -> LoraKeyRow | None:
        return self.table_model.row_at(self.proxy.mapToSource(idx).row()) if idx.isValid() else None

    def select_key(self, key: str) -> bool:
        src = self.table_model.find(key)
        if src < 0:
            return False
        idx = self.proxy.mapFromSource(self.table_model.index(src, 0))
        if not idx.isValid():
            self.show_status(None)
            idx = self.proxy.mapFromSource(self.table_model.index(src, 0))
        sm = self.table.selectionModel()
        sm.setCurrentIndex(idx, sm.SelectionFlag.ClearAndSelect | sm.SelectionFlag.Rows)
        self.table.scrollTo(idx)
        return True

    def _show_details(self, r: LoraKeyRow | None) -> None:
        if r is None:
            self.details.setText("Select a key to see where it goes." if self.table_model.rows else "")
            return
        color = LORA_STATUS_COLORS.get(r.status, "#d8dee6")
        lines = [f"<b>Status:</b> <span style='color:{color}'>{esc(LORA_STATUS_LABELS.get(r.status, r.status))}"
                 "</span>",
                 f"<b>LoRA key:</b> {esc(r.key)} [{', '.join(str(d) for d in r.shape)}] ({esc(r.kind)})",
                 f"<b>Module:</b> {esc(r.module)}"]
        if r.target:
            lines.append(f"<b>Target:</b> {esc(r.target)}")
        if r.rule:
            chain = "<br>".join(f"&nbsp;&nbsp;{i}. <code>{esc(part)}</code>"
                                for i, part in enumerate(r.rule.split(" -> "), 1))
            lines.append(f"<b>Rules that fired, in order:</b><br>{chain}")
        elif r.target:
            lines.append("<b>No rule fired:</b> the name passes through unchanged.")
        if r.rank is not None:
            lines.append(f"<b>Rank</b> {r.rank} · <b>alpha</b> {'—' if r.alpha is None else f'{r.alpha:g}'} · "
                         f"<b>scale</b> {'—' if r.scale is None else f'{r.scale:g}'}")
        if r.detail:
            lines.append(f"<i>{esc(r.detail)}</i>")
        if r.suggestions:
            lines.append("<b>Did you mean:</b><br>" + "<br>".join(f"&nbsp;&nbsp;{esc(s)}" for s in r.suggestions))
        self.details.setText("<br>".join(lines))


class LoraInspectMixin:
    """``Open LoRA…`` for the mapping panel: ``open_lora(path)`` shows :class:`LoraView` in place of the
    checkpoint table; ``close_lora()`` goes back."""

    def _build_lora(self) -> None:
        self.lora_button = QPushButton("Open LoRA…")
        self.lora_button.setToolTip("Inspect a LoRA file against this model's DiT: every key with its target "
                                    "module, the rule that mapped it, rank, alpha and status")
        self.lora_view = LoraView()
        self.lora_view.back_button.clicked.connect(self.close_lora)
        self.lora_button.clicked.connect(self._browse_lora)
        self._lora_targets: dict[str, dict[str, Any]] = {}  # model path -> the DiT's parameter shapes
        self._state_before_lora = ""

    def _lora_stack(self, checkpoint_view: QWidget) -> QStackedWidget:
        self.view_stack = QStackedWidget()
        self.view_stack.addWidget(checkpoint_view)
        self.view_stack.addWidget(self.lora_view)
        return self.view_stack

    def showing_lora(self) -> bool:
        return self.view_stack.currentWidget() is self.lora_view

    def close_lora(self) -> None:
        if self.view_stack.currentIndex() != 0:
            self.view_stack.setCurrentIndex(0)
            self.state_label.setText(self._state_before_lora)

    def _browse_lora(self) -> None:
        start = str(Path(self.studio.settings.lora_dir or Path.home()).expanduser())
        path, _ = QFileDialog.getOpenFileName(self, "Inspect a LoRA", start, "LoRA files (*.safetensors)")
        if path:
            self.open_lora(path)

    def open_lora(self, lora_path: str, model_path: str | None = None) -> str | None:
        """Inspect ``lora_path`` against the model's DiT; the request id when the shapes must be asked for."""
        model = model_path or self.current_model_path()
        if not self.showing_lora():
            self._state_before_lora = self.state_label.text()  # the checkpoint's state, back with close_lora
        self.view_stack.setCurrentWidget(self.lora_view)
        self.state_label.setText(f"LoRA view of {Path(model).name or 'the model'}'s DiT. Back to the checkpoint "
                                 "(or Inspect) shows the checkpoint's keys again.")
        if not model:
            self.lora_view.show_error("Pick a model folder first: a LoRA is inspected against a model's DiT.")
            return None
        from app.panels.mapping import is_official_folder

        if is_official_folder(model):
            self.lora_view.show_error(f"{model} is an official (not converted) folder: convert it first "
                                      "(Models → Convert…), then inspect the LoRA against the converted model.")
            return None
        if (self.inputs is not None and self.inputs.component == LORA_COMPONENT and self.model_path == model
                and not self.official):
            self._lora_targets[model] = self.inputs.target
        if model in self._lora_targets:
            self.lora_view.show_inspection(inspect_lora(lora_path, model, self._lora_targets[model]))
            return None
        self.lora_view.show_loading(lora_path, model)
        return self.studio.runner.call("inspect", lambda h: self._on_lora_targets(h, lora_path, model),
                                       model_path=model, component=LORA_COMPONENT, include_inputs=True)

    def _on_lora_targets(self, h: dict[str, Any], lora_path: str, model: str) -> None:
        if h.get("type") != "inspect_result" or "inputs" not in h:
            self.lora_view.show_error(f"Could not read the DiT of {model}:\n"
                                      f"{h.get('message') or 'no answer from the inference process'}")
            return
        try:
            inputs = MappingInputs.from_json(LORA_COMPONENT, h["inputs"])
        except (KeyError, TypeError, ValueError) as exc:
            self.lora_view.show_error(f"unexpected inspect reply ({exc})")
            return
        self._lora_targets[model] = inputs.target
        self.lora_view.show_inspection(inspect_lora(lora_path, model, inputs.target))

"""The weight-mapping inspector: every checkpoint key, the rule that fired, the target, the status.

The inference process reads the checkpoint headers and builds our model on the meta device
once (``inspect`` with ``include_inputs``); from then on every rule edit is re-evaluated
here, on the headers, with the engine's pure-Python mapping code -- no tensors, no torch.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.itemmodels.mapping_models import (
    STATUS_LABELS,
    MappingFilterProxy,
    MappingInputs,
    MappingTableModel,
    evaluate,
)
from app.panels.common import ModelChooserMixin, component_combo, error_label, esc, fit_columns, key_table
from app.panels.mapping_lora import LoraInspectMixin
from app.panels.mapping_rules import RuleEditorMixin
from app.services.catalogue import describe_local, weight_components
from app.widgets.model_combo import ModelPathCombo
from fastvideo.mapping.rules import PROBLEM_STATUSES, STATUSES, MappingReport, MappingRow, Suggestion, suggest


def fused_part_text(value: tuple) -> str:
    """A fused-target rule value ``(target, part, count)`` in words, counted from 1 like the engine's details
    ("part 2 of 3"), with the 0-based index the rules table's Part column shows."""
    target, part, count = value[0], int(value[1]), int(value[2])
    return f"{target} [part {part + 1} of {count}, index {part}]"


STATUS_TABS = (("All", None),) + tuple((STATUS_LABELS[s].capitalize(), s) for s in STATUSES)


def is_official_folder(model_path: str) -> bool:
    """An official (not yet converted) checkpoint folder (Wan's config.json folders, LTX-2's single file)."""
    return bool(model_path) and describe_local(model_path)["official"] is not None


def model_components(model_path: str) -> list[str]:
    """Components of a Diffusers folder that have weights to map (the registry's answer, torch-free); for an
    official folder, the components ``fastvideo convert`` writes (inspected as a preview of the conversion)."""
    local = describe_local(model_path)
    if local["official"] is not None:
        return list(local["official"]["components"])
    return weight_components(model_path)


class MappingPanel(LoraInspectMixin, RuleEditorMixin, ModelChooserMixin, QWidget):
    #: rules -- an ordered list of (pattern, value) pairs, never a dict: a Qt map would come back sorted
    #: by key -- and a label, for the Parity panel ("run parity with these rules")
    rules_for_parity = Signal(object, str)
    notify = Signal(str, str)
    #: emitted after every (re)evaluation
    report_changed = Signal()

    def __init__(self, studio, parent: QWidget | None = None):
        super().__init__(parent)
        self.studio = studio
        self.inputs: MappingInputs | None = None
        self.report: MappingReport | None = None
        self.model_path = ""
        #: the inspected folder is an official one (a conversion preview: parity needs the converted folder)
        self.official = False
        self.loading = False
        self.load_error = ""
        self._pending_rid: str | None = None

        title = QLabel("Weight mapping")
        title.setObjectName("panelTitle")
        self.model_combo = ModelPathCombo(360)
        self.browse_button = QPushButton("Browse…")
        self.component_combo = component_combo()
        self.load_button = QPushButton("Inspect")
        self.load_button.setObjectName("primaryButton")
        self.state_label = QLabel("Pick a model folder and a component.")
        self.state_label.setObjectName("dimLabel")
        self.state_label.setWordWrap(True)
        #: a load error, as plain text with its line breaks (engine errors list one problem a line)
        self.error_text = error_label()

        # ---- key table
        self.table_model = MappingTableModel(self)
        self.proxy = MappingFilterProxy(self)
        self.proxy.setSourceModel(self.table_model)
        key_table(self, self.proxy, [label for label, _s in STATUS_TABS], "Search source or target keys…")
        fit_columns(self.table, stretch=(0, 2), samples={1: "#00", 3: "duplicate target", 4: "[5120, 5120]",
                                                          5: "[5120, 5120]", 6: "BF16"})

        # ---- details
        self.details = QLabel("Select a key to see which rule fired.")
        self.details.setObjectName("details")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.near_label = QLabel("Near misses")
        self.near_label.setObjectName("sectionTitle")
        self.near_list = QListWidget()
        self.near_list.setMaximumHeight(120)
        self.near_list.setToolTip("The closest names on the other side: double-click to jump to one")

        rules_box = self._build_rule_editor()
        self._build_lora()

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.status_tabs)
        srow = QHBoxLayout()
        srow.addWidget(self.search_edit, 1)
        srow.addWidget(self.regex_check)
        ll.addLayout(srow)
        ll.addWidget(self.search_error)
        ll.addWidget(self.table, 1)

        detail_box = QWidget()
        dl = QVBoxLayout(detail_box)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addWidget(self.details, 1)
        dl.addWidget(self.near_label)
        dl.addWidget(self.near_list)
        # The key table and its details side by side; the rule editor below them at full width, so
        # long patterns and every column of both tables fit the default window (1280x820).
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(detail_box)
        split.setSizes([800, 270])
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        outer = QSplitter(Qt.Orientation.Vertical)
        outer.addWidget(split)
        outer.addWidget(rules_box)
        outer.setSizes([400, 300])
        outer.setStretchFactor(0, 3)
        outer.setStretchFactor(1, 2)
        outer.setChildrenCollapsible(False)
        self.splitter = outer

        top = QHBoxLayout()
        top.addWidget(QLabel("Model"))
        top.addWidget(self.model_combo, 1)
        top.addWidget(self.browse_button)
        top.addWidget(QLabel("Component"))
        top.addWidget(self.component_combo)
        top.addWidget(self.load_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 16, 16, 16)
        lay.addWidget(title)
        lay.addLayout(top)
        state_row = QHBoxLayout()  # Open LoRA… here: the model row is as wide as the window allows
        state_row.addWidget(self.state_label, 1)
        state_row.addWidget(self.lora_button, 0, Qt.AlignmentFlag.AlignTop)
        lay.addLayout(state_row)
        lay.addWidget(self.error_text)
        lay.addWidget(self._lora_stack(outer), 1)

        self._eval_timer = QTimer(self)
        self._eval_timer.setSingleShot(True)
        self._eval_timer.setInterval(0)  # coalesce a burst of edits into one evaluation
        self._eval_timer.timeout.connect(self.reevaluate)
        self._details_timer = QTimer(self)
        self._details_timer.setSingleShot(True)
        self._details_timer.setInterval(0)
        self._details_timer.timeout.connect(self._refresh_details)
        self.rules_model.rules_changed.connect(self._eval_timer.start)
        self.model_combo.currentTextChanged.connect(lambda _t: self._model_changed())
        self.browse_button.clicked.connect(self._browse)
        self.load_button.clicked.connect(lambda: self.load())
        self.status_tabs.currentChanged.connect(self._status_tab_changed)
        self.search_edit.textChanged.connect(lambda _t: self._apply_search())
        self.regex_check.toggled.connect(lambda _c: self._apply_search())
        self.table.selectionModel().currentRowChanged.connect(lambda cur, _p: self._select(cur))
        self.near_list.itemDoubleClicked.connect(self._jump_to_candidate)
        self._update_counts()
        self._update_buttons()

    # ================================================================== choosing
    def _model_changed(self) -> None:
        self._set_components(model_components(self.current_model_path()))

    # ================================================================== loading
    def load(self, model_path: str | None = None, component: str | None = None) -> str | None:
        """Ask the inference process for the headers and target shapes; the reply fills the panel."""
        self.close_lora()
        if model_path:
            self.set_model(model_path, component)
        path, comp = self.current_model_path(), component or self.component_combo.currentText()
        if not path or not comp:
            self.state_label.setText("Pick a model folder and a component first.")
            return None
        self.loading = True
        self.load_error = ""
        self.error_text.hide()
        self._update_buttons()
        self.state_label.setText(f"Reading {comp} headers of {Path(path).name} (the inference process builds the "
                                 "model on the meta device; no weights are loaded)…")
        rid = self.studio.runner.call("inspect", lambda h: self._on_reply(h, path, comp), model_path=path,
                                      component=comp, include_inputs=True)
        self._pending_rid = rid
        return rid

    def _on_reply(self, h: dict[str, Any], path: str, comp: str) -> None:
        self.loading = False
        self._pending_rid = None
        if h.get("type") != "inspect_result" or "inputs" not in h:
            self._show_load_error(comp, path, str(h.get("message") or "no answer from the inference process"))
            return
        try:
            inputs = MappingInputs.from_json(comp, h["inputs"])
        except (KeyError, TypeError, ValueError) as exc:
            self._show_load_error(comp, path, f"unexpected inspect reply ({exc})")
            return
        self.model_path = path
        self.set_inputs(inputs)

    def _show_load_error(self, comp: str, path: str, message: str) -> None:
        self.load_error = message
        self.state_label.setText(f"Could not inspect {comp} of {Path(path).name}:")
        self.error_text.setText(message)  # plain text: the engine's one-problem-a-line errors keep their lines
        self.error_text.show()
        self._update_buttons()

    def set_inputs(self, inputs: MappingInputs, rules: list[tuple[str, Any]] | dict[str, Any] | None = None) -> None:
        """Show ``inputs`` evaluated with ``rules`` (default: the arch config's)."""
        self.inputs = inputs
        self.official = is_official_folder(self.model_path)
        self.error_text.hide()
        self.rules_model.set_rules(inputs.default_rules if rules is None else rules)
        self.reevaluate()
        if self.official:
            self.state_label.setText(
                f"Official layout (not converted yet): {self.model_path} · {inputs.component}: a preview of "
                f"`fastvideo convert` — {len(inputs.source)} official keys through the converter's rules onto "
                f"the {len(inputs.target)} Diffusers names it writes (headers only, nothing written).")
            self.rules_title.setText("Rules (the converter's official → Diffusers renames) — first match wins")
        else:
            self.state_label.setText(f"{self.model_path or 'model'} · {inputs.component}: {len(inputs.source)} "
                                     f"checkpoint keys, {len(inputs.target)} model parameters. Edit the rules below: "
                                     "the table follows at once.")
            self.rules_title.setText("Rules (param_names_mapping) — first match wins")

    # ================================================================== evaluation
    def reevaluate(self) -> None:
        self._eval_timer.stop()
        if self.inputs is None:
            return
        keep = self._current_row()
        report, errors = evaluate(self.inputs, self.rules_model.rules(), self.rules_model.disabled())
        self.report = report
        hits = Counter(r.rule for r in report.rows if r.rule is not None)
        self.rules_model.set_status(errors, dict(hits))
        if errors:
            lines = [f"rule #{i}: {msg}" for i, msg in sorted(errors.items())]
            self.rules_error.setText("Invalid rules are skipped until fixed:\n" + "\n".join(lines))
            self.rules_error.show()
        else:
            self.rules_error.hide()
        self.table_model.set_report(report)
        self._update_counts()
        if keep is not None:
            self._reselect(keep)
        else:
            self._show_details(None)
        self._update_buttons()
        self.report_changed.emit()

    def counts(self) -> dict[str, int]:
        return self.report.counts if self.report is not None else {s: 0 for s in STATUSES}

    def _update_counts(self) -> None:
        counts = self.report.all_counts if self.report is not None else self.counts()
        total = sum(counts.values())
        for i, (label, status) in enumerate(STATUS_TABS):
            n = total if status is None else counts.get(status, 0)
            self.status_tabs.setTabText(i, f"{label} ({n})")
            if status in PROBLEM_STATUSES:
                self.status_tabs.setTabTextColor(i, QColor("#ff8f8f" if n else "#8b95a3"))

    # ================================================================== filtering
    def show_status(self, status: str | None) -> None:
        for i, (_label, s) in enumerate(STATUS_TABS):
            if s == status:
                self.status_tabs.setCurrentIndex(i)
                return
        raise KeyError(status)

    def _status_tab_changed(self, i: int) -> None:
        status = STATUS_TABS[i][1] if 0 <= i < len(STATUS_TABS) else None
        self.proxy.set_statuses(None if status is None else {status})

    def _apply_search(self) -> None:
        self.proxy.set_search(self.search_edit.text(), self.regex_check.isChecked())
        if self.proxy.regex_error:
            self.search_error.setText(f"Invalid regex: {self.proxy.regex_error}")
            self.search_error.show()
        else:
            self.search_error.hide()

    def visible_rows(self) -> list[MappingRow]:
        return [self.table_model.row_at(self.proxy.mapToSource(self.proxy.index(r, 0)).row())
                for r in range(self.proxy.rowCount())]

    # ================================================================== selection & details
    def _current_row(self) -> MappingRow | None:
        idx = self.table.selectionModel().currentIndex()
        if not idx.isValid():
            return None
        return self.table_model.row_at(self.proxy.mapToSource(idx).row())

    def _reselect(self, row: MappingRow) -> None:
        src = self.table_model.find(row.source, row.target)
        if src < 0:
            self._show_details(None)
            return
        idx = self.proxy.mapFromSource(self.table_model.index(src, 0))
        if idx.isValid():
            self.table.selectionModel().setCurrentIndex(
                idx, self.table.selectionModel().SelectionFlag.ClearAndSelect
                | self.table.selectionModel().SelectionFlag.Rows)
        self._details_timer.stop()
        self._show_details(self.table_model.row_at(src))

    def select_key(self, source: str | None = None, target: str | None = None) -> bool:
        """Select the row of a source key (or, for a missing one, its target key)."""
        src = self.table_model.find(source, target)
        if src < 0:
            return False
        idx = self.proxy.mapFromSource(self.table_model.index(src, 0))
        if not idx.isValid():
            self.show_status(None)
            idx = self.proxy.mapFromSource(self.table_model.index(src, 0))
        self.table.selectionModel().setCurrentIndex(
            idx, self.table.selectionModel().SelectionFlag.ClearAndSelect
            | self.table.selectionModel().SelectionFlag.Rows)
        self.table.scrollTo(idx)
        self._details_timer.stop()
        self._refresh_details()
        return True

    def _select(self, idx: QModelIndex) -> None:
        # Never touch the source model (highlights) while the proxy is in the middle of a filter or
        # sort change that moved the current row: show the details once it is done.
        self._details_timer.start()

    def _refresh_details(self) -> None:
        self._show_details(self._current_row())

    def near_miss_candidates(self, row: MappingRow, limit: int = 5) -> list[Suggestion]:
        """For a missing key: the closest unexpected checkpoint keys; for an unexpected key: the closest
        missing model keys -- ranked by name *and* shape by the engine (``suggest``, the same list
        ``inspect-mapping --format json`` gives): a candidate whose shape cannot fit is marked and always
        ranks after every possible one."""
        if self.report is None:
            return []
        return suggest(row, self.report, limit)

    def _show_details(self, row: MappingRow | None) -> None:
        self.near_list.clear()
        self.table_model.set_highlighted(set())
        if row is None:
            self.details.setText("Select a key to see which rule fired." if self.report else
                                 "Nothing inspected yet.")
            self.near_label.setVisible(False)
            self.near_list.setVisible(False)
            return
        lines = [f"<b>Status:</b> <span style='color:{_color(row.status)}'>{STATUS_LABELS[row.status]}</span>"]
        if row.source:
            lines.append(f"<b>Checkpoint key:</b> {row.source} {_shape(row.source_shape)} {row.dtype or ''}")
        if row.target:
            lines.append(f"<b>Model key:</b> {row.target} {_shape(row.target_shape)}")
        if row.rule is not None:
            pattern, value = self.rules_model.rules()[row.rule]
            repl = ("(ignore: dropped)" if value is None else value if isinstance(value, str)
                    else fused_part_text(value))
            lines.append(f"<b>Rule #{row.rule} fired:</b> <code>{esc(pattern)}</code> → <code>{esc(repl)}</code>")
        elif row.source:
            lines.append("<b>No rule matched:</b> the name passes through unchanged.")
        if row.status == "duplicate_target":
            lines.append("<b>Duplicate target:</b> more than one checkpoint key maps onto this model key; loading "
                         "refuses this mapping until a rule tells them apart (or ignores the extra one).")
        if row.status == "shape_mismatch":
            lines.append(f"<b>Shapes differ:</b> checkpoint {_shape(row.source_shape)}, "
                         f"model {_shape(row.target_shape)}")
        if row.detail:
            lines.append(f"<i>{esc(row.detail)}</i>")
        self.details.setText("<br>".join(lines))
        cands = self.near_miss_candidates(row)
        show = bool(cands)
        self.near_label.setVisible(show)
        self.near_list.setVisible(show)
        if not show:
            return
        self.near_label.setText("Closest unexpected checkpoint keys" if row.status == "missing"
                                else "Closest missing model keys")
        rows = set()
        for s in cands:
            text = f"{s.score:.2f}  {s.name}  {_shape(s.shape)}"
            if not s.possible:
                text += "  — shape cannot fit"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, (s.source, s.target))
            if not s.possible:
                item.setForeground(QColor("#6c7684"))
                item.setToolTip(f"Impossible pairing: shape {_shape(s.shape)} cannot fill "
                                f"{_shape(row.target_shape if row.status == 'missing' else row.source_shape)}")
            self.near_list.addItem(item)
            if not s.possible:
                continue  # never highlighted as a candidate
            i = self.table_model.find(s.source, s.target)
            if i >= 0:
                rows.add(i)
        self.table_model.set_highlighted(rows)

    def highlighted_rows(self) -> list[MappingRow]:
        return [self.table_model.rows[i] for i in sorted(self.table_model.highlighted)]

    def _jump_to_candidate(self, item: QListWidgetItem) -> None:
        source, target = item.data(Qt.ItemDataRole.UserRole)
        self.select_key(source, target)

    def _update_buttons(self) -> None:
        have = self.inputs is not None
        self.load_button.setEnabled(not self.loading and bool(self.component_combo.currentText()))
        for b in (self.add_rule_button, self.ignore_button, self.delete_rule_button, self.up_button, self.down_button,
                  self.reset_rules_button, self.import_button, self.export_py_button, self.export_json_button,
                  self.copy_py_button, self.arch_block_button, self.parity_button):
            b.setEnabled(have)
        self.parity_button.setEnabled(have and not self.official)
        self.parity_button.setToolTip("Convert the folder first: parity runs on the converted (Diffusers) model"
                                      if self.official else "Run parity with the active rules, in this order")


def _shape(shape) -> str:
    return "" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"


def _color(status: str) -> str:
    from app.itemmodels.mapping_models import STATUS_COLORS

    return STATUS_COLORS.get(status, "#d8dee6")

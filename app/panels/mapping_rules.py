"""The weight-mapping inspector's rule editor: the ordered rules table, its buttons and what they do.

A part of :class:`app.panels.mapping.MappingPanel` (a mixin: the panel provides ``inputs``, ``notify``,
``rules_for_parity``, ``reevaluate``, ``_current_row`` and ``near_miss_candidates``).  Every edit is
re-evaluated by the panel on the checkpoint headers; nothing here touches tensors.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.itemmodels.mapping_models import RulesModel, parse_rules_text
from app.panels.common import error_label, fit_columns


class RuleEditorMixin:
    """The rule editor of the weight-mapping inspector."""

    def _build_rule_editor(self) -> QWidget:
        """The rules table and its buttons, connected; returns the box that holds them."""
        self.rules_model = RulesModel(self)
        self.rules_view = QTableView()
        self.rules_view.setModel(self.rules_model)
        self.rules_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.rules_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.rules_view.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                        | QAbstractItemView.EditTrigger.EditKeyPressed
                                        | QAbstractItemView.EditTrigger.AnyKeyPressed)
        self.rules_view.verticalHeader().hide()
        self.rules_view.verticalHeader().setDefaultSectionSize(24)
        self.rules_view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        fit_columns(self.rules_view, stretch=(2, 3), samples={0: "00", 1: "On", 4: "Part", 5: "Of", 6: "Ignore",
                                                              7: "0000"})
        self.rules_error = error_label()
        self.add_rule_button = QPushButton("Add")
        self.add_rule_button.setToolTip("A copy of the selected rule (off), a rule for the selected unexpected key, "
                                        "or an empty rule (off until filled in)")
        self.ignore_button = QPushButton("Ignore key")
        self.ignore_button.setToolTip("An ignore rule for the selected unexpected checkpoint key (truly extra: "
                                      "dropped, never read)")
        self.delete_rule_button = QPushButton("Delete")
        self.up_button = QPushButton("Up")
        self.down_button = QPushButton("Down")
        self.reset_rules_button = QPushButton("Reset")
        self.reset_rules_button.setToolTip("Back to the arch config's param_names_mapping")
        self.import_button = QPushButton("Import…")
        self.export_py_button = QPushButton("Export Python…")
        self.export_json_button = QPushButton("Export JSON…")
        self.copy_py_button = QPushButton("Copy")
        self.copy_py_button.setToolTip("Copy the rules as a Python dict literal (for the arch config)")
        self.arch_block_button = QPushButton("param_names_mapping…")
        self.arch_block_button.setToolTip("Show and copy a ready-to-paste param_names_mapping field for the arch "
                                          "config, from the edited rules")
        self.block_dialog: QDialog | None = None
        self.parity_button = QPushButton("Parity with these rules")

        rules_box = QWidget()
        rl = QVBoxLayout(rules_box)
        rl.setContentsMargins(0, 0, 0, 0)
        rtitle = QLabel("Rules (param_names_mapping) — first match wins")
        rtitle.setObjectName("sectionTitle")
        self.rules_title = rtitle
        rl.addWidget(rtitle)
        rl.addWidget(self.rules_view, 1)
        rl.addWidget(self.rules_error)
        rows = ((self.add_rule_button, self.ignore_button, self.delete_rule_button, self.up_button, self.down_button,
                 self.reset_rules_button),
                (self.import_button, self.export_py_button, self.export_json_button, self.copy_py_button,
                 self.arch_block_button, self.parity_button))
        for buttons in rows:
            r = QHBoxLayout()
            for b in buttons:
                r.addWidget(b)
            r.addStretch(1)
            rl.addLayout(r)

        self.add_rule_button.clicked.connect(self._add_rule)
        self.ignore_button.clicked.connect(self.ignore_selected_key)
        self.arch_block_button.clicked.connect(self.show_arch_config_block)
        self.delete_rule_button.clicked.connect(self._delete_rule)
        self.up_button.clicked.connect(lambda: self._move_rule(-1))
        self.down_button.clicked.connect(lambda: self._move_rule(1))
        self.reset_rules_button.clicked.connect(lambda: self.reset_rules())
        self.import_button.clicked.connect(self._import_dialog)
        self.export_py_button.clicked.connect(lambda: self._export_dialog("python"))
        self.export_json_button.clicked.connect(lambda: self._export_dialog("json"))
        self.copy_py_button.clicked.connect(
            lambda: QGuiApplication.clipboard().setText(self.rules_model.to_python()))
        self.parity_button.clicked.connect(self._send_to_parity)
        return rules_box

    def _selected_rule(self) -> int:
        idx = self.rules_view.selectionModel().currentIndex()
        return idx.row() if idx.isValid() else -1

    def _add_rule(self) -> int:
        """A new rule: a copy of the selected rule (off, above it), a rule for the selected unexpected key
        (onto its best *possible* near miss), or an empty rule (off) -- never a match-everything rule."""
        import re as _re

        row = self._selected_rule()
        cur = self._current_row()
        if row >= 0:
            pattern, repl, part, count, ignore, _on = self.rules_model.items[row]
            new = self.rules_model.add_rule(pattern, None if ignore else repl, part, count, row=row, enabled=False)
        elif cur is not None and cur.status == "unexpected" and cur.source:
            pattern = "^" + _re.escape(cur.source) + "$"  # a start: the selected unexpected key
            cands = [s for s in self.near_miss_candidates(cur) if s.possible]
            repl = cands[0].target if cands else cur.source
            new = self.rules_model.add_rule(pattern, repl, row=0)
        else:
            new = self.rules_model.add_rule("", "", row=0, enabled=False)
        self.rules_view.selectRow(new)
        self.rules_view.edit(self.rules_model.index(new, RulesModel.PATTERN))
        return new

    def ignore_selected_key(self) -> int:
        """An ignore rule (on, at the top) for the selected unexpected checkpoint key; -1 if none is selected."""
        import re as _re

        cur = self._current_row()
        if cur is None or cur.status != "unexpected" or not cur.source:
            self.notify.emit("Select an unexpected checkpoint key to ignore.", "info")
            return -1
        new = self.rules_model.add_rule("^" + _re.escape(cur.source) + "$", None, row=0)
        self.rules_view.selectRow(new)
        return new

    def _delete_rule(self) -> None:
        row = self._selected_rule()
        if row >= 0:
            self.rules_model.removeRows(row, 1)

    def _move_rule(self, delta: int) -> None:
        row = self._selected_rule()
        if row >= 0:
            self.rules_view.selectRow(self.rules_model.move(row, delta))

    def reset_rules(self, confirm: bool = True) -> bool:
        """Back to the arch config's rules; edits are discarded only after a yes (when there are any)."""
        if self.inputs is None:
            return False
        if confirm and self.rules_model.edited:
            answer = QMessageBox.question(
                self, "Reset the rules?", "Discard your edits and go back to the arch config's "
                "param_names_mapping?", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                return False
        self.rules_model.set_rules(self.inputs.default_rules)
        return True

    def export_rules(self, path: str | os.PathLike, fmt: str = "python") -> Path:
        """Write the active rules (in order); refuses (ValueError naming the rule) while any rule is invalid."""
        self.reevaluate()  # errors are current
        problems = self.rules_model.export_problems()
        if problems:
            raise ValueError("not written: " + "; ".join(problems))
        path = Path(path)
        text = self.rules_model.to_python() if fmt == "python" else self.rules_model.to_json()
        path.write_text(text + "\n")
        return path

    def arch_config_block(self) -> str:
        return self.rules_model.to_arch_config()

    def show_arch_config_block(self) -> str:
        """Copy the ready-to-paste param_names_mapping field and show it (non-modal)."""
        self.reevaluate()
        text = self.arch_config_block()
        problems = self.rules_model.export_problems()
        QGuiApplication.clipboard().setText(text)
        if self.block_dialog is None:
            self.block_dialog = QDialog(self)
            self.block_dialog.setWindowTitle("param_names_mapping for the arch config")
            self.block_dialog.resize(720, 420)
            lay = QVBoxLayout(self.block_dialog)
            self.block_note = QLabel()
            self.block_note.setWordWrap(True)
            self.block_text = QPlainTextEdit()
            self.block_text.setReadOnly(True)
            lay.addWidget(self.block_note)
            lay.addWidget(self.block_text, 1)
        self.block_text.setPlainText(text)
        self.block_note.setText("Copied. Paste it into the arch config dataclass (rules in order, first match "
                                "wins)." + ("" if not problems else " Left out: " + "; ".join(problems)))
        self.block_dialog.show()
        return text

    def import_rules(self, path: str | os.PathLike) -> int:
        rules = parse_rules_text(Path(path).read_text())
        self.rules_model.set_rules(rules)
        return len(rules)

    def _export_dialog(self, fmt: str) -> None:
        suffix = "py" if fmt == "python" else "json"
        default = f"{self.inputs.component if self.inputs else 'rules'}_param_names_mapping.{suffix}"
        path, _ = QFileDialog.getSaveFileName(self, "Export rules", default,
                                              "Python (*.py)" if fmt == "python" else "JSON (*.json)")
        if path:
            try:
                self.export_rules(path, fmt)
            except (OSError, ValueError) as exc:
                self.notify.emit(f"Rules not written to {path}: {exc}", "error")
                return
            off = len(self.rules_model.disabled())
            self.notify.emit(f"Rules written to {path}." + (f" {off} switched-off rule(s) left out." if off else ""),
                             "info")

    def _import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import rules", "", "Rules (*.json *.py *.txt);;All files (*)")
        if not path:
            return
        try:
            n = self.import_rules(path)
        except (OSError, ValueError, SyntaxError) as exc:
            self.notify.emit(f"Could not import {path}: {exc}", "error")
            return
        self.notify.emit(f"{n} rules imported from {Path(path).name}.", "info")

    def rules_for_parity_run(self) -> list[tuple[str, Any]]:
        """The rules parity runs with: the active ones, in editor order."""
        return self.rules_model.active_rules()

    def _send_to_parity(self) -> None:
        self.reevaluate()
        rules = self.rules_for_parity_run()
        self.rules_for_parity.emit(rules, self.parity_rules_label(rules))

    def parity_rules_label(self, rules: list[tuple[str, Any]]) -> str:
        """How the Parity panel names these rules: "edited rules (N)" only when they differ from the arch
        config's (an unchanged set says so)."""
        from fastvideo.mapping.rules import rules_list

        default = rules_list(self.inputs.default_rules) if self.inputs is not None else None
        if default is not None and rules_list(rules) == default:
            return f"arch config rules ({len(rules)}, unedited)"
        return f"edited rules ({len(rules)})"

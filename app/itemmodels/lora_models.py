"""Item models of the inspector's LoRA view: one row per key of a LoRA file (the engine's
:class:`~fastvideo.lora.report.LoraKeyRow`), filtered by status and by text or regex like the checkpoint table."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from app.itemmodels.mapping_models import MappingFilterProxy, SortKeyRole
from app.itemmodels.table_base import ColumnTableModel
from fastvideo.lora.report import (
    APPLIED,
    INCOMPLETE,
    NOT_LORA,
    SHAPE_MISMATCH,
    UNMATCHED,
    UNSUPPORTED,
    LoraKeyRow,
    LoraReport,
)

LORA_STATUSES = (APPLIED, UNMATCHED, SHAPE_MISMATCH, INCOMPLETE, UNSUPPORTED, NOT_LORA)
LORA_STATUS_LABELS = {APPLIED: "applied", UNMATCHED: "unmatched", SHAPE_MISMATCH: "shape mismatch",
                      INCOMPLETE: "incomplete", UNSUPPORTED: "unsupported", NOT_LORA: "not a LoRA key"}
LORA_STATUS_COLORS = {APPLIED: "#45c486", UNMATCHED: "#ff6b6b", SHAPE_MISMATCH: "#ff8f5a", INCOMPLETE: "#d9a441",
                      UNSUPPORTED: "#ff5fa2", NOT_LORA: "#8b95a3"}


#: short names of the rule stages in the table (the details and the tooltip give the full chain)
STAGE_ABBREVIATIONS = {"param_names_mapping": "ours", "official_param_names_mapping": "off→diff",
                       "lora_param_names_mapping": "lora"}


def short_rule(rule: str | None) -> str:
    """The rule that put a key on our name, in short: the last stage of the chain with its rule number
    (``ours#3`` for ``param_names_mapping#3``; the tooltip and the details give the whole chain)."""
    if not rule:
        return "(name unchanged)"
    stage, _, number = rule.split(" -> ")[-1].split(" ", 1)[0].partition("#")
    return f"{STAGE_ABBREVIATIONS.get(stage, stage)}#{number}"


class LoraTableModel(ColumnTableModel):
    COLUMNS = ("LoRA key", "Kind", "Target module", "Rule", "Rank", "Alpha", "Status", "Shape")
    KEY, KIND, TARGET, RULE, RANK, ALPHA, STATUS, SHAPE = range(8)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.report: LoraReport | None = None
        self.rows: list[LoraKeyRow] = []

    def set_report(self, report: LoraReport | None) -> None:
        self.beginResetModel()
        self.report = report
        self.rows = list(report.rows) if report is not None else []
        self.endResetModel()

    def row_items(self):
        return self.rows

    def row_at(self, row: int) -> LoraKeyRow | None:
        return self.rows[row] if 0 <= row < len(self.rows) else None

    def find(self, key: str) -> int:
        return next((i for i, r in enumerate(self.rows) if r.key == key), -1)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole) -> Any:
        r = self.row_at(index.row()) if index.isValid() else None
        if r is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return {self.KEY: r.key, self.KIND: r.kind, self.TARGET: r.target or "—", self.RULE: short_rule(r.rule),
                    self.RANK: "" if r.rank is None else str(r.rank),
                    self.ALPHA: "" if r.alpha is None else f"{r.alpha:g}",
                    self.STATUS: LORA_STATUS_LABELS.get(r.status, r.status),
                    self.SHAPE: "[" + ", ".join(str(d) for d in r.shape) + "]"}.get(col)
        if role == SortKeyRole:
            if col == self.RANK:
                return -1 if r.rank is None else r.rank
            if col == self.ALPHA:
                return -1.0 if r.alpha is None else r.alpha
            if col == self.STATUS:
                return LORA_STATUSES.index(r.status) if r.status in LORA_STATUSES else 99
            if col == self.SHAPE:
                n = 1
                for d in r.shape:
                    n *= int(d)
                return n
            return str(self.data(index) or "")
        if role == Qt.ItemDataRole.ForegroundRole and col == self.STATUS:
            return QBrush(QColor(LORA_STATUS_COLORS.get(r.status, "#d8dee6")))
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == self.RULE and r.rule:
                return r.rule
            return r.detail or None
        return None


class LoraFilterProxy(MappingFilterProxy):
    """Statuses and a text or regex search over the LoRA key, its module and its target."""

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:  # noqa: N802
        row = self.sourceModel().row_at(source_row)
        if row is None:
            return True
        if self.statuses is not None and row.status not in self.statuses:
            return False
        if not self.pattern:
            return True
        names = [n for n in (row.key, row.module, row.target) if n]
        if self.use_regex:
            return self.regex is None or any(self.regex.search(n) for n in names)
        needle = self.pattern.lower()
        return any(needle in n.lower() for n in names)

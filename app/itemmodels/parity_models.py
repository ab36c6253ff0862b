"""Item models of the Parity panel: outputs of one run, its per-module activations, run history."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from app.itemmodels.table_base import ColumnTableModel
from app.services.parity_store import ParityRun

PASS_COLOR = QColor("#45c486")
FAIL_COLOR = QColor("#ff6b6b")
FAIL_BG = QColor("#4a1f24")
FIRST_BG = QColor("#6b2a31")
SortRole = Qt.ItemDataRole.UserRole + 1
RunRole = Qt.ItemDataRole.UserRole + 2


def fmt(v: Any) -> str:
    if v is None:
        return "—"
    v = float(v)
    if math.isinf(v):
        return "inf"
    if v == 0:
        return "0"
    return f"{v:.3e}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.5f}"


def tolerance_text(o: dict[str, Any]) -> str:
    if o.get("atol") is not None:
        return f"atol {o['atol']:g} + rtol {o.get('rtol') or 0:g}·|ref|"
    if o.get("rel_l2_tol") is not None:
        return f"rel L2 ≤ {o['rel_l2_tol']:g}"
    return ""


class _Table(ColumnTableModel):
    COLUMNS: tuple[str, ...] = ()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.items: list[Any] = []

    def set_items(self, items: list[Any]) -> None:
        self.beginResetModel()
        self.items = list(items)
        self.endResetModel()

    def row_items(self):
        return self.items

    def _valid(self, index: QModelIndex) -> bool:
        return index.isValid() and 0 <= index.row() < len(self.items) and 0 <= index.column() < len(self.COLUMNS)


class OutputsModel(_Table):
    COLUMNS = ("Output", "Max abs", "Mean abs", "Rel L2", "Tolerance", "Result")

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        o = self.items[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (o.get("name", ""), fmt(o.get("max_abs")), fmt(o.get("mean_abs")), fmt(o.get("rel_l2")),
                    tolerance_text(o), "pass" if o.get("passed") else "FAIL")[col]
        if role == Qt.ItemDataRole.ForegroundRole and col == 5:
            return QBrush(PASS_COLOR if o.get("passed") else FAIL_COLOR)
        if role == Qt.ItemDataRole.BackgroundRole and not o.get("passed"):
            return QBrush(FAIL_BG)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (1, 2, 3):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class ModulesModel(_Table):
    """Per-module activation comparison in our execution order; the first divergent one stands out."""

    COLUMNS = ("#", "Our module", "Reference module", "Max abs", "Rel L2", "Result")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.first_row = -1
        self._bold = QFont()
        self._bold.setBold(True)

    def set_items(self, items: list[Any]) -> None:
        super().set_items(items)
        self.first_row = next((i for i, m in enumerate(self.items) if not m.get("passed")), -1)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        m = self.items[index.row()]
        col = index.column()
        first = index.row() == self.first_row
        if role == Qt.ItemDataRole.DisplayRole:
            result = "pass" if m.get("passed") else ("FIRST DIVERGENCE" if first else "fail")
            return (str(index.row()), m.get("ours", ""), m.get("reference", ""), fmt(m.get("max_abs")),
                    fmt(m.get("rel_l2")), result)[col]
        if role == Qt.ItemDataRole.ForegroundRole and col == 5:
            return QBrush(PASS_COLOR if m.get("passed") else FAIL_COLOR)
        if role == Qt.ItemDataRole.BackgroundRole:
            if first:
                return QBrush(FIRST_BG)
            if not m.get("passed"):
                return QBrush(FAIL_BG)
        if role == Qt.ItemDataRole.FontRole and first:
            return self._bold
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (3, 4):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class HistoryModel(_Table):
    COLUMNS = ("Time", "Model", "Component", "dtype", "Seed", "Rules", "Result", "Worst rel L2",
               "First divergence", "fastvideo", "torch", "diffusers")

    def run_at(self, row: int) -> ParityRun | None:
        return self.items[row] if 0 <= row < len(self.items) else None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        r: ParityRun = self.items[index.row()]
        col = index.column()
        if role == RunRole:
            return r
        if role == Qt.ItemDataRole.DisplayRole:
            return (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created_at)), Path(r.model_path).name,
                    r.component, r.dtype, str(r.seed), r.rules_label or "arch config", r.verdict,
                    fmt(r.worst_rel_l2), r.first_divergent or "", r.versions.get("fastvideo", ""),
                    r.versions.get("torch", ""), r.versions.get("diffusers", ""))[col]
        if role == SortRole:
            if col == 0:
                return r.created_at
            if col == 4:
                return r.seed
            if col == 7:
                return -1.0 if r.worst_rel_l2 is None else r.worst_rel_l2
            return str(self.data(index) or "")
        if role == Qt.ItemDataRole.ForegroundRole and col == 6:
            return QBrush(PASS_COLOR if r.verdict == "pass" else FAIL_COLOR)
        if role == Qt.ItemDataRole.ToolTipRole:
            return r.error or r.model_path
        return None


class CompareModel(_Table):
    COLUMNS = ("Output", "A max abs", "B max abs", "A rel L2", "B rel L2", "Change")

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        c = self.items[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            a, b = c.get("a_rel_l2"), c.get("b_rel_l2")
            if a is None or b is None:
                change = "only in " + ("A" if b is None else "B")
            elif a == b:
                change = "same"
            else:
                change = f"{'better' if b < a else 'worse'} ({fmt(b - a)})"
            return (c["name"], fmt(c.get("a_max_abs")), fmt(c.get("b_max_abs")), fmt(a), fmt(b), change)[col]
        if role == Qt.ItemDataRole.ForegroundRole and col == 5:
            a, b = c.get("a_rel_l2"), c.get("b_rel_l2")
            if a is not None and b is not None and a != b:
                return QBrush(PASS_COLOR if b < a else FAIL_COLOR)
        return None


class SummaryModel(_Table):
    """"Parity: all components": one row per component -- waiting, running, then its run's verdict, worst
    max abs error and first divergent module.  Items: ``{"component": str, "state": str, "run": ParityRun|None}``."""

    COLUMNS = ("Component", "Verdict", "Max abs error", "First divergent module")

    def run_at(self, row: int) -> ParityRun | None:
        return self.items[row].get("run") if 0 <= row < len(self.items) else None

    def row_of(self, component: str) -> int:
        return next((i for i, it in enumerate(self.items) if it["component"] == component), -1)

    def update(self, component: str, state: str, run: ParityRun | None = None) -> None:
        row = self.row_of(component)
        if row < 0:
            return
        self.items[row] = {"component": component, "state": state, "run": run}
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))

    def verdict(self, row: int) -> str:
        it = self.items[row]
        run = it.get("run")
        if run is None:
            return {"running": "running…", "waiting": "waiting", "skipped": "not run"}.get(it["state"], it["state"])
        return run.verdict.upper()

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        it = self.items[index.row()]
        run: ParityRun | None = it.get("run")
        col = index.column()
        if role == RunRole:
            return run
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return it["component"]
            if col == 1:
                return self.verdict(index.row())
            if run is None:
                return ""
            if col == 2:
                return "" if run.error else fmt(run.worst_max_abs)
            return run.first_divergent or ("—" if not run.error else "")
        if role == Qt.ItemDataRole.ForegroundRole and col == 1 and run is not None:
            return QBrush(PASS_COLOR if run.verdict == "pass" else FAIL_COLOR)
        if role == Qt.ItemDataRole.BackgroundRole and run is not None and run.verdict != "pass":
            return QBrush(FAIL_BG)
        if role == Qt.ItemDataRole.ToolTipRole and run is not None:
            return run.error or (f"run {run.id}" + (f" · rules: {run.rules_label}" if run.rules_label else ""))
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

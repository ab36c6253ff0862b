"""The Models table with "Loads" from the header-only mapping check (``inspect``, as ``fastvideo inspect-mapping``)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.itemmodels.models_list import ModelEntry, ModelsTableModel, SortRole

PROBLEMS = (("duplicate_target", "duplicate target"), ("missing", "missing"), ("unexpected", "unexpected"),
            ("shape_mismatch", "wrong shape"))
LOADS_COLUMN = 6


class FitModelsTableModel(ModelsTableModel):
    """The models table, with "Loads" from the header-only mapping check (what ``fastvideo inspect-mapping``
    does): "checking…" until the inference process answers, "no — checkpoint does not fit" when it does not."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.fit: dict[str, dict] = {}  # str(path) -> {"state": pending|ok|bad|error, "problems": {...}, ...}

    def fit_of(self, e: ModelEntry) -> dict | None:
        return self.fit.get(str(e.path))

    def loads_text(self, e: ModelEntry) -> str:
        f = self.fit_of(e)
        if e.loads and f is not None:
            if f["state"] == "pending":
                return "checking…"
            if f["state"] == "bad":
                return "no — checkpoint does not fit"
        return e.loads_text

    def loads(self, e: ModelEntry) -> bool:
        f = self.fit_of(e)
        return e.loads and (f is None or f["state"] in ("ok", "error"))

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if index.isValid() and index.column() == LOADS_COLUMN and 0 <= index.row() < len(self.entries):
            e = self.entries[index.row()]
            if role in (Qt.ItemDataRole.DisplayRole, SortRole):
                text = self.loads_text(e)
                return text if role == Qt.ItemDataRole.DisplayRole else text.lower()
            if role == Qt.ItemDataRole.ForegroundRole:
                from PySide6.QtGui import QColor

                return QColor("#45c486") if self.loads(e) else QColor("#d9a441")
            if role == Qt.ItemDataRole.ToolTipRole and (self.fit_of(e) or {}).get("summary"):
                return f"{e.path}\n{self.fit_of(e)['summary']}"
        return super().data(index, role)

    def fit_changed(self, path: str) -> None:
        for row, e in enumerate(self.entries):
            if str(e.path) == path:
                self.dataChanged.emit(self.index(row, 0), self.index(row, self.columnCount() - 1))

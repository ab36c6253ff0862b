"""An editable combo of installed model folders: shows folder names, holds full paths, accepts typed paths."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox


class ModelPathCombo(QComboBox):
    def __init__(self, min_width: int = 320, parent=None):
        super().__init__(parent)
        self.setEditable(True)
        self.setMinimumWidth(min_width)
        self.lineEdit().setPlaceholderText("Diffusers-layout model folder")

    def set_models(self, paths: list[str]) -> None:
        """Offer ``paths`` (named by folder, full path as tooltip); the typed text stays, no signals fire."""
        current = self.currentText()
        self.blockSignals(True)
        self.clear()
        for p in paths:
            self.addItem(Path(p).name, p)
            self.setItemData(self.count() - 1, p, Qt.ItemDataRole.ToolTipRole)
        self.setEditText(current)
        self.blockSignals(False)

    def select_path(self, path: str) -> None:
        """Choose ``path``: its item (the name shows, the path is the tooltip) when listed, else the typed path."""
        i = self.findData(str(path))
        if i >= 0:
            self.setCurrentIndex(i)
            self.setEditText(self.itemText(i))
        else:
            self.setEditText(str(path))
        self.setToolTip(str(path))

    def model_path(self) -> str:
        """The chosen item's full path, or the typed text."""
        text = self.currentText().strip()
        i = self.currentIndex()  # the chosen item first: two folders may share a name
        if i < 0 or self.itemText(i) != text:
            i = self.findText(text)
        if i >= 0 and self.itemData(i):
            return str(self.itemData(i))
        return text

"""Scaffolding the studio's panels share: choosers, error labels, table columns, rich-text escaping."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
)

WEIGHT_COMPONENTS = ("transformer", "vae", "text_encoder", "image_encoder")


def component_combo() -> QComboBox:
    """A component chooser wide enough for every component name ("text_encoder", "image_encoder")."""
    combo = QComboBox()
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(max(len(c) for c in WEIGHT_COMPONENTS) + 1)
    return combo


def error_label() -> QLabel:
    """A multi-line error shown as plain text: its line breaks stay, nothing is read as HTML."""
    label = QLabel()
    label.setObjectName("fieldError")
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.hide()
    return label


def fit_columns(view: QTableView, stretch: tuple[int, ...], samples: dict[int, str]) -> None:
    """Columns that always fit the view: ``stretch`` ones share the room left by the others, each of which is
    as wide as its header or its ``samples`` text (no column is ever pushed out of sight)."""
    hh = view.horizontalHeader()
    hh.setStretchLastSection(False)
    hh.setMinimumSectionSize(24)
    fm = view.fontMetrics()
    model = view.model()
    for col in range(model.columnCount()):
        if col in stretch:
            hh.setSectionResizeMode(col, QHeaderView.ResizeMode.Stretch)
            continue
        title = str(model.headerData(col, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole) or "")
        width = max(fm.horizontalAdvance(title), fm.horizontalAdvance(samples.get(col, ""))) + 24
        hh.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
        view.setColumnWidth(col, width)

def data_table(model, sortable: bool = False) -> QTableView:
    """A read-only table of whole rows, one line each, columns sized by hand."""
    t = QTableView()
    t.setModel(model)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setAlternatingRowColors(True)
    t.verticalHeader().hide()
    t.verticalHeader().setDefaultSectionSize(24)
    t.horizontalHeader().setStretchLastSection(True)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    t.setSortingEnabled(sortable)
    return t


def browse_row(edit: QLineEdit, button_text: str = "Browse…") -> tuple[QHBoxLayout, QPushButton]:
    """``edit`` with a button beside it (the caller connects the button)."""
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    b = QPushButton(button_text)
    row.addWidget(b)
    return row, b


def esc(text: str) -> str:
    """``text`` safe inside a rich-text label."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

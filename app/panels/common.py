"""Scaffolding the studio's panels share: choosers, error labels, table columns, rich-text escaping."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTabBar,
    QTableView,
    QVBoxLayout,
    QWidget,
)

#: a component chooser shows names this long in full ("text_encoder", "transformer_2", "image_encoder")
COMPONENT_NAME_CHARS = 14


def component_combo() -> QComboBox:
    """A component chooser wide enough for every component name ("text_encoder", "image_encoder")."""
    combo = QComboBox()
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(COMPONENT_NAME_CHARS)
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
    # Measure with the theme's fonts and paddings (the application style sheet), not the defaults the
    # widgets have before they are polished: a header is as wide as its text and padding.
    view.ensurePolished()
    hh.ensurePolished()
    fm = view.fontMetrics()
    hfm = hh.fontMetrics()
    model = view.model()
    for col in range(model.columnCount()):
        if col in stretch:
            hh.setSectionResizeMode(col, QHeaderView.ResizeMode.Stretch)
            continue
        title = str(model.headerData(col, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole) or "")
        width = max(hfm.horizontalAdvance(title) + 22, hh.sectionSizeHint(col),
                    fm.horizontalAdvance(samples.get(col, "")) + 16)
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


def form_tab(tab: QWidget, form: QFormLayout, buttons: tuple[QPushButton, ...],
             below: tuple[QWidget, ...]) -> QVBoxLayout:
    """A tab's layout: the form, its buttons on one row (left), then ``below`` (progress, notes), top-aligned."""
    row = QHBoxLayout()
    for b in buttons:
        row.addWidget(b)
    row.addStretch(1)
    lay = QVBoxLayout(tab)
    lay.addLayout(form)
    lay.addLayout(row)
    for w in below:
        lay.addWidget(w)
    lay.addStretch(1)
    return lay


def esc(text: str) -> str:
    """``text`` safe inside a rich-text label."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ModelChooserMixin:
    """A model folder and one of its components (``model_combo``, ``component_combo``, ``browse_button``); the
    panel lists the folder's components in ``_model_changed`` (through :meth:`_set_components`)."""

    def set_models(self, paths: list[str]) -> None:
        self.model_combo.set_models(paths)

    def current_model_path(self) -> str:
        return self.model_combo.model_path()

    def set_model(self, path: str, component: str | None = None) -> None:
        self.model_combo.select_path(str(path))
        self._model_changed()
        if component:
            i = self.component_combo.findText(component)
            if i >= 0:
                self.component_combo.setCurrentIndex(i)

    def _set_components(self, comps: list[str]) -> None:
        """Offer ``comps``, keeping the chosen component when the new folder has it too."""
        current = self.component_combo.currentText()
        self.component_combo.clear()
        self.component_combo.addItems(comps)
        if current in comps:
            self.component_combo.setCurrentText(current)
        self._update_buttons()

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Model folder", self.current_model_path() or os.getcwd())
        if path:
            self.set_model(path)


def key_table(owner, proxy, tab_labels, search_placeholder: str) -> None:
    """The filterable key table of the mapping inspector and its LoRA view, made on ``owner``: ``status_tabs``
    (one tab per label), ``search_edit``, ``regex_check``, ``search_error`` and ``table`` (read-only, sortable,
    one row selected at a time, long keys elided in the middle so both ends stay visible) showing ``proxy``."""
    owner.status_tabs = QTabBar()
    owner.status_tabs.setExpanding(False)
    owner.status_tabs.setDrawBase(False)
    for label in tab_labels:
        owner.status_tabs.addTab(label)
    owner.search_edit = QLineEdit()
    owner.search_edit.setPlaceholderText(search_placeholder)
    owner.search_edit.setClearButtonEnabled(True)
    owner.regex_check = QCheckBox("Regex")
    owner.search_error = QLabel()
    owner.search_error.setObjectName("fieldError")
    owner.search_error.hide()
    table = owner.table = QTableView()
    table.setModel(proxy)
    table.setSortingEnabled(True)
    table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(24)
    table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # keep both ends of a long key

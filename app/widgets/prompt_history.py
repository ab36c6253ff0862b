"""Prompt history for the Generate panel's prompt box: autocomplete from past prompts while typing (every
typed word must appear; the most recently used first) and a searchable list (``History…``).

``source(search) -> [prompt, ...]`` supplies the prompts (the job database: ``JobsDB.recent_prompts``)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QStringListModel, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

MIN_CHARS = 3
MAX_SUGGESTIONS = 12


def one_line(text: str, n: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


class PromptHistoryDialog(QDialog):
    """Search every past prompt; double-click (or OK) puts one into the prompt box."""

    def __init__(self, source: Callable[[str], list[str]], search: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Prompt history")
        self.resize(640, 420)
        self.source = source
        self.search = QLineEdit(search)
        self.search.setPlaceholderText("Search past prompts…")
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.count = QLabel()
        self.count.setObjectName("dimLabel")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Use prompt")
        lay = QVBoxLayout(self)
        lay.addWidget(self.search)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.count)
        lay.addWidget(buttons)
        self.search.textChanged.connect(self.refresh)
        self.list.itemDoubleClicked.connect(lambda _i: self.accept())
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.refresh()

    def refresh(self) -> None:
        self.list.clear()
        prompts = self.source(self.search.text())
        for p in prompts:
            item = QListWidgetItem(one_line(p, 400))
            item.setData(Qt.ItemDataRole.UserRole, p)
            item.setToolTip(p)
            self.list.addItem(item)
        if prompts:
            self.list.setCurrentRow(0)
        self.count.setText(f"{len(prompts)} prompt{'s' if len(prompts) != 1 else ''}"
                           + (" match" if self.search.text().strip() else ""))

    def chosen(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None


class PromptHistory(QObject):
    """Attach to a prompt box: autocomplete while typing (Ctrl+Space: every past prompt) and ``button``
    (``History…``) for the searchable list."""

    #: a past prompt was put into the box
    used = Signal(str)

    def __init__(self, edit: QPlainTextEdit, source: Callable[[str], list[str]]):
        super().__init__(edit)
        self.edit = edit
        self.source = source
        self.model = QStringListModel(self)
        self.completer = QCompleter(self.model, self)
        self.completer.setWidget(edit)
        self.completer.setCompletionMode(QCompleter.CompletionMode.UnfilteredPopupCompletion)
        self.completer.setMaxVisibleItems(MAX_SUGGESTIONS)
        self.completer.activated[str].connect(self._activated)
        self.prompts: list[str] = []  # full texts behind the popup's one-line rows
        self.button = QPushButton("History…")
        self.button.setToolTip("Search the prompts you used before (Ctrl+Space in the prompt box: suggestions)")
        self.button.clicked.connect(self.open_dialog)
        self._setting = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(150)
        self._timer.timeout.connect(lambda: self.suggest())
        edit.textChanged.connect(self._typed)
        QShortcut(QKeySequence("Ctrl+Space"), edit, activated=lambda: self.suggest(force=True),
                  context=Qt.ShortcutContext.WidgetShortcut)

    def _typed(self) -> None:
        if not self._setting and self.edit.hasFocus():
            self._timer.start()

    def suggest(self, force: bool = False) -> list[str]:
        """Show the past prompts that contain every typed word (all of them with ``force``); returns them."""
        self._timer.stop()
        text = self.edit.toPlainText().strip()
        if not force and len(text) < MIN_CHARS:
            self.completer.popup().hide()
            return []
        prompts = [p for p in self.source("" if force else text) if p.strip() != text][:MAX_SUGGESTIONS]
        self.prompts = prompts
        self.model.setStringList([one_line(p) for p in prompts])
        if not prompts:
            self.completer.popup().hide()
            return []
        rect = self.edit.cursorRect()
        rect.setWidth(max(320, self.edit.width() - rect.x()))
        self.completer.complete(rect)
        return prompts

    def _activated(self, shown: str) -> None:
        full = next((p for p in self.prompts if one_line(p) == shown), shown)
        self.use(full)

    def use(self, prompt: str) -> None:
        self._setting = True
        self.edit.setPlainText(prompt)
        self._setting = False
        self.completer.popup().hide()
        self.edit.moveCursor(QTextCursor.MoveOperation.End)
        self.used.emit(prompt)

    def open_dialog(self) -> str | None:
        dialog = PromptHistoryDialog(self.source, "", self.edit.window())
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.chosen():
            self.use(dialog.chosen())
            return dialog.chosen()
        return None

"""The player's Export menu: the current frame as PNG, a clip (a frame range) as GIF or WebP, scaled up with
crisp pixels by a whole factor if wanted. The work (decode + encode) runs off the GUI thread
(:mod:`app.services.export`)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QMenu,
    QSpinBox,
    QToolButton,
    QWidget,
)

from app.services.background import run_in_background
from app.services.export import CLIP_FORMATS, MAX_SCALE, export_clip, export_frame


def default_scale(width: int) -> int:
    """A whole factor that makes a small video at least ~512 pixels wide (1 for a large one)."""
    return max(1, min(MAX_SCALE, 512 // max(1, int(width))))


class ClipDialog(QDialog):
    """First frame, last frame, scale and format of a clip."""

    def __init__(self, frames: int, current: int, width: int, fmt: str = "gif", parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export a clip")
        self.start = QSpinBox()
        self.end = QSpinBox()
        for spin in (self.start, self.end):
            spin.setRange(1, max(1, frames))
        self.start.setValue(1)
        self.end.setValue(max(1, frames))
        self.scale = QSpinBox()
        self.scale.setRange(1, MAX_SCALE)
        self.scale.setSuffix("×")
        self.scale.setValue(default_scale(width))
        self.scale.setToolTip("Scale up by a whole factor with nearest-neighbour (crisp pixels)")
        self.format = QComboBox()
        for key in CLIP_FORMATS:
            self.format.addItem(key.upper(), key)
        self.format.setCurrentIndex(list(CLIP_FORMATS).index(fmt))
        form = QFormLayout(self)
        form.addRow("First frame", self.start)
        form.addRow("Last frame", self.end)
        form.addRow("Scale", self.scale)
        form.addRow("Format", self.format)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


class ExportButton(QToolButton):
    """``Export ▾`` for a :class:`~app.widgets.video_player.VideoPlayer` (its ``path``, ``index``, frames)."""

    exported = Signal(str)  # the written file
    failed = Signal(str)  # why not

    def __init__(self, player, parent: QWidget | None = None):
        super().__init__(parent)
        self.player = player
        self.setText("Export")
        self.setToolTip("Export the current frame as PNG, or a clip as GIF or WebP")
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self)
        self.frame_action = menu.addAction("Current frame as PNG…", self.ask_frame)
        self.gif_action = menu.addAction("Clip as GIF…", lambda: self.ask_clip("gif"))
        self.webp_action = menu.addAction("Clip as WebP…", lambda: self.ask_clip("webp"))
        self.setMenu(menu)
        self.busy = False

    def _stem(self) -> Path:
        return Path(self.player.path or "video")

    def _width(self) -> int:
        return self.player.frames[0].width() if self.player.frames else 512

    def ask_frame(self) -> None:
        stem = self._stem()
        suggestion = str(stem.with_name(f"{stem.stem}_frame{self.player.index + 1:03d}.png"))
        out, _ = QFileDialog.getSaveFileName(self, "Export the current frame", suggestion, "PNG image (*.png)")
        if out:
            self.export_frame(out, default_scale(self._width()))

    def ask_clip(self, fmt: str) -> None:
        dialog = ClipDialog(len(self.player.frames), self.player.index, self._width(), fmt, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        fmt = dialog.format.currentData()
        stem = self._stem()
        out, _ = QFileDialog.getSaveFileName(self, "Export a clip", str(stem.with_suffix(f".{fmt}")),
                                             f"{fmt.upper()} animation (*.{fmt})")
        if out:
            if not out.lower().endswith(f".{fmt}"):
                out += f".{fmt}"
            self.export_clip(out, dialog.start.value() - 1, dialog.end.value() - 1, dialog.scale.value())

    # ------------------------------------------------------------------ the work (tests call these)
    def export_frame(self, out: str, scale: int = 1) -> None:
        path, index = self.player.path, self.player.index
        self._run(lambda: export_frame(path, index, out, scale))

    def export_clip(self, out: str, start: int, end: int | None, scale: int = 1) -> None:
        path = self.player.path
        self._run(lambda: export_clip(path, out, start, end, scale))

    def _run(self, fn) -> None:
        if not self.player.path:
            self.failed.emit("No video to export.")
            return
        self.busy = True
        self.setEnabled(False)

        def done(path) -> None:
            self.busy = False
            self.setEnabled(True)
            self.exported.emit(str(path))

        def error(exc) -> None:
            self.busy = False
            self.setEnabled(True)
            self.failed.emit(str(exc))

        run_in_background(fn, done, error)

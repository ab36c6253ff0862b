"""File pickers with a thumbnail: an input image (I2V) and an input video (V2V)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from app.services.background import run_in_background
from app.widgets.frame_view import frame_to_qimage

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp)"
VIDEO_FILTER = "Videos (*.mp4 *.mov *.mkv *.webm *.avi)"


class MediaPicker(QWidget):
    """A path field, a Browse button and a thumbnail of the chosen file."""

    changed = Signal(str)

    def __init__(self, kind: str, parent: QWidget | None = None):
        super().__init__(parent)
        assert kind in ("image", "video")
        self.kind = kind
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("Choose an image…" if kind == "image" else "Choose a video…")
        self.browse = QPushButton("Browse…", self)
        self.thumb = QLabel(self)
        self.thumb.setObjectName("thumbnail")
        self.thumb.setFixedSize(128, 80)
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumb.setText("No file")
        self.info = QLabel(self)
        self.info.setObjectName("dimLabel")
        self.info.setWordWrap(True)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.browse)
        col = QVBoxLayout()
        col.setContentsMargins(0, 0, 0, 0)
        col.addLayout(row)
        col.addWidget(self.info)
        col.addStretch(1)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(col, 1)
        lay.addWidget(self.thumb)
        self._token = 0
        self.browse.clicked.connect(self._browse)
        self.edit.editingFinished.connect(lambda: self.set_path(self.edit.text().strip()))

    def path(self) -> str:
        return self.edit.text().strip()

    def set_path(self, path: str | None) -> None:
        path = path or ""
        if self.edit.text() != path:
            self.edit.setText(path)
        self._token += 1
        token = self._token
        self.info.setText("")
        if not path:
            self.thumb.setPixmap(QPixmap())
            self.thumb.setText("No file")
        elif not Path(path).is_file():
            self.thumb.setPixmap(QPixmap())
            self.thumb.setText("Not found")
        else:
            self.thumb.setText("…")
            run_in_background(lambda: self._load(path), lambda r: self._show(token, r),
                              lambda e: self._show_error(token, e))
        self.changed.emit(path)

    def _browse(self) -> None:
        start = str(Path(self.path()).parent) if self.path() else ""
        flt = IMAGE_FILTER if self.kind == "image" else VIDEO_FILTER
        path, _ = QFileDialog.getOpenFileName(self, "Choose an input " + self.kind, start, flt)
        if path:
            self.set_path(path)

    def _load(self, path: str) -> tuple[QImage, str]:
        from fastvideo.utils import media

        if self.kind == "image":
            frame = media.read_image(path)
            return frame_to_qimage(frame), f"{frame.shape[1]}×{frame.shape[0]}"
        frames, fps = media.read_video(path, max_frames=1)
        return frame_to_qimage(frames[0]), f"{frames.shape[2]}×{frames.shape[1]}, {fps:g} fps"

    def _show(self, token: int, result: tuple[QImage, str]) -> None:
        if token != self._token:
            return
        image, info = result
        pix = QPixmap.fromImage(image).scaled(self.thumb.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                              Qt.TransformationMode.SmoothTransformation)
        self.thumb.setPixmap(pix)
        self.info.setText(info)

    def _show_error(self, token: int, exc: BaseException) -> None:
        if token != self._token:
            return
        self.thumb.setPixmap(QPixmap())
        self.thumb.setText("Unreadable")
        self.info.setText(str(exc))

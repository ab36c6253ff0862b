"""Live preview: animates the latest previewed frames of a running job."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.widgets.frame_view import FrameView


class PreviewPlayer(QWidget):
    """Call :meth:`set_frames` with each new preview; it loops through them at ``fps``."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.view = FrameView(self, "Waiting for the first preview…")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view)
        self.frames: list = []
        self.index = 0
        self.updates = 0
        self.step = 0
        self.total = 0
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._advance)
        self.set_fps(8)

    def set_fps(self, fps: int) -> None:
        self._timer.setInterval(int(1000 / max(1, min(int(fps or 8), 30))))

    def set_frames(self, frames: np.ndarray, step: int = 0, total: int = 0, fps: int = 0) -> None:
        if frames is None or len(frames) == 0:
            return
        if fps:
            self.set_fps(fps)
        # Convert once here; painting then only scales.
        from app.widgets.frame_view import frame_to_qimage

        self.frames = [frame_to_qimage(f) for f in frames]
        self.step, self.total = step, total
        self.updates += 1
        self.index %= len(self.frames)
        self.view.set_frame(self.frames[self.index])
        if len(self.frames) > 1 and not self._timer.isActive():
            self._timer.start()

    def clear(self, text: str = "Waiting for the first preview…") -> None:
        self._timer.stop()
        self.frames = []
        self.index = 0
        self.updates = 0
        self.view.set_frame(None)
        self.view.set_placeholder(text)

    def _advance(self) -> None:
        if not self.frames:
            self._timer.stop()
            return
        self.index = (self.index + 1) % len(self.frames)
        self.view.set_frame(self.frames[self.index])

    def hideEvent(self, event) -> None:  # noqa: N802
        self._timer.stop()
        super().hideEvent(event)

    def showEvent(self, event) -> None:  # noqa: N802
        if len(self.frames) > 1:
            self._timer.start()
        super().showEvent(event)

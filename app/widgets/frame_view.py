"""A widget that shows one RGB frame (numpy uint8 [h, w, 3]) scaled to fit."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget


def frame_to_qimage(frame: np.ndarray) -> QImage:
    frame = np.ascontiguousarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected uint8 [h, w, 3], got {frame.dtype} {list(frame.shape)}")
    h, w, _ = frame.shape
    return QImage(frame.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class FrameView(QWidget):
    def __init__(self, parent: QWidget | None = None, placeholder: str = ""):
        super().__init__(parent)
        self._image: QImage | None = None
        self._placeholder = placeholder
        self.smooth = True
        #: small images scaled up by whole factors with nearest-neighbour (crisp pixels), not smoothed
        self.crisp = False
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 100)
        self.setObjectName("frameView")

    def sizeHint(self) -> QSize:
        return QSize(640, 400)

    def set_frame(self, frame: np.ndarray | QImage | None) -> None:
        if frame is None:
            self._image = None
        elif isinstance(frame, QImage):
            self._image = frame
        else:
            self._image = frame_to_qimage(frame)
        self.update()

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def has_image(self) -> bool:
        return self._image is not None

    def image(self) -> QImage | None:
        return self._image

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#0d0f12"))
        if self._image is None or self._image.isNull():
            if self._placeholder:
                p.setPen(QColor("#7c8591"))
                p.drawText(self.rect().adjusted(12, 12, -12, -12), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                           self._placeholder)
            return
        iw, ih = self._image.width(), self._image.height()
        scale = min(self.width() / iw, self.height() / ih)
        crisp = self.crisp and scale >= 1.0
        if crisp and scale >= 2.0:
            scale = float(int(scale))  # whole pixels: every source pixel the same size
        w, h = max(1, int(iw * scale)), max(1, int(ih * scale))
        target = QRect((self.width() - w) // 2, (self.height() - h) // 2, w, h)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth and not crisp)
        p.drawImage(target, self._image)

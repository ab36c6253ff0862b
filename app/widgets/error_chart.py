"""A small chart of the error by layer (QPainter, log scale): one bar per compared module,
green when it passes, red when not, the first divergent one outlined and labelled."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

PASS = QColor("#45c486")
FAIL = QColor("#ff6b6b")
GRID = QColor("#232830")
TEXT = QColor("#8b95a3")
FLOOR = 1e-12


class ErrorByLayerChart(QWidget):
    #: the index of the bar clicked
    bar_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.entries: list[dict[str, Any]] = []
        self.metric_name = "rel_l2"
        self.first = -1
        self.tolerance: float | None = None
        self.setMinimumHeight(120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMouseTracking(True)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(480, 150)

    def set_entries(self, entries: list[dict[str, Any]], tolerance: float | None = None) -> None:
        self.entries = list(entries)
        self.first = next((i for i, e in enumerate(self.entries) if not e.get("passed")), -1)
        self.tolerance = tolerance
        self.setToolTip("")
        self.update()

    def values(self) -> list[float]:
        out = []
        for e in self.entries:
            v = e.get(self.metric_name)
            out.append(FLOOR if v is None or (isinstance(v, float) and math.isnan(v)) else max(float(v), FLOOR))
        return out

    def _plot_rect(self) -> QRectF:
        return QRectF(44, 8, max(10, self.width() - 52), max(10, self.height() - 30))

    def _y(self, v: float, lo: float, hi: float, r: QRectF) -> float:
        t = (math.log10(v) - lo) / (hi - lo) if hi > lo else 0.0
        return r.bottom() - max(0.0, min(1.0, t)) * r.height()

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = self._plot_rect()
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.8))
        p.setFont(font)
        if not self.entries:
            p.setPen(TEXT)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Error by layer appears here for a failing run")
            return
        vals = self.values()
        finite = [v for v in vals if math.isfinite(v) and v > FLOOR]  # exact zeros sit on the axis
        lo = math.floor(math.log10(min(finite))) - 1 if finite else -8
        hi = math.ceil(math.log10(max(finite))) if finite else 0
        if hi <= lo:
            hi = lo + 1
        lo = max(lo, -12)
        # grid: one line per decade (at most ~6 labels)
        step = max(1, (hi - lo) // 5)
        for d in range(lo, hi + 1, step):
            y = self._y(10.0 ** d, lo, hi, r)
            p.setPen(QPen(GRID, 1))
            p.drawLine(QPointF(r.left(), y), QPointF(r.right(), y))
            p.setPen(TEXT)
            p.drawText(QRectF(0, y - 8, r.left() - 4, 16), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       f"1e{d}")
        if self.tolerance:
            y = self._y(self.tolerance, lo, hi, r)
            p.setPen(QPen(QColor("#d9a441"), 1, Qt.PenStyle.DashLine))
            p.drawLine(QPointF(r.left(), y), QPointF(r.right(), y))
        n = len(vals)
        w = r.width() / n
        for i, v in enumerate(vals):
            color = PASS if self.entries[i].get("passed") else FAIL
            v = v if math.isfinite(v) else 10.0 ** hi
            top = self._y(v, lo, hi, r)
            top = min(top, r.bottom() - 2)  # an exact match still shows as a stub
            bar = QRectF(r.left() + i * w + w * 0.15, top, max(1.0, w * 0.7), r.bottom() - top)
            p.fillRect(bar, color if i != self.first else color.lighter(130))
            if i == self.first:
                p.setPen(QPen(QColor("#ffffff"), 1.5))
                p.drawRect(bar.adjusted(-1, -1, 1, 1))
        p.setPen(TEXT)
        label = f"{self.metric_name.replace('_', ' ')} per module ({n}, execution order)"
        if self.first >= 0:
            label += f" — first divergence #{self.first}: {self.entries[self.first].get('ours', '')}"
        p.drawText(QRectF(r.left(), r.bottom() + 4, r.width(), 18), Qt.AlignmentFlag.AlignLeft, label)

    def index_at(self, x: float) -> int:
        r = self._plot_rect()
        if not self.entries or not (r.left() <= x <= r.right()):
            return -1
        return min(len(self.entries) - 1, int((x - r.left()) / (r.width() / len(self.entries))))

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        i = self.index_at(event.position().x())
        if i >= 0:
            e = self.entries[i]
            self.setToolTip(f"#{i} {e.get('ours')} ↔ {e.get('reference')}\n"
                            f"{self.metric_name} {e.get(self.metric_name)}  {'pass' if e.get('passed') else 'FAIL'}")

    def mousePressEvent(self, event) -> None:  # noqa: N802
        i = self.index_at(event.position().x())
        if i >= 0:
            self.bar_clicked.emit(i)

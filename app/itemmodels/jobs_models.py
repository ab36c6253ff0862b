"""Qt item models over the job database: the queue (table) and the history (gallery)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractListModel, QAbstractTableModel, QMimeData, QModelIndex, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPixmap

from app.services.jobs_db import RUNNING, Job, JobsDB
from app.services.runner import JobRunner, format_duration
from app.services.thumbnails import THUMB_H, THUMB_W, Thumbnails

JobRole = Qt.ItemDataRole.UserRole + 1
JOB_MIME = "application/x-fastvideo-job-id"

STATE_COLORS = {
    "queued": "#9aa4b1", "running": "#4aa3ff", "done": "#45c486", "failed": "#ff6b6b",
    "cancelled": "#d9a441", "interrupted": "#d9a441",
}


def short_model(path: str) -> str:
    return Path(path.rstrip("/\\")).name or path


class QueueModel(QAbstractTableModel):
    """The running job then the queued ones, in order; drag rows to reorder."""

    COLUMNS = ("#", "State", "Prompt", "Model", "Size", "Frames", "Steps", "Seed", "Progress")

    def __init__(self, db: JobsDB, runner: JobRunner, parent=None):
        super().__init__(parent)
        self.db = db
        self.runner = runner
        self.jobs: list[Job] = []
        self.refresh()
        runner.jobs_changed.connect(self.refresh)
        runner.job_progress.connect(self._on_progress)

    def refresh(self) -> None:
        self.beginResetModel()
        self.jobs = self.db.queue()
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.jobs)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.COLUMNS[section]
        return None

    def job_at(self, row: int) -> Job | None:
        return self.jobs[row] if 0 <= row < len(self.jobs) else None

    def row_of(self, job_id: int) -> int:
        return next((i for i, j in enumerate(self.jobs) if j.id == job_id), -1)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        job = self.jobs[index.row()]
        col = index.column()
        if role == JobRole:
            return job
        if role == Qt.ItemDataRole.DisplayRole:
            p = job.params
            if col == 0:
                return str(job.id)
            if col == 1:
                return job.state
            if col == 2:
                return job.prompt.replace("\n", " ")
            if col == 3:
                return short_model(job.model_path)
            if col == 4:
                return job.size_text
            if col == 5:
                return str(p.get("num_frames", ""))
            if col == 6:
                return str(p.get("num_inference_steps", ""))
            if col == 7:
                return str(p.get("seed", ""))
            if col == 8:
                if job.state == RUNNING:
                    prog = self.runner.last_progress(job.id)
                    if prog:
                        step, total, elapsed, remaining = prog
                        return f"step {step}/{total} · {format_duration(remaining)} left"
                    return "starting…"
                return "waiting"
        if role == Qt.ItemDataRole.ToolTipRole and col in (2, 3):
            return job.prompt if col == 2 else job.model_path
        if role == Qt.ItemDataRole.ForegroundRole and col == 1:
            return QColor(STATE_COLORS.get(job.state, "#c8d0da"))
        return None

    def _on_progress(self, job_id: int, *_args) -> None:
        row = self.row_of(job_id)
        if row >= 0:
            idx = self.index(row, len(self.COLUMNS) - 1)
            self.dataChanged.emit(idx, idx)

    # -- drag to reorder (queued rows only)
    def flags(self, index: QModelIndex):
        base = super().flags(index)
        if not index.isValid():
            return base | Qt.ItemFlag.ItemIsDropEnabled
        if self.jobs[index.row()].state != RUNNING:
            base |= Qt.ItemFlag.ItemIsDragEnabled
        return base

    def supportedDropActions(self):  # noqa: N802
        return Qt.DropAction.MoveAction

    def mimeTypes(self):  # noqa: N802
        return [JOB_MIME]

    def mimeData(self, indexes):  # noqa: N802
        data = QMimeData()
        rows = sorted({i.row() for i in indexes if i.isValid()})
        if rows:
            data.setData(JOB_MIME, str(self.jobs[rows[0]].id).encode())
        return data

    def dropMimeData(self, data, action, row, column, parent):  # noqa: N802
        if not data.hasFormat(JOB_MIME):
            return False
        job_id = int(bytes(data.data(JOB_MIME)).decode())
        if row < 0:
            row = parent.row() if parent.isValid() else len(self.jobs)
        queued_before = sum(1 for j in self.jobs[:row] if j.state != RUNNING and j.id != job_id)
        self.runner.move(job_id, queued_before)
        return False  # the model refreshes from the database; Qt must not delete rows itself


class HistoryModel(QAbstractListModel):
    """Finished jobs (newest first) with thumbnails, filtered by prompt text and state."""

    def __init__(self, db: JobsDB, runner: JobRunner, thumbnails: Thumbnails, parent=None):
        super().__init__(parent)
        self.db = db
        self.thumbnails = thumbnails
        self.search = ""
        self.states: tuple[str, ...] = ("done", "failed", "cancelled", "interrupted")
        self.jobs: list[Job] = []
        self._placeholders: dict[str, QIcon] = {}
        runner.jobs_changed.connect(self.refresh)
        thumbnails.ready.connect(self._on_thumb)
        self.refresh()

    def set_filter(self, search: str | None = None, states: tuple[str, ...] | None = None) -> None:
        if search is not None:
            self.search = search
        if states is not None:
            self.states = states
        self.refresh()

    def refresh(self) -> None:
        self.beginResetModel()
        self.jobs = self.db.history(self.search, self.states)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.jobs)

    def job_at(self, row: int) -> Job | None:
        return self.jobs[row] if 0 <= row < len(self.jobs) else None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        job = self.jobs[index.row()]
        if role == JobRole:
            return job
        if role == Qt.ItemDataRole.DisplayRole:
            prompt = job.prompt.replace("\n", " ")
            prompt = prompt if len(prompt) <= 30 else prompt[:28].rstrip() + "…"
            when = time.strftime("%b %d %H:%M", time.localtime(job.finished_at or job.created_at))
            state = "" if job.state == "done" else f" · {job.state}"
            return f"{prompt}\n{when}{state}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return job.prompt + (f"\n\n{job.error}" if job.error else "")
        if role == Qt.ItemDataRole.DecorationRole:
            if job.state == "done":
                pix = self.thumbnails.get(job.id, job.output_path)
                if pix is not None:
                    return QIcon(pix)
            return self._placeholder(job.state)
        if role == Qt.ItemDataRole.SizeHintRole:
            return QSize(THUMB_W + 12, THUMB_H + 46)
        return None

    def _placeholder(self, state: str) -> QIcon:
        icon = self._placeholders.get(state)
        if icon is None:
            from PySide6.QtGui import QPainter

            pix = QPixmap(THUMB_W, THUMB_H)
            pix.fill(QColor("#1a1e24"))
            p = QPainter(pix)
            p.setPen(QColor(STATE_COLORS.get(state, "#9aa4b1")))
            p.drawText(pix.rect(), Qt.AlignmentFlag.AlignCenter, {"done": "no preview"}.get(state, state))
            p.end()
            icon = self._placeholders[state] = QIcon(pix)
        return icon

    def _on_thumb(self, job_id: int) -> None:
        for row, job in enumerate(self.jobs):
            if job.id == job_id:
                idx = self.index(row)
                self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])
                return

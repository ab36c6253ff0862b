"""The Queue panel: running and waiting jobs; reorder, pause/resume, remove,
cancel; and the inference process's log."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.itemmodels.jobs_models import QueueModel
from app.services.jobs_db import RUNNING
from app.services.studio import Studio


class QueuePanel(QWidget):
    def __init__(self, studio: Studio, parent: QWidget | None = None):
        super().__init__(parent)
        self.studio = studio
        self.runner = studio.runner
        self.model = QueueModel(studio.db, studio.runner, self)

        title = QLabel("Queue")
        title.setObjectName("panelTitle")
        self.pause_button = QPushButton()
        self.pause_button.setCheckable(True)
        self.up_button = QPushButton("Move up")
        self.down_button = QPushButton("Move down")
        self.top_button = QPushButton("To top")
        self.remove_button = QPushButton("Remove")
        self.cancel_button = QPushButton("Cancel running")
        self.cancel_button.setObjectName("dangerButton")
        self.banner = QLabel("The queue is paused: waiting jobs start when you resume it.")
        self.banner.setObjectName("pausedBanner")
        self.worker_label = QLabel()
        self.worker_label.setObjectName("dimLabel")

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.table.setDragEnabled(True)
        self.table.setAcceptDrops(True)
        self.table.setDropIndicatorShown(True)
        self.table.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.empty_label = QLabel("No jobs waiting. Jobs you add on the Generate panel appear here.")
        self.empty_label.setObjectName("dimLabel")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(3000)
        self.log_view.setObjectName("logView")
        self.log_view.setPlaceholderText("Messages of the inference process appear here.")

        bar = QHBoxLayout()
        for b in (self.pause_button, self.up_button, self.down_button, self.top_button, self.remove_button):
            bar.addWidget(b)
        bar.addStretch(1)
        bar.addWidget(self.cancel_button)
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addLayout(bar)
        tl.addWidget(self.banner)
        tl.addWidget(self.table, 1)
        tl.addWidget(self.empty_label)
        logbox = QWidget()
        ll = QVBoxLayout(logbox)
        ll.setContentsMargins(0, 8, 0, 0)
        lt = QLabel("Inference process log")
        lt.setObjectName("sectionTitle")
        hl = QHBoxLayout()
        hl.addWidget(lt)
        hl.addStretch(1)
        hl.addWidget(self.worker_label)
        ll.addLayout(hl)
        ll.addWidget(self.log_view, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(logbox)
        split.setSizes([480, 200])
        split.setChildrenCollapsible(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 16, 16, 16)
        lay.addWidget(title)
        lay.addWidget(split, 1)

        self.pause_button.toggled.connect(self._toggle_pause)
        self.up_button.clicked.connect(lambda: self._move(-1))
        self.down_button.clicked.connect(lambda: self._move(+1))
        self.top_button.clicked.connect(lambda: self._move(None))
        self.remove_button.clicked.connect(self.remove_selected)
        self.cancel_button.clicked.connect(self._cancel_running)
        QShortcut(QKeySequence.StandardKey.Delete, self.table, activated=self.remove_selected)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        self.model.modelReset.connect(self._after_reset)
        self.runner.paused_changed.connect(self._sync_pause)
        self.runner.log.connect(self._append_log)
        self.runner.notify.connect(lambda msg, level: self._append_log({"level": level, "source": "studio",
                                                                        "message": msg}))
        self.runner.worker_status.connect(self.worker_label.setText)
        self._selected_id: int | None = None
        self._sync_pause(self.runner.paused)
        self._after_reset()

    # ------------------------------------------------------------------ actions
    def selected_job(self):
        rows = self.table.selectionModel().selectedRows()
        return self.model.job_at(rows[0].row()) if rows else None

    def select_job(self, job_id: int) -> None:
        row = self.model.row_of(job_id)
        if row >= 0:
            self.table.selectRow(row)

    def _toggle_pause(self, paused: bool) -> None:
        self.runner.set_paused(paused)
        self._sync_pause(paused)

    def _sync_pause(self, paused: bool) -> None:
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(paused)
        self.pause_button.blockSignals(False)
        self.pause_button.setText("Resume queue" if paused else "Pause queue")
        self.banner.setVisible(paused)

    def _move(self, delta: int | None) -> None:
        job = self.selected_job()
        if job is None or job.state == RUNNING:
            return
        queued = [j for j in self.model.jobs if j.state != RUNNING]
        index = next(i for i, j in enumerate(queued) if j.id == job.id)
        self.runner.move(job.id, 0 if delta is None else index + delta)

    def remove_selected(self) -> None:
        job = self.selected_job()
        if job is not None and job.state != RUNNING:
            self.runner.remove(job.id)

    def _cancel_running(self) -> None:
        if self.runner.current is not None:
            self.runner.cancel(self.runner.current)

    # ------------------------------------------------------------------ view state
    def _after_reset(self) -> None:
        if self._selected_id is not None:
            self.select_job(self._selected_id)
        has = bool(self.model.jobs)
        self.table.setVisible(has)
        self.empty_label.setVisible(not has)
        self._update_buttons()

    def _update_buttons(self) -> None:
        job = self.selected_job()
        if job is not None:
            self._selected_id = job.id
        movable = job is not None and job.state != RUNNING
        for b in (self.up_button, self.down_button, self.top_button, self.remove_button):
            b.setEnabled(movable)
        self.cancel_button.setEnabled(self.runner.current is not None)

    def _append_log(self, entry: dict) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(entry.get("t") or time.time()))
        level = str(entry.get("level", "info")).upper()
        source = entry.get("logger") or entry.get("source") or ""
        self.log_view.appendPlainText(f"{stamp} {level:<7} {source}: {entry.get('message', '')}")

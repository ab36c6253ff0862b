"""The History panel: a gallery of past results, searchable by prompt; any entry
restores its settings into the Generate panel."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.itemmodels.jobs_models import HistoryModel, short_model
from app.panels.generate import format_timings
from app.panels.generate_form import format_memory
from app.services.jobs_db import Job
from app.services.loras import job_loras_text
from app.services.studio import Studio
from app.services.thumbnails import THUMB_H, THUMB_W
from app.widgets.frame_view import FrameView
from app.widgets.open_path import open_location
from app.widgets.video_player import VideoPlayer

STATE_FILTERS = (("All results", ("done", "failed", "cancelled", "interrupted")), ("Done", ("done",)),
                 ("Failed", ("failed",)), ("Cancelled", ("cancelled",)), ("Interrupted", ("interrupted",)))


def format_options(options: dict) -> str:
    """Pipeline options in words: only what differs from the defaults."""
    parts = []
    for key, value in sorted(options.items()):
        if value is True:
            parts.append(key.replace("_", " "))
        elif value not in (False, None, "", "auto"):
            parts.append(f"{key.replace('_', ' ')} {value}")
    return ", ".join(parts) or "defaults"


class HistoryPanel(QWidget):
    #: settings dict to put into the Generate panel
    restore_requested = Signal(dict)
    #: a job was queued from here (Run again)
    queued = Signal(int)
    #: message, level: tell the user (e.g. "Open file" found no desktop launcher: the path is copied)
    notify = Signal(str, str)

    def __init__(self, studio: Studio, parent: QWidget | None = None):
        super().__init__(parent)
        self.studio = studio
        self.model = HistoryModel(studio.db, studio.runner, studio.thumbnails, self)
        self.job: Job | None = None

        title = QLabel("History")
        title.setObjectName("panelTitle")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search prompts…")
        self.search.setClearButtonEnabled(True)
        self.state_filter = QComboBox()
        for label, states in STATE_FILTERS:
            self.state_filter.addItem(label, states)
        self.count_label = QLabel()
        self.count_label.setObjectName("dimLabel")
        self.gallery = QListView()
        self.gallery.setModel(self.model)
        self.gallery.setViewMode(QListView.ViewMode.IconMode)
        self.gallery.setResizeMode(QListView.ResizeMode.Adjust)
        self.gallery.setMovement(QListView.Movement.Static)
        self.gallery.setIconSize(QSize(THUMB_W, THUMB_H))
        self.gallery.setSpacing(8)
        self.gallery.setUniformItemSizes(True)
        self.gallery.setWordWrap(True)
        self.gallery.setObjectName("gallery")
        self.gallery.setSelectionMode(QListView.SelectionMode.ExtendedSelection)  # Ctrl/Shift+click: compare
        self.compare_button = QPushButton("Compare")
        self.compare_button.setToolTip("Select 2 to 4 results (Ctrl+click) to play them side by side in sync, "
                                       "with their settings diffed")
        self.compare_button.setEnabled(False)
        self.compare_view = None
        self.gallery.setMinimumWidth(2 * (THUMB_W + 12) + 48)  # two columns at least
        self.empty_label = QLabel("No results yet. Finished jobs appear here.")
        self.empty_label.setObjectName("dimLabel")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)

        # details
        self.viewer = QStackedWidget()
        self.player = VideoPlayer()
        self.nothing = FrameView(placeholder="Select a result to see it here.")
        self.viewer.addWidget(self.nothing)
        self.viewer.addWidget(self.player)
        self.details = QLabel()
        self.details.setObjectName("details")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.restore_button = QPushButton("Restore settings")
        self.restore_button.setObjectName("primaryButton")
        self.open_file_button = QPushButton("Open file")
        self.open_folder_button = QPushButton("Open folder")
        self.copy_seed_button = QPushButton("Copy seed")
        self.again_button = QPushButton("Run again")
        self.again_button.setToolTip("Queue this job again with exactly the same settings (and seed)")
        self.delete_button = QPushButton("Delete entry")
        self.delete_button.setToolTip("Remove this entry from the history (the video file is kept)")
        actions = QVBoxLayout()
        row1, row2 = QHBoxLayout(), QHBoxLayout()
        for b in (self.restore_button, self.again_button, self.compare_button):
            row1.addWidget(b)
        row1.addStretch(1)
        row1.addWidget(self.delete_button)
        for b in (self.open_file_button, self.open_folder_button, self.copy_seed_button):
            row2.addWidget(b)
        row2.addStretch(1)
        actions.addLayout(row1)
        actions.addLayout(row2)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.state_filter)
        ll.addLayout(top)
        ll.addWidget(self.count_label)
        ll.addWidget(self.gallery, 1)
        ll.addWidget(self.empty_label)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(8, 0, 0, 0)
        rl.addWidget(self.viewer, 3)
        rl.addLayout(actions)
        rl.addWidget(self.details, 2)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([600, 520])
        split.setChildrenCollapsible(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 16, 16, 16)
        lay.addWidget(title)
        lay.addWidget(split, 1)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(200)
        self._search_timer.timeout.connect(self._apply_filter)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.state_filter.currentIndexChanged.connect(lambda _i: self._apply_filter())
        self.gallery.selectionModel().currentChanged.connect(lambda cur, _prev: self._select(cur.row()))
        self.gallery.doubleClicked.connect(lambda _i: self.restore())
        self.model.modelReset.connect(self._after_reset)
        self.restore_button.clicked.connect(self.restore)
        self.open_file_button.clicked.connect(self._open_file)
        self.open_folder_button.clicked.connect(self._open_folder)
        self.copy_seed_button.clicked.connect(self._copy_seed)
        self.delete_button.clicked.connect(self._delete)
        self.again_button.clicked.connect(self.run_again)
        self.compare_button.clicked.connect(self.compare)
        self.gallery.selectionModel().selectionChanged.connect(lambda *_a: self._update_compare())
        self._after_reset()
        self._show(None)
        if self.model.jobs:  # show the newest result right away (a finished video if there is one)
            first = next((j for j in self.model.jobs if j.state == "done"), self.model.jobs[0])
            self.select_job(first.id)

    def _apply_filter(self) -> None:
        self.model.set_filter(self.search.text().strip(), self.state_filter.currentData())

    def _after_reset(self) -> None:
        n = len(self.model.jobs)
        self.count_label.setText(f"{n} result{'s' if n != 1 else ''}" + (" (filtered)" if self.model.search else ""))
        self.gallery.setVisible(n > 0)
        self.empty_label.setVisible(n == 0)
        self.empty_label.setText("No results match the search." if self.model.search
                                 else "No results yet. Finished jobs appear here.")
        if self.job is not None:
            row = next((i for i, j in enumerate(self.model.jobs) if j.id == self.job.id), -1)
            if row >= 0:
                self.gallery.setCurrentIndex(self.model.index(row))
                self.job = self.model.jobs[row]
                return
            self._show(None)

    def _select(self, row: int) -> None:
        job = self.model.job_at(row)
        if job is None or (self.job is not None and job.id == self.job.id):
            return
        self._show(job)

    def select_job(self, job_id: int) -> bool:
        row = next((i for i, j in enumerate(self.model.jobs) if j.id == job_id), -1)
        if row < 0:
            return False
        self.gallery.setCurrentIndex(self.model.index(row))
        self._show(self.model.jobs[row])
        return True

    def _show(self, job: Job | None) -> None:
        self.job = job
        for b in (self.restore_button, self.again_button, self.open_file_button, self.open_folder_button,
                  self.copy_seed_button, self.delete_button):
            b.setEnabled(job is not None)
        if job is None:
            self.player.load(None)
            self.viewer.setCurrentWidget(self.nothing)
            self.details.setText("")
            return
        has_file = bool(job.output_path and Path(job.output_path).is_file())
        self.open_file_button.setEnabled(has_file)
        self.open_folder_button.setEnabled(bool(job.output_path))
        self.copy_seed_button.setEnabled(job.seed is not None or job.params.get("seed") is not None)
        if job.state == "done" and job.output_path:
            self.viewer.setCurrentWidget(self.player)
            self.player.load(job.output_path)
        else:
            self.player.load(None)
            self.nothing.set_placeholder(f"{job.state.capitalize()}: {job.error or 'no video'}")
            self.viewer.setCurrentWidget(self.nothing)
        self.details.setText(self._details_html(job))

    @staticmethod
    def _details_html(job: Job) -> str:
        from html import escape

        p = job.params
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.finished_at or job.created_at))
        rows = [
            ("Prompt", job.prompt), ("Negative", p.get("negative_prompt") or "—"),
            ("State", job.state + (f" — {job.error}" if job.error else "")),
            ("Model", f"{short_model(job.model_path)}  ({job.model_path})"), ("Mode", job.task),
            ("Size", f"{job.size_text}, {p.get('num_frames')} frames @ {p.get('fps', '?')} fps"),
            ("Steps / guidance", f"{p.get('num_inference_steps')} / {p.get('guidance_scale')}"),
            ("Seed", str(job.seed if job.seed is not None else p.get("seed"))), ("GPUs", str(job.num_gpus)),
            ("LoRAs", job_loras_text(p) or "none"),
            ("Finished", when),
        ]
        if job.generation_time:
            rows.append(("Time", f"{job.generation_time:.1f} s"))
        timings = format_timings(job.result.get("timings") or {})
        if timings:
            rows.append(("Stages", timings))
        memory = format_memory(job.result or {})
        if memory:
            rows.append(("Memory", memory))
        reason = (job.result.get("memory_plan") or {}).get("reason") if job.result else None
        if reason:
            rows.append(("Memory plan", reason))
        rows.append(("Options", format_options(job.pipeline_options)))
        if job.output_path:
            rows.append(("File", job.output_path))
        body = "".join(f"<tr><td style='color:#8b95a3;padding-right:10px'>{escape(k)}</td>"
                       f"<td>{escape(str(v))}</td></tr>" for k, v in rows)
        return f"<table>{body}</table>"

    # ------------------------------------------------------------------ actions
    def restore(self) -> None:
        if self.job is not None:
            self.restore_requested.emit(self.job.settings())

    def selected_jobs(self) -> list[Job]:
        rows = sorted(i.row() for i in self.gallery.selectionModel().selectedIndexes())
        return [j for j in (self.model.job_at(r) for r in rows) if j is not None]

    def _update_compare(self) -> None:
        from app.panels.compare import compare_problem

        jobs = self.selected_jobs()
        problem = compare_problem(jobs)
        self.compare_button.setEnabled(problem is None)
        self.compare_button.setText(f"Compare ({len(jobs)})" if len(jobs) > 1 else "Compare")
        self.compare_button.setToolTip(problem or "Play the selected results side by side, settings diffed")

    def compare(self):
        """Open the selected 2-4 results side by side (the view, or None when they cannot be compared)."""
        from app.panels.compare import CompareView, compare_problem

        jobs = self.selected_jobs()
        if compare_problem(jobs):
            return None
        if self.compare_view is not None:
            self.compare_view.close()
        self.compare_view = CompareView(jobs, self)
        self.compare_view.show()
        return self.compare_view

    def run_again(self) -> int | None:
        """Queue a copy of the selected job (same model, options, settings and seed)."""
        if self.job is None:
            return None
        spec = self.job.settings()
        params = dict(spec["params"])
        prompt = params.pop("prompt", "")
        job_id = self.studio.runner.submit(prompt=prompt, model_path=spec["model_path"], params=params,
                                           task=spec["task"], num_gpus=spec["num_gpus"],
                                           pipeline_options=spec["pipeline_options"])
        self.queued.emit(job_id)
        return job_id

    def _open_file(self) -> bool:
        return self._open(folder=False)

    def _open_folder(self) -> bool:
        return self._open(folder=True)

    def _open(self, folder: bool) -> bool:
        ok, message = open_location(self.job.output_path if self.job else None, folder)
        if not ok:
            self.notify.emit(message, "warning")
        return ok

    def _copy_seed(self) -> None:
        if self.job:
            seed = self.job.seed if self.job.seed is not None else self.job.params.get("seed")
            QGuiApplication.clipboard().setText(str(seed))

    def _delete(self) -> None:
        if self.job is not None:
            job_id = self.job.id
            self.studio.thumbnails.forget(job_id)
            self.job = None
            self.studio.runner.remove(job_id)

"""The Generate panel's right side: the job being followed — its live preview and progress while it
runs, the player and result actions when done, the reason when it failed."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QStackedWidget, QVBoxLayout, QWidget

from app.panels.generate_form import format_memory, format_timings
from app.services.jobs_db import Job
from app.services.runner import format_duration
from app.widgets.frame_view import FrameView
from app.widgets.open_path import open_location
from app.widgets.preview_player import PreviewPlayer
from app.widgets.video_player import VideoPlayer


def job_seed(job: Job | None) -> int | None:
    """The seed a job ran (or was to run) with: the result's, else the one it was sent with (a cancelled or
    failed job keeps it, so it can be copied and tried again)."""
    if job is None:
        return None
    seed = job.seed if job.seed is not None else job.params.get("seed")
    return int(seed) if isinstance(seed, int) else None


def short(text: str, n: int = 60) -> str:
    """``text`` on one line, at most ``n`` characters (an ellipsis when cut)."""
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


class ResultView(QWidget):
    """Title, stage, the viewer (placeholder / preview / player / failure), progress and result actions.

    The panel decides which job is shown; this only shows it (``shown_job``).
    """

    #: message, level: "Open file" could not open it (the path is on the clipboard; the window shows why)
    notify = Signal(str, str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("outputBox")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)  # as the plain QWidget it replaced
        self.shown_job: Job | None = None
        self.job_title = QLabel("No job yet")
        self.job_title.setObjectName("sectionTitle")
        self.job_title.setWordWrap(True)
        self.stage_label = QLabel()
        self.stage_label.setObjectName("dimLabel")
        self.viewer = QStackedWidget()
        self.placeholder = FrameView(placeholder="Your video appears here.\nWrite a prompt and press Generate.")
        self.preview = PreviewPlayer()
        self.player = VideoPlayer()
        self.failure = QLabel()
        self.failure.setObjectName("failureText")
        self.failure.setWordWrap(True)
        self.failure.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.failure.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for w in (self.placeholder, self.preview, self.player, self.failure):
            self.viewer.addWidget(w)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(8)
        self.progress_label = QLabel()
        self.progress_label.setObjectName("progressLabel")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("dangerButton")
        prow = QHBoxLayout()
        prow.addWidget(self.progress_label, 1)
        prow.addWidget(self.cancel_button)
        self.progress_box = QWidget()
        pl = QVBoxLayout(self.progress_box)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(self.progress)
        pl.addLayout(prow)
        self.open_file_button = QPushButton("Open file")
        self.open_folder_button = QPushButton("Open folder")
        self.copy_seed_button = QPushButton("Copy seed")
        self.reuse_button = QPushButton("Reuse settings")
        self.result_box = QWidget()
        rl = QHBoxLayout(self.result_box)
        rl.setContentsMargins(0, 0, 0, 0)
        for b in (self.open_file_button, self.open_folder_button, self.copy_seed_button, self.reuse_button):
            rl.addWidget(b)
        rl.addStretch(1)
        self.result_info = QLabel()
        self.result_info.setObjectName("dimLabel")
        self.result_info.setWordWrap(True)

        ol = QVBoxLayout(self)
        ol.setContentsMargins(16, 16, 16, 16)
        ol.addWidget(self.job_title)
        ol.addWidget(self.stage_label)
        ol.addWidget(self.viewer, 1)
        ol.addWidget(self.progress_box)
        ol.addWidget(self.result_box)
        ol.addWidget(self.result_info)

        self.open_file_button.clicked.connect(self.open_file)
        self.open_folder_button.clicked.connect(self.open_folder)
        self.copy_seed_button.clicked.connect(self.copy_seed)

    # ------------------------------------------------------------------ states
    def show_idle(self) -> None:
        self.viewer.setCurrentWidget(self.placeholder)
        self.progress_box.hide()
        self.result_box.hide()
        self.result_info.clear()
        self.stage_label.clear()

    def show_running(self, job_id: int, job: Job | None, preview: bool) -> None:
        """A job started: busy progress, Cancel, the live preview (or why there is none)."""
        self.shown_job = job
        self.job_title.setText(f"Job {job_id} · {short(job.prompt if job else '')}")
        self.stage_label.setText("Starting…")
        self.progress.setRange(0, 0)  # busy until the first step
        self.progress_label.setText("Waiting for the inference process…")
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")
        self.progress_box.show()
        self.result_box.hide()
        self.result_info.clear()
        if preview:
            self.preview.clear()
        else:
            self.preview.clear("Preview is off (Settings). The video appears when the job is done.")
        self.viewer.setCurrentWidget(self.preview)

    def show_finished(self, job: Job) -> None:
        """A job that is not running: the player for a done one, the reason for any other."""
        self.shown_job = job
        self.progress_box.hide()
        self.job_title.setText(f"Job {job.id} · {job.state} · {short(job.prompt)}")
        self.stage_label.clear()
        if job.state == "done":
            self.player.load(job.output_path)
            self.viewer.setCurrentWidget(self.player)
            self.result_box.show()
            self.open_file_button.setEnabled(bool(job.output_path))
            self.open_folder_button.setEnabled(bool(job.output_path))
            self.copy_seed_button.setEnabled(job_seed(job) is not None)
            r = job.result
            timing_text = format_timings(r.get("timings") or {})
            memory = format_memory(r)
            self.result_info.setText(
                f"{job.output_path}\nseed {job.seed} · {float(job.generation_time or 0):.1f} s"
                + (f" · {timing_text}" if timing_text else "")
                + (f"\nmemory: {memory}" if memory else ""))
        else:
            self.failure.setText(f"{job.state.capitalize()}\n\n{job.error or ''}")
            self.viewer.setCurrentWidget(self.failure)
            self.result_box.show()
            self.open_file_button.setEnabled(False)
            self.open_folder_button.setEnabled(False)
            seed = job_seed(job)
            self.copy_seed_button.setEnabled(seed is not None)
            self.result_info.setText(f"seed {seed}" if seed is not None else "")

    def show_progress(self, step: int, total: int, elapsed: float, remaining: float, expert: str = "") -> None:
        """``expert``: which denoiser ran the step ("expert 2/2 (transformer_2)"), for models with several."""
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(step)
        self.progress_label.setText(
            f"Step {step}/{total}{f' · {expert}' if expert else ''} · {format_duration(elapsed)} elapsed · "
            f"{format_duration(remaining)} left")

    def show_stage(self, name: str) -> None:
        self.stage_label.setText(name.replace("_", " ").capitalize() + "…")

    def show_cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")

    # ------------------------------------------------------------------ result actions
    def open_file(self) -> bool:
        return self._open(folder=False)

    def open_folder(self) -> bool:
        return self._open(folder=True)

    def _open(self, folder: bool) -> bool:
        ok, message = open_location(self.shown_job.output_path if self.shown_job else None, folder)
        if not ok:
            self.notify.emit(message, "warning")
        return ok

    def copy_seed(self) -> None:
        seed = job_seed(self.shown_job)
        if seed is not None:
            QGuiApplication.clipboard().setText(str(seed))

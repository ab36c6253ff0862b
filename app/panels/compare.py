"""Compare 2-4 results side by side: the videos play in sync (one clock, one slider, each video at its own
fps) above a table of their settings with the differences marked. Opened from History (select 2-4 results,
**Compare**)."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.itemmodels.jobs_models import short_model
from app.panels.history import format_options
from app.services.background import run_in_background
from app.services.jobs_db import Job
from app.services.loras import job_loras_text
from app.widgets.frame_view import FrameView
from app.widgets.video_player import VideoPlayer, _decode

MIN_JOBS, MAX_JOBS = 2, 4
DIFF_COLOR = "#ffcf5a"


def job_settings(job: Job) -> dict[str, str]:
    """The settings of a result that a comparison shows, as text, in a fixed order."""
    p = job.params
    return {
        "Prompt": job.prompt, "Negative": p.get("negative_prompt") or "—",
        "Model": short_model(job.model_path), "Mode": job.task,
        "Size": job.size_text or "—", "Frames": str(p.get("num_frames", "—")), "fps": str(p.get("fps", "—")),
        "Steps": str(p.get("num_inference_steps", "—")), "Guidance": str(p.get("guidance_scale", "—")),
        "Seed": str(job.seed if job.seed is not None else p.get("seed")),
        "Flow shift": str(p.get("flow_shift") if p.get("flow_shift") is not None else "default"),
        "LoRAs": job_loras_text(p) or "none", "GPUs": str(job.num_gpus),
        "Options": format_options(job.pipeline_options),
        "Time": f"{job.generation_time:.1f} s" if job.generation_time else "—",
        "Finished": time.strftime("%Y-%m-%d %H:%M", time.localtime(job.finished_at or job.created_at)),
    }


def settings_diff(jobs: list[Job]) -> list[tuple[str, list[str], bool]]:
    """One row per setting: (name, the value of each job, whether they differ)."""
    table = [job_settings(j) for j in jobs]
    return [(key, [t[key] for t in table], len({t[key] for t in table}) > 1) for key in table[0]]


class CompareView(QDialog):
    """The videos of 2-4 jobs in sync, and their settings diffed."""

    def __init__(self, jobs: list[Job], parent: QWidget | None = None, crisp: bool | None = None):
        super().__init__(parent)
        if not MIN_JOBS <= len(jobs) <= MAX_JOBS:
            raise ValueError(f"compare {MIN_JOBS} to {MAX_JOBS} results, not {len(jobs)}")
        self.setWindowTitle("Compare results")
        self.resize(1200, 780)
        self.jobs = jobs
        self.clips: list[tuple[list, float] | None] = [None] * len(jobs)  # (frames, fps) once decoded
        self.t = 0.0  # the shared clock, seconds
        crisp = VideoPlayer.crisp_default if crisp is None else crisp
        self.views = [FrameView(placeholder="Loading video…") for _ in jobs]
        grid = QGridLayout()
        for i, (job, view) in enumerate(zip(jobs, self.views)):
            view.crisp = crisp
            title = QLabel(f"Job {job.id} · seed {job.seed if job.seed is not None else job.params.get('seed')}")
            title.setObjectName("sectionTitle")
            title.setToolTip(job.prompt)
            grid.addWidget(title, 0, i)
            grid.addWidget(view, 1, i)
            grid.setColumnStretch(i, 1)
        self.play_button = QPushButton("Pause")
        self.play_button.setFixedWidth(72)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.time_label = QLabel()
        self.time_label.setObjectName("dimLabel")
        self.time_label.setMinimumWidth(90)
        self.loop_box = QCheckBox("Loop")
        self.loop_box.setChecked(True)
        self.crisp_box = QCheckBox("Crisp")
        self.crisp_box.setChecked(crisp)
        self.only_diff = QCheckBox("Only differences")
        controls = QHBoxLayout()
        for w in (self.play_button, self.slider, self.time_label, self.loop_box, self.crisp_box):
            controls.addWidget(w, 1 if w is self.slider else 0)
        self.table = QTableWidget(0, len(jobs))
        self.table.setHorizontalHeaderLabels([f"Job {j.id}" for j in jobs])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addLayout(grid, 1)
        tl.addLayout(controls)
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.only_diff)
        bl.addWidget(self.table, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setSizes([480, 280])
        lay = QVBoxLayout(self)
        lay.addWidget(split)

        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0
        self.play_button.clicked.connect(self.toggle)
        self.slider.valueChanged.connect(lambda v: self.seek(v / 1000.0))
        self.crisp_box.toggled.connect(self._set_crisp)
        self.only_diff.toggled.connect(lambda _c: self._fill_table())
        self._fill_table()
        for i, job in enumerate(jobs):
            path = job.output_path or ""
            run_in_background(lambda path=path: _decode(path, with_audio=False), lambda r, i=i: self._decoded(i, r),
                              lambda exc, i=i: self.views[i].set_placeholder(f"Cannot play this video:\n{exc}"))

    # ------------------------------------------------------------------ settings
    def _fill_table(self) -> None:
        rows = [r for r in settings_diff(self.jobs) if r[2] or not self.only_diff.isChecked()]
        self.table.setRowCount(len(rows))
        self.table.setVerticalHeaderLabels([name for name, _v, _d in rows])
        bold = QFont()
        bold.setBold(True)
        for r, (_name, values, differs) in enumerate(rows):
            for c, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(value)
                if differs:
                    item.setForeground(QBrush(QColor(DIFF_COLOR)))
                    item.setFont(bold)
                self.table.setItem(r, c, item)
        self.table.resizeRowsToContents()

    def differing(self) -> list[str]:
        return [name for name, _v, differs in settings_diff(self.jobs) if differs]

    # ------------------------------------------------------------------ playback
    @property
    def duration(self) -> float:
        """Seconds of the longest decoded video."""
        return max((len(f) / fps for f, fps in (c for c in self.clips if c)), default=0.0)

    def frame_indices(self) -> list[int | None]:
        """The frame each video shows at the shared clock (its own fps; the last one once it has ended)."""
        return [None if c is None else min(len(c[0]) - 1, int(self.t * c[1] + 1e-6)) for c in self.clips]

    def _decoded(self, i: int, result: tuple[list, float, dict | None]) -> None:
        frames, fps, _audio = result  # side by side: silent
        self.clips[i] = (frames, float(fps or 16.0))
        self.slider.blockSignals(True)
        self.slider.setRange(0, int(self.duration * 1000))
        self.slider.blockSignals(False)
        self._show()
        if all(c is not None for c in self.clips) and not self._timer.isActive():
            self.play()

    def loaded(self) -> bool:
        return all(c is not None for c in self.clips)

    def seek(self, t: float) -> None:
        self.t = max(0.0, min(float(t), self.duration))
        self._show()

    def _show(self) -> None:
        for view, clip, idx in zip(self.views, self.clips, self.frame_indices()):
            if clip is not None:
                view.set_frame(clip[0][idx])
        if self.slider.value() != int(self.t * 1000):
            self.slider.blockSignals(True)
            self.slider.setValue(int(self.t * 1000))
            self.slider.blockSignals(False)
        self.time_label.setText(f"{self.t:4.1f}/{self.duration:.1f} s")

    def play(self) -> None:
        fps = max((c[1] for c in self.clips if c), default=16.0)
        self._timer.start(int(1000 / max(1.0, min(fps, 60.0))))
        self._last = time.monotonic()
        self.play_button.setText("Pause")

    def stop(self) -> None:
        self._timer.stop()
        self.play_button.setText("Play")

    def toggle(self) -> None:
        if self._timer.isActive():
            self.stop()
        else:
            self.play()

    def is_playing(self) -> bool:
        return self._timer.isActive()

    def _tick(self) -> None:
        now = time.monotonic()
        t = self.t + (now - self._last)
        self._last = now
        if t >= self.duration:
            if not self.loop_box.isChecked():
                self.seek(self.duration)
                self.stop()
                return
            t = 0.0
        self.seek(t)

    def _set_crisp(self, on: bool) -> None:
        for view in self.views:
            view.crisp = on
            view.update()

    def done(self, result: int) -> None:  # noqa: D401 (Qt name)
        self._timer.stop()
        super().done(result)


def compare_problem(jobs: list[Any]) -> str | None:
    """Why these History entries cannot be compared (None: they can)."""
    if not MIN_JOBS <= len(jobs) <= MAX_JOBS:
        return f"Select {MIN_JOBS} to {MAX_JOBS} results to compare ({len(jobs)} selected)"
    if any(j.state != "done" or not j.output_path for j in jobs):
        return "Only finished results with a video can be compared"
    return None

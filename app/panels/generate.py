"""The Generate panel: the request form, the live preview and the result player."""

from __future__ import annotations

import math
import os
import random
import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QFrame, QHBoxLayout, QLabel,
    QPlainTextEdit, QProgressBar, QPushButton, QScrollArea, QSizePolicy, QSpinBox, QSplitter,
    QStackedWidget, QVBoxLayout, QWidget,
)

from app.services.jobs_db import Job
from fastvideo.configs.sample.base import SamplingParam  # torch-free
from fastvideo.pipelines.validation import validate_sampling  # torch-free: the engine's own checks
from app.services.runner import format_duration
from app.services.studio import Studio
from app.widgets.frame_view import FrameView
from app.widgets.pickers import MediaPicker
from app.widgets.preview_player import PreviewPlayer
from app.widgets.video_player import VideoPlayer

TASKS = (("t2v", "Text → Video"), ("i2v", "Image → Video"), ("v2v", "Video → Video"))
FALLBACK_DEFAULTS = {"width": 832, "height": 480, "num_frames": 81, "fps": 16, "num_inference_steps": 50,
                     "guidance_scale": 5.0, "negative_prompt": "", "strength": 0.8, "seed": 1024}
SEED_MAX = 2**31 - 1
REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")

# SamplingParam field -> the form row whose error label shows its message.
FIELD_ROWS = {
    "prompt": "prompt", "negative_prompt": "negative_prompt", "num_frames": "num_frames", "height": "resolution",
    "width": "resolution", "num_inference_steps": "steps", "guidance_scale": "guidance", "seed": "seed",
    "image_path": "image", "video_path": "video", "strength": "strength", "model_path": "model", "model": "model",
    "num_gpus": "num_gpus",
}


def format_timings(timings: dict) -> str:
    """The stages that took time, slowest first: "decoding 10.2 s, denoising 2.6 s"."""
    items = sorted(((k, float(v)) for k, v in timings.items() if isinstance(v, (int, float)) and v >= 0.05),
                   key=lambda kv: -kv[1])
    return ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in items)


def round16(x: float) -> int:
    return max(16, int(round(x / 16)) * 16)


def resolution_presets(width: int, height: int) -> list[tuple[str, int, int]]:
    """Presets from a model's default size: default, its rotation, square, draft (half)."""
    out = [(f"{width}×{height} default", width, height)]
    if width != height:
        orient = "portrait" if width > height else "landscape"
        out.append((f"{height}×{width} {orient}", height, width))
        side = round16(math.sqrt(width * height))
        out.append((f"{side}×{side} square", side, side))
    out.append((f"{round16(width / 2)}×{round16(height / 2)} draft", round16(width / 2), round16(height / 2)))
    return out


class FormRow(QWidget):
    """An input (or a row of inputs) with an inline error label under it."""

    def __init__(self, *widgets: QWidget, stretch_first: bool = True, hint: QLabel | None = None):
        super().__init__()
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(2)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        for i, w in enumerate(widgets):
            row.addWidget(w, 1 if (i == 0 and stretch_first) else 0)
        if hint is not None:
            row.addWidget(hint)
        if not stretch_first:
            row.addStretch(1)
        col.addLayout(row)
        self.error = QLabel(self)
        self.error.setObjectName("fieldError")
        self.error.setWordWrap(True)
        self.error.hide()
        col.addWidget(self.error)

    def set_error(self, text: str | None) -> None:
        if text:
            self.error.setText(text[:1].upper() + text[1:])
            self.error.show()
        else:
            self.error.clear()
            self.error.hide()


class GeneratePanel(QWidget):
    """Form on the left, preview/player on the right."""

    #: the user asked to see a job elsewhere (e.g. the queue)
    show_panel = Signal(str)

    def __init__(self, studio: Studio, parent: QWidget | None = None):
        super().__init__(parent)
        self.studio = studio
        self.runner = studio.runner
        self.model_info: dict[str, dict[str, Any]] = {}
        self.model_errors: dict[str, str] = {}
        self.defaults: dict[str, Any] = dict(FALLBACK_DEFAULTS)
        self.follow_id: int | None = None
        self.shown_job: Job | None = None
        self._apply_defaults_for: str | None = None
        self._described_requested: set[str] = set()
        self._build()
        self._wire()
        s = studio.settings
        self.set_model(s.default_model or (s.recent_models[0] if s.recent_models else "") or builtin_model(),
                       apply_defaults=True)
        self.gpus.setValue(s.num_gpus)
        self._settings_gpus = s.num_gpus
        self.randomise_seed()
        self._refresh_queue_summary()
        self._show_idle()
        last = studio.db.history(states=("done",), limit=1)
        if last:  # pick up where the last session ended: its result is on screen
            self.show_job(last[0].id)

    # ================================================================== building
    def _build(self) -> None:
        # ---- form
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        self.model_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.model_combo.lineEdit().setPlaceholderText("Model folder or repo id (e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers)")
        self.model_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.model_combo.setMinimumContentsLength(16)
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_browse = QPushButton("Browse…")
        self.model_info_label = QLabel()
        self.model_info_label.setObjectName("modelInfo")
        self.model_info_label.hide()
        self.model_info_label.setWordWrap(True)
        self.task_combo = QComboBox()
        for key, label in TASKS:
            self.task_combo.addItem(label, key)
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Describe the video: subject, action, setting, camera, light…")
        self.prompt.setFixedHeight(96)
        self.negative = QPlainTextEdit()
        self.negative.setPlaceholderText("What to avoid (optional)")
        self.negative.setFixedHeight(56)
        self.image_picker = MediaPicker("image")
        self.video_picker = MediaPicker("video")
        self.strength = QDoubleSpinBox()
        self.strength.setRange(0.01, 1.0)
        self.strength.setSingleStep(0.05)
        self.strength.setDecimals(2)
        self.strength.setToolTip("How much of the input video is re-noised: 1 ignores it, small values stay close")
        self.res_combo = QComboBox()
        self.res_combo.setMinimumContentsLength(12)
        self.res_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.width_spin = QSpinBox()
        self.height_spin = QSpinBox()
        for sp in (self.width_spin, self.height_spin):
            sp.setRange(16, 4096)
            sp.setSingleStep(16)
            sp.setFixedWidth(84)
        self.width_spin.setPrefix("W ")
        self.height_spin.setPrefix("H ")
        self.frames = QSpinBox()
        self.frames.setRange(1, 2001)
        self.frames.setSingleStep(4)
        self.frames.setFixedWidth(96)
        self.frames_hint = QLabel()
        self.frames_hint.setObjectName("dimLabel")
        self.steps = QSpinBox()
        self.steps.setRange(1, 1000)
        self.steps.setFixedWidth(96)
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, 50.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setDecimals(2)
        self.guidance.setFixedWidth(96)
        self.seed = QSpinBox()
        self.seed.setRange(0, SEED_MAX)
        self.seed.setFixedWidth(120)
        self.seed_random = QPushButton("Randomise")
        self.seed_random.setToolTip("Pick a new random seed")
        self.seed_lock = QCheckBox("Lock")
        self.seed_lock.setToolTip("Keep this seed for the next jobs (unlocked: a new seed after each Generate)")
        self.gpus = QSpinBox()
        self.gpus.setRange(1, 64)
        self.gpus.setFixedWidth(96)
        self.gpus_hint = QLabel()
        self.gpus_hint.setObjectName("dimLabel")

        self.rows: dict[str, FormRow] = {
            "model": FormRow(self.model_combo, self.model_browse),
            "task": FormRow(self.task_combo, stretch_first=False),
            "prompt": FormRow(self.prompt),
            "negative_prompt": FormRow(self.negative),
            "image": FormRow(self.image_picker),
            "video": FormRow(self.video_picker),
            "strength": FormRow(self.strength, stretch_first=False),
            "resolution": FormRow(self.res_combo, self.width_spin, self.height_spin),
            "num_frames": FormRow(self.frames, stretch_first=False, hint=self.frames_hint),
            "steps": FormRow(self.steps, stretch_first=False),
            "guidance": FormRow(self.guidance, stretch_first=False),
            "seed": FormRow(self.seed, self.seed_random, self.seed_lock, stretch_first=False),
            "num_gpus": FormRow(self.gpus, stretch_first=False, hint=self.gpus_hint),
        }
        self.rows["model"].layout().addWidget(self.model_info_label)

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setVerticalSpacing(8)
        self.form = form
        labels = {"model": "Model", "task": "Mode", "prompt": "Prompt", "negative_prompt": "Negative prompt",
                  "image": "Input image", "video": "Input video", "strength": "Strength", "resolution": "Resolution",
                  "num_frames": "Frames", "steps": "Steps", "guidance": "Guidance", "seed": "Seed",
                  "num_gpus": "GPUs"}
        for key, row in self.rows.items():
            form.addRow(labels[key], row)

        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("primaryButton")
        self.generate_button.setToolTip("Add this job to the queue (Ctrl+Enter)")
        self.general_error = QLabel()
        self.general_error.setObjectName("fieldError")
        self.general_error.setWordWrap(True)
        self.general_error.hide()
        self.queue_summary = QLabel()
        self.queue_summary.setObjectName("dimLabel")
        self.queue_link = QPushButton("Open queue")
        self.queue_link.setObjectName("linkButton")

        form_box = QWidget()
        form_box.setObjectName("formBox")
        fl = QVBoxLayout(form_box)
        fl.setContentsMargins(16, 16, 16, 16)
        title = QLabel("Generate")
        title.setObjectName("panelTitle")
        fl.addWidget(title)
        fl.addLayout(form)
        fl.addSpacing(6)
        fl.addWidget(self.general_error)
        brow = QHBoxLayout()
        brow.addWidget(self.generate_button, 1)
        fl.addLayout(brow)
        qrow = QHBoxLayout()
        qrow.addWidget(self.queue_summary, 1)
        qrow.addWidget(self.queue_link)
        fl.addLayout(qrow)
        fl.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(form_box)
        scroll.setMinimumWidth(500)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        # ---- output side
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

        out = QWidget()
        out.setObjectName("outputBox")
        ol = QVBoxLayout(out)
        ol.setContentsMargins(16, 16, 16, 16)
        ol.addWidget(self.job_title)
        ol.addWidget(self.stage_label)
        ol.addWidget(self.viewer, 1)
        ol.addWidget(self.progress_box)
        ol.addWidget(self.result_box)
        ol.addWidget(self.result_info)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(out)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([540, 700])
        split.setChildrenCollapsible(False)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

    def _wire(self) -> None:
        self.model_combo.activated.connect(lambda _i: self._model_chosen())
        self.model_combo.lineEdit().editingFinished.connect(self._model_chosen)
        self.model_browse.clicked.connect(self._browse_model)
        self.task_combo.currentIndexChanged.connect(self._task_changed)
        self.res_combo.currentIndexChanged.connect(self._preset_chosen)
        self.width_spin.valueChanged.connect(self._size_edited)
        self.height_spin.valueChanged.connect(self._size_edited)
        self.frames.valueChanged.connect(self._update_frames_hint)
        self.seed_random.clicked.connect(self.randomise_seed)
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.queue_link.clicked.connect(lambda: self.show_panel.emit("queue"))
        self.open_file_button.clicked.connect(self.open_file)
        self.open_folder_button.clicked.connect(self.open_folder)
        self.copy_seed_button.clicked.connect(self.copy_seed)
        self.reuse_button.clicked.connect(lambda: self.shown_job and self.apply_job_settings(self.shown_job.settings()))
        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self.generate)
        QShortcut(QKeySequence("Ctrl+Enter"), self, activated=self.generate)
        # Clear a field's error as soon as it is edited.
        self.prompt.textChanged.connect(lambda: self.rows["prompt"].set_error(None))
        self.image_picker.changed.connect(lambda _p: self.rows["image"].set_error(None))
        self.video_picker.changed.connect(lambda _p: self.rows["video"].set_error(None))
        self.frames.valueChanged.connect(lambda _v: self.rows["num_frames"].set_error(None))
        self.gpus.valueChanged.connect(lambda _v: self.rows["num_gpus"].set_error(None))
        r = self.runner
        r.job_state.connect(self._on_job_state)
        r.job_progress.connect(self._on_progress)
        r.job_preview.connect(self._on_preview)
        r.job_stage.connect(self._on_stage)
        r.model_described.connect(self._on_described)
        r.describe_failed.connect(self._on_describe_failed)
        r.jobs_changed.connect(self._refresh_queue_summary)
        r.paused_changed.connect(lambda _p: self._refresh_queue_summary())
        self.studio.settings_changed.connect(self._on_settings)

    # ================================================================== model
    def model_path(self) -> str:
        return self.model_combo.currentText().strip()

    def set_model(self, path: str, apply_defaults: bool = True) -> None:
        path = (path or "").strip()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        models = [m for m in self.studio.settings.recent_models if m]
        if path and path not in models:
            models.insert(0, path)
        self.model_combo.addItems(models)
        self.model_combo.setEditText(path)
        self.model_combo.blockSignals(False)
        self._model_selected(path, apply_defaults)

    def _browse_model(self) -> None:
        start = self.model_path() if os.path.isdir(self.model_path()) else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder (Diffusers layout)", start)
        if folder:
            self.model_errors.pop(folder, None)
            self.set_model(folder, apply_defaults=True)

    def _model_chosen(self) -> None:
        path = self.model_path()
        if path in self.model_errors:  # chosen again after an error: maybe it was fixed, ask again
            self.model_errors.pop(path)
            self._model_selected(path, True)
        elif path != getattr(self, "_current_model", None):
            self._model_selected(path, True)

    def _model_selected(self, path: str, apply_defaults: bool) -> None:
        self._current_model = path
        self.rows["model"].set_error(None)
        self._apply_defaults_for = path if apply_defaults else None
        if not path:
            self._set_model_info("Choose a model folder, or set a default model in Settings.")
            self._apply_model_info(None, apply_defaults)
            return
        problem = self._model_path_problem(path)
        if problem:
            self.rows["model"].set_error(problem)
            self._set_model_info("")
            return
        if path in self.model_info:
            self._apply_model_info(self.model_info[path], apply_defaults)
        elif path in self.model_errors:
            self.rows["model"].set_error(self.model_errors[path])
        elif self.studio.worker_enabled:
            self._set_model_info("Reading the model's defaults…")
            if path not in self._described_requested:
                self._described_requested.add(path)
                self.runner.describe(path)
        else:
            self._apply_model_info(None, apply_defaults)

    @staticmethod
    def _model_path_problem(path: str) -> str | None:
        p = Path(path).expanduser()
        if p.is_dir():
            return None
        if p.exists():
            return f"{path} is a file: choose the model's folder (the one with model_index.json)"
        if REPO_ID.match(path) and not path.startswith((".", "/", "~")):
            return None  # a repo id: the inference process resolves (and downloads) it
        return f"No such folder: {path}"

    def _on_described(self, path: str, info: dict) -> None:
        self.model_info[path] = info
        self.model_errors.pop(path, None)
        self._described_requested.discard(path)
        if path == self.model_path():
            self._apply_model_info(info, self._apply_defaults_for == path)
            self._apply_defaults_for = None

    def _on_describe_failed(self, path: str, message: str) -> None:
        self._described_requested.discard(path)
        if "inference process" not in message:  # a crash is not the model's fault: ask again later
            self.model_errors[path] = message
        if path == self.model_path():
            self.rows["model"].set_error(message)
            self._set_model_info("")

    def _apply_model_info(self, info: dict | None, apply_defaults: bool) -> None:
        defaults = {**FALLBACK_DEFAULTS, **((info or {}).get("defaults") or {})}
        self.defaults = defaults
        tasks = list((info or {}).get("tasks") or [])
        model = self.model_path()
        # Mode choices: the model's tasks (all when unknown).
        view = self.task_combo.model()
        for i, (key, _label) in enumerate(TASKS):
            item = view.item(i)
            item.setEnabled(not tasks or key in tasks)
        if tasks and self.task_combo.currentData() not in tasks:
            self.task_combo.setCurrentIndex([k for k, _ in TASKS].index(tasks[0]))
        # Resolution presets from the defaults.
        w, h = int(defaults["width"]), int(defaults["height"])
        cur = (self.width_spin.value(), self.height_spin.value())
        self.res_combo.blockSignals(True)
        self.res_combo.clear()
        for label, pw, ph in resolution_presets(w, h):
            self.res_combo.addItem(label, (pw, ph))
        self.res_combo.addItem("Custom…", None)
        self.res_combo.blockSignals(False)
        if apply_defaults:
            self.set_size(w, h)
            self.frames.setValue(int(defaults["num_frames"]))
            self.steps.setValue(int(defaults["num_inference_steps"]))
            self.guidance.setValue(float(defaults["guidance_scale"]))
            self.strength.setValue(float(defaults.get("strength") or 0.8))
            neg = defaults.get("negative_prompt") or ""
            if neg and not self.negative.toPlainText().strip():
                self.negative.setPlainText(neg)
        else:
            self.set_size(*cur)
        gpu_count = (info or {}).get("gpu_count")
        self.gpus_hint.setText("" if gpu_count is None else
                               (f"{gpu_count} visible" if gpu_count else "no GPU visible: runs on the CPU"))
        if not info:
            self._set_model_info("" if not self.studio.worker_enabled else self.model_info_label.text())
        if info:
            names = {"t2v": "text-to-video", "i2v": "image-to-video", "v2v": "video-to-video"}
            kinds = ", ".join(names.get(t, t) for t in tasks) or "video"
            self._set_model_info(
                f"{Path(model).name or model}: {kinds} · default {w}×{h}, {defaults['num_frames']} frames, "
                f"{defaults['num_inference_steps']} steps, {defaults.get('fps', 16)} fps")
        self._update_frames_hint()
        self._task_changed()

    def _set_model_info(self, text: str) -> None:
        self.model_info_label.setText(text)
        self.model_info_label.setVisible(bool(text))

    # ================================================================== form helpers
    def task(self) -> str:
        return self.task_combo.currentData() or "t2v"

    def _task_changed(self, *_args) -> None:
        task = self.task()
        for key, visible in (("image", task == "i2v"), ("video", task == "v2v"), ("strength", task == "v2v")):
            self.rows[key].setVisible(visible)
            label = self.form.labelForField(self.rows[key])
            if label is not None:
                label.setVisible(visible)

    def set_size(self, w: int, h: int) -> None:
        for sp, v in ((self.width_spin, w), (self.height_spin, h)):
            sp.blockSignals(True)
            sp.setValue(int(v))
            sp.blockSignals(False)
        self._size_edited()

    def _preset_chosen(self, index: int) -> None:
        data = self.res_combo.itemData(index)
        if data:
            self.set_size(*data)
        else:
            self.width_spin.setFocus()

    def _size_edited(self, *_args) -> None:
        self.rows["resolution"].set_error(None)
        size = (self.width_spin.value(), self.height_spin.value())
        match = next((i for i in range(self.res_combo.count()) if self.res_combo.itemData(i) == size), None)
        self.res_combo.blockSignals(True)
        self.res_combo.setCurrentIndex(match if match is not None else self.res_combo.count() - 1)
        self.res_combo.blockSignals(False)

    def _update_frames_hint(self, *_args) -> None:
        fps = int(self.defaults.get("fps") or 16)
        self.frames_hint.setText(f"≈ {self.frames.value() / fps:.1f} s at {fps} fps")

    def randomise_seed(self) -> None:
        self.seed.setValue(random.randint(0, SEED_MAX))

    def field_error(self, row: str) -> str:
        """The inline error shown for a form row ('' when none) — for tests and checks."""
        r = self.rows.get(row)
        if r is not None:
            return r.error.text() if not r.error.isHidden() else ""
        return self.general_error.text() if not self.general_error.isHidden() else ""

    def clear_errors(self) -> None:
        for r in self.rows.values():
            r.set_error(None)
        self.general_error.hide()

    def show_field_error(self, field: str | None, message: str) -> None:
        row = FIELD_ROWS.get(field or "")
        if row in self.rows:
            self.rows[row].set_error(message)
        else:
            self.general_error.setText(message[:1].upper() + message[1:])
            self.general_error.show()

    # ================================================================== request
    def params(self) -> dict[str, Any]:
        """The SamplingParam fields of the form (what a job stores and sends)."""
        s = self.studio.settings
        task = self.task()
        p: dict[str, Any] = {
            "prompt": self.prompt.toPlainText().strip(),
            "negative_prompt": self.negative.toPlainText().strip() or None,
            "width": self.width_spin.value(), "height": self.height_spin.value(),
            "num_frames": self.frames.value(), "num_inference_steps": self.steps.value(),
            "guidance_scale": round(self.guidance.value(), 4), "seed": self.seed.value(),
            "fps": int(self.defaults.get("fps") or 16), "output_path": s.output_dir, "save_video": True,
            "preview": bool(s.preview),
        }
        if task == "i2v":
            p["image_path"] = self.image_picker.path() or None
        if task == "v2v":
            p["video_path"] = self.video_picker.path() or None
            p["strength"] = round(self.strength.value(), 4)
        return p

    def validate(self) -> dict[str, Any] | None:
        """Check the form; show every problem inline; the job spec when all is well."""
        self.clear_errors()
        ok = True
        model = self.model_path()
        if not model:
            self.rows["model"].set_error("Choose a model folder first (or set a default model in Settings)")
            ok = False
        else:
            problem = self._model_path_problem(model) or self.model_errors.get(model)
            if problem:
                self.rows["model"].set_error(problem)
                ok = False
        params = self.params()
        task = self.task()
        sp = SamplingParam.from_dict({k: v for k, v in params.items()})
        for err in validate_sampling(sp, task):
            self.show_field_error(err.field, str(err))
            ok = False
        gpu_count = (self.model_info.get(model) or {}).get("gpu_count")
        if gpu_count and self.gpus.value() > gpu_count:  # (without GPUs, ranks run as CPU processes)
            self.rows["num_gpus"].set_error(
                f"Only {gpu_count} GPU{'s are' if gpu_count > 1 else ' is'} visible to the inference process")
            ok = False
        if not ok:
            return None
        return {"prompt": params.pop("prompt"), "model_path": model, "task": task, "params": params,
                "num_gpus": self.gpus.value(), "pipeline_options": self.studio.settings.pipeline_options()}

    def generate(self) -> int | None:
        spec = self.validate()
        if spec is None:
            return None
        settings = self.studio.settings
        if spec["model_path"] not in settings.recent_models[:1]:
            settings.remember_model(spec["model_path"])
            self.studio.save_settings(settings)
        job_id = self.runner.submit(**spec)
        if self.follow_id is None or self.runner.current is None or self.runner.current == job_id:
            self.follow_id = job_id
        if not self.seed_lock.isChecked():
            self.randomise_seed()
        self._refresh_queue_summary()
        return job_id

    def cancel(self) -> None:
        if self.runner.current is not None:
            self.runner.cancel(self.runner.current)
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText("Cancelling…")

    # ================================================================== restore
    def apply_job_settings(self, settings: dict[str, Any]) -> None:
        """Put a job's (or an MP4's embedded) settings back into the form."""
        p = dict(settings.get("params") or {})
        model = settings.get("model_path") or self.model_path()
        self.set_model(model, apply_defaults=False)
        task = settings.get("task") or ("i2v" if p.get("image_path") else "v2v" if p.get("video_path") else "t2v")
        keys = [k for k, _ in TASKS]
        if task in keys:
            self.task_combo.setCurrentIndex(keys.index(task))
        if "prompt" in p:
            self.prompt.setPlainText(p.get("prompt") or "")
        if "negative_prompt" in p:
            self.negative.setPlainText(p.get("negative_prompt") or "")
        if p.get("width") and p.get("height"):
            self.set_size(int(p["width"]), int(p["height"]))
        for key, widget, conv in (("num_frames", self.frames, int), ("num_inference_steps", self.steps, int),
                                  ("guidance_scale", self.guidance, float), ("strength", self.strength, float)):
            if p.get(key) is not None:
                widget.setValue(conv(p[key]))
        if p.get("seed") is not None:
            self.seed.setValue(int(p["seed"]) % (SEED_MAX + 1))
            self.seed_lock.setChecked(True)
        if settings.get("num_gpus"):
            self.gpus.setValue(int(settings["num_gpus"]))
        self.image_picker.set_path(p.get("image_path") or "")
        self.video_picker.set_path(p.get("video_path") or "")
        self.clear_errors()

    # ================================================================== job display
    def _refresh_queue_summary(self) -> None:
        counts = self.studio.db.counts()
        waiting = counts.get("queued", 0)
        parts = []
        if counts.get("running"):
            parts.append("1 running")
        parts.append(f"{waiting} waiting" if waiting else "queue empty")
        if self.studio.db.paused:
            parts.append("queue paused")
        self.queue_summary.setText(" · ".join(parts))

    def _show_idle(self) -> None:
        self.viewer.setCurrentWidget(self.placeholder)
        self.progress_box.hide()
        self.result_box.hide()
        self.result_info.clear()
        self.stage_label.clear()

    def _on_job_state(self, job_id: int, state: str) -> None:
        if state == "running":
            self.follow_id = job_id
            job = self.studio.db.get(job_id)
            self.shown_job = job
            self.job_title.setText(f"Job {job_id} · {self._short(job.prompt if job else '')}")
            self.stage_label.setText("Starting…")
            self.progress.setRange(0, 0)  # busy until the first step
            self.progress_label.setText("Waiting for the inference process…")
            self.cancel_button.setEnabled(True)
            self.cancel_button.setText("Cancel")
            self.progress_box.show()
            self.result_box.hide()
            self.result_info.clear()
            if self.studio.settings.preview:
                self.preview.clear()
            else:
                self.preview.clear("Preview is off (Settings). The video appears when the job is done.")
            self.viewer.setCurrentWidget(self.preview)
            return
        if job_id != self.follow_id:
            return
        self.show_job(job_id, field_errors=True)

    def show_job(self, job_id: int, field_errors: bool = False) -> None:
        """Show a finished job: the player for a done one, the reason for a failed one.

        ``field_errors``: also mark the form field an engine error names (for a job
        that failed just now, not one from the history).
        """
        job = self.studio.db.get(job_id)
        if job is None:
            return
        self.follow_id = job_id
        self.shown_job = job
        self.progress_box.hide()
        self.job_title.setText(f"Job {job.id} · {job.state} · {self._short(job.prompt)}")
        self.stage_label.clear()
        if job.state == "done":
            self.player.load(job.output_path)
            self.viewer.setCurrentWidget(self.player)
            self.result_box.show()
            self.open_file_button.setEnabled(bool(job.output_path))
            self.open_folder_button.setEnabled(bool(job.output_path))
            self.copy_seed_button.setEnabled(job.seed is not None)
            r = job.result
            timing_text = format_timings(r.get("timings") or {})
            peak = r.get("peak_memory")
            self.result_info.setText(
                f"{job.output_path}\nseed {job.seed} · {float(job.generation_time or 0):.1f} s"
                + (f" · {timing_text}" if timing_text else "")
                + (f" · peak memory {peak / 2**30:.2f} GiB" if peak else ""))
        elif job.state == "running":
            self._on_job_state(job.id, "running")
        else:
            self.failure.setText(f"{job.state.capitalize()}\n\n{job.error or ''}")
            self.viewer.setCurrentWidget(self.failure)
            self.result_box.show()
            self.open_file_button.setEnabled(False)
            self.open_folder_button.setEnabled(False)
            self.copy_seed_button.setEnabled(False)
            self.result_info.clear()
            if field_errors and job.state == "failed" and job.error_field:
                self.show_field_error(job.error_field, job.error or "")

    def _on_progress(self, job_id: int, step: int, total: int, elapsed: float, remaining: float) -> None:
        if job_id != self.follow_id:
            return
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(step)
        self.progress_label.setText(
            f"Step {step}/{total} · {format_duration(elapsed)} elapsed · {format_duration(remaining)} left")

    def _on_stage(self, job_id: int, name: str) -> None:
        if job_id == self.follow_id:
            self.stage_label.setText(name.replace("_", " ").capitalize() + "…")

    def _on_preview(self, job_id: int, frames, step: int, total: int, fps: int) -> None:
        if job_id == self.follow_id and self.studio.settings.preview:
            self.preview.set_frames(frames, step, total, fps)

    def _on_settings(self, settings) -> None:
        if settings.num_gpus != self._settings_gpus:  # the default changed in Settings: follow it
            self._settings_gpus = settings.num_gpus
            self.gpus.setValue(settings.num_gpus)
        if self.model_path() != settings.default_model and settings.default_model and not self.model_path():
            self.set_model(settings.default_model)

    @staticmethod
    def _short(text: str, n: int = 60) -> str:
        text = " ".join((text or "").split())
        return text if len(text) <= n else text[: n - 1] + "…"

    # ================================================================== result actions
    def open_file(self) -> None:
        if self.shown_job and self.shown_job.output_path:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.shown_job.output_path))

    def open_folder(self) -> None:
        if self.shown_job and self.shown_job.output_path:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(self.shown_job.output_path).parent)))

    def copy_seed(self) -> None:
        if self.shown_job and self.shown_job.seed is not None:
            QGuiApplication.clipboard().setText(str(self.shown_job.seed))


def builtin_model() -> str:
    """The built-in default model's folder when it is on disk (torch-free lookup), else ""."""
    from fastvideo.builtin import default_model_path

    path = default_model_path(create=False)
    return str(path) if (path / "model_index.json").is_file() else ""

"""The Generate panel: the request form, the live preview and the result player.

The form's values, the model's defaults, validation and the job spec live in the Qt-free
:class:`app.panels.generate_form.GenerateForm` (``self.form_model``); the form's widgets and the
copying of their values into it and back in :mod:`app.panels.generate_fields` (a mixin); the right
side (the job followed, player, result actions) is :class:`app.panels.generate_result.ResultView`.
This module wires them: choosing a model (and asking the inference process about it), validating
and queueing, restoring settings, following the running job.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QSplitter, QWidget

from app.panels.generate_fields import FormRow, GenerateFormWidgets
from app.panels.generate_form import (
    FALLBACK_DEFAULTS,
    FIELD_ROWS,
    REPO_ID,
    SEED_MAX,
    TASKS,
    GenerateForm,
    builtin_model,
    format_timings,
    model_labels,
    resolution_presets,
    round16,
)
from app.panels.generate_result import ResultView, short
from app.services.jobs_db import Job
from app.services.studio import Studio

# Names other modules import from here (they lived in this module before the form model was split out).
__all__ = ["FALLBACK_DEFAULTS", "FIELD_ROWS", "REPO_ID", "SEED_MAX", "TASKS", "FormRow", "GeneratePanel",
           "builtin_model", "format_timings", "resolution_presets", "round16"]


class GeneratePanel(GenerateFormWidgets, QWidget):
    """Form on the left, preview/player on the right."""

    #: the user asked to see a job elsewhere (e.g. the queue)
    show_panel = Signal(str)

    def __init__(self, studio: Studio, parent: QWidget | None = None):
        super().__init__(parent)
        self.studio = studio
        self.runner = studio.runner
        self.form_model = GenerateForm()
        self.follow_id: int | None = None
        self._apply_defaults_for: str | None = None
        self._experts: dict[int, str] = {}  # job id -> the expert that ran its last step (several-expert models)
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

    # -- the form model's state, under the names the panel always had
    @property
    def model_info(self) -> dict[str, dict[str, Any]]:
        return self.form_model.model_info

    @property
    def model_errors(self) -> dict[str, str]:
        return self.form_model.model_errors

    @property
    def defaults(self) -> dict[str, Any]:
        return self.form_model.defaults

    @property
    def shown_job(self) -> Job | None:
        return self.result.shown_job

    @shown_job.setter
    def shown_job(self, job: Job | None) -> None:
        self.result.shown_job = job

    # ================================================================== building
    def _build(self) -> None:
        scroll = self._build_form()

        # ---- output side (its widgets stay reachable under their old names)
        self.result = r = ResultView()
        self.job_title, self.stage_label, self.viewer, self.placeholder = r.job_title, r.stage_label, r.viewer, \
            r.placeholder
        self.preview, self.player, self.failure, self.progress = r.preview, r.player, r.failure, r.progress
        self.progress_label, self.cancel_button, self.progress_box = r.progress_label, r.cancel_button, r.progress_box
        self.open_file_button, self.open_folder_button = r.open_file_button, r.open_folder_button
        self.copy_seed_button, self.reuse_button = r.copy_seed_button, r.reuse_button
        self.result_box, self.result_info = r.result_box, r.result_info

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(r)
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
        self.model_combo.currentTextChanged.connect(lambda _t: self._update_model_tooltip())
        self.model_browse.clicked.connect(self._browse_model)
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.queue_link.clicked.connect(lambda: self.show_panel.emit("queue"))
        self.reuse_button.clicked.connect(lambda: self.shown_job and self.apply_job_settings(self.shown_job.settings()))
        # Ctrl+Enter (generate) and Esc (cancel) are the window's Edit menu actions: they work from every panel.
        self._wire_form()
        r = self.runner
        r.job_state.connect(self._on_job_state)
        r.job_progress.connect(self._on_progress)
        r.job_expert.connect(self._on_expert)
        r.job_preview.connect(self._on_preview)
        r.job_stage.connect(self._on_stage)
        r.model_described.connect(self._on_described)
        r.describe_failed.connect(self._on_describe_failed)
        r.jobs_changed.connect(self._refresh_queue_summary)
        r.paused_changed.connect(lambda _p: self._refresh_queue_summary())
        self.studio.settings_changed.connect(self._on_settings)


    # ================================================================== model
    def model_path(self) -> str:
        """The chosen model: the full path behind the name the field shows, or the typed text."""
        text = self.model_combo.currentText().strip()
        i = self.model_combo.findText(text, Qt.MatchFlag.MatchExactly)
        if i >= 0 and self.model_combo.itemData(i):
            return str(self.model_combo.itemData(i))
        return text

    def set_model(self, path: str, apply_defaults: bool = True) -> None:
        """Choose ``path``: the field shows the model's name (the full path is its tooltip)."""
        path = (path or "").strip()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        models = [m for m in self.studio.settings.recent_models if m]
        if path and path not in models:
            models.insert(0, path)
        for label, model in zip(model_labels(models), models):
            self.model_combo.addItem(label, model)
            self.model_combo.setItemData(self.model_combo.count() - 1, model, Qt.ItemDataRole.ToolTipRole)
        if path:
            self.model_combo.setCurrentIndex(models.index(path))
        else:
            self.model_combo.setEditText("")
        self.model_combo.blockSignals(False)
        self._update_model_tooltip()
        self._model_selected(path, apply_defaults)

    def _update_model_tooltip(self) -> None:
        path = self.model_path()
        self.model_combo.setToolTip(path or "A model folder (Diffusers layout) or a Hugging Face repo id")

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

    def _set_loading(self, path: str | None) -> None:
        """While a model's defaults are on their way the form shows placeholder values: no Generate."""
        self._loading_for = path
        self.generate_button.setEnabled(path is None)
        self.generate_button.setToolTip("Reading the model's defaults…" if path
                                        else "Add this job to the queue (Ctrl+Enter)")

    def _model_selected(self, path: str, apply_defaults: bool) -> None:
        self._current_model = path
        self._set_loading(None)
        self._update_vocabulary_note()
        self.rows["model"].set_error(None)
        self._apply_defaults_for = path if apply_defaults else None
        self.form_model.remote_models = self.studio.settings.engine == "remote"
        kind, detail = self.form_model.model_status(path)
        if kind == "empty":
            self._set_model_info("Choose a model folder, or set a default model in Settings.")
            self._apply_model_info(None, apply_defaults)
        elif kind == "problem":
            self.rows["model"].set_error(detail)
            self._set_model_info("")
        elif kind == "known":
            self._apply_model_info(detail, apply_defaults)
        elif kind == "error":
            self.rows["model"].set_error(detail)
        elif self.studio.worker_enabled:
            self._set_model_info("Reading the model's defaults…")
            if apply_defaults:  # the form holds placeholders until the defaults arrive
                self._set_loading(path)
            if self.form_model.request_describe(path):
                self.runner.describe(path)
        else:
            self._apply_model_info(None, apply_defaults)

    def _on_described(self, path: str, info: dict) -> None:
        self.form_model.described(path, info)
        if path == self.model_path():
            self._set_loading(None)
            self._apply_model_info(info, self._apply_defaults_for == path)
            self._apply_defaults_for = None

    def _on_describe_failed(self, path: str, message: str) -> None:
        self.form_model.describe_failed(path, message)
        if path == self.model_path():
            self._set_loading(None)
            self.rows["model"].set_error(message)
            self._set_model_info("")

    # ================================================================== request
    def params(self) -> dict[str, Any]:
        """The SamplingParam fields of the form (what a job stores and sends)."""
        s = self.studio.settings
        return self._read_form().params(s.output_dir, s.preview)

    def validate(self) -> dict[str, Any] | None:
        """Check the form; show every problem inline; the job spec when all is well."""
        self.clear_errors()
        s = self.studio.settings
        errors, spec = self._read_form().validate(s.output_dir, s.preview, s.pipeline_options())
        for row, message in errors.items():
            self._show_row_error(row, message)
        return spec

    def generate(self) -> int | None:
        if getattr(self, "_loading_for", None):
            self.show_field_error(None, "The model's defaults are still loading; generate when they have arrived.")
            return None
        spec = self.validate()
        if spec is None:
            return None
        problem = self.batch.problem(spec["prompt"])
        if problem:
            self.rows["batch"].set_error(problem)
            return None
        settings = self.studio.settings
        if spec["model_path"] not in settings.recent_models[:1]:
            settings.remember_model(spec["model_path"])
            self.studio.save_settings(settings)
        job_id = [self.runner.submit(**job) for job in self.batch.specs(spec)][0]  # a batch: its first job
        if self.follow_id is None or self.runner.current is None or self.runner.current == job_id:
            self.follow_id = job_id
        form = self._read_form()
        form.after_submit()  # an unlocked seed: a new random one
        self.seed.setValue(form.seed)
        self._refresh_queue_summary()
        return job_id

    def cancel(self) -> None:
        if self.runner.current is not None:
            self.runner.cancel(self.runner.current)
            self.result.show_cancelling()

    # ================================================================== restore
    def apply_job_settings(self, settings: dict[str, Any]) -> None:
        """Put a job's (or an MP4's embedded) settings back into the form."""
        self.set_model(settings.get("model_path") or self.model_path(), apply_defaults=False)
        self._read_form().apply_job_settings(settings)
        self._write_form(paths=True)
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
        self.result.show_idle()

    def _on_job_state(self, job_id: int, state: str) -> None:
        if state == "running":
            self.follow_id = job_id
            self.result.show_running(job_id, self.studio.db.get(job_id), bool(self.studio.settings.preview))
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
        if job.state == "running":
            self._on_job_state(job.id, "running")
            return
        self.result.show_finished(job)
        if field_errors and job.state == "failed" and job.error_field:
            self.show_field_error(job.error_field, job.error or "")

    def _on_progress(self, job_id: int, step: int, total: int, elapsed: float, remaining: float) -> None:
        if job_id == self.follow_id:
            self.result.show_progress(step, total, elapsed, remaining, self._experts.get(job_id, ""))

    def _on_expert(self, job_id: int, index: int, count: int, name: str) -> None:
        """A model with several denoisers (Wan2.2 A14B): the step progress says which one runs."""
        self._experts[job_id] = f"expert {index + 1}/{count} ({name})"

    def _on_stage(self, job_id: int, name: str) -> None:
        if job_id == self.follow_id:
            self.result.show_stage(name)

    def _on_preview(self, job_id: int, frames, step: int, total: int, fps: int) -> None:
        if job_id == self.follow_id and self.studio.settings.preview:
            self.preview.set_frames(frames, step, total, fps)

    def _on_settings(self, settings) -> None:
        if settings.num_gpus != self._settings_gpus:  # the default changed in Settings: follow it
            self._settings_gpus = settings.num_gpus
            self.gpus.setValue(settings.num_gpus)
        if self.model_path() != settings.default_model and settings.default_model and not self.model_path():
            self.set_model(settings.default_model)

    _short = staticmethod(short)

    # ================================================================== result actions
    def open_file(self) -> bool:
        return self.result.open_file()

    def open_folder(self) -> bool:
        return self.result.open_folder()

    def copy_seed(self) -> None:
        self.result.copy_seed()

"""The Generate panel's form widgets: the input rows with their inline errors, and the copying of
their values into the Qt-free form model (:class:`app.panels.generate_form.GenerateForm`) and back.

:class:`GenerateFormWidgets` is a mixin of :class:`app.panels.generate.GeneratePanel`, so the
widgets stay the panel's attributes (``g.prompt``, ``g.frames``, ``g.rows`` ...).  It expects the
panel to have ``form_model`` (a GenerateForm) and ``studio``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.panels.generate_batch import BatchControls
from app.panels.generate_form import SEED_MAX, TASK_KEYS, TASKS, GenerateForm, error_row, in_form_words
from app.widgets.lora_picker import LoraPicker
from app.widgets.pickers import MediaPicker
from app.widgets.prompt_history import PromptHistory

ROW_LABELS = {"model": "Model", "task": "Mode", "loras": "LoRAs", "prompt": "Prompt", "negative_prompt": "Negative prompt",
              "image": "Input image", "video": "Input video", "strength": "Strength", "resolution": "Resolution",
              "num_frames": "Frames", "steps": "Steps", "guidance": "Guidance", "seed": "Seed", "batch": "Batch",
              "num_gpus": "GPUs", "speed": "Speed"}


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
        self.note = QLabel(self)  # advice that does not block the job (e.g. words a model does not know)
        self.note.setObjectName("fieldNote")
        self.note.setWordWrap(True)
        self.note.hide()
        col.addWidget(self.note)

    def set_note(self, text: str | None) -> None:
        self.note.setText(text[:1].upper() + text[1:] if text else "")
        self.note.setVisible(bool(text))

    def set_error(self, text: str | None) -> None:
        if text:
            self.error.setText(text[:1].upper() + text[1:])
            self.error.show()
        else:
            self.error.clear()
            self.error.hide()


def _spin(widget: QSpinBox | QDoubleSpinBox, low: float, high: float, width: int | None = None,
          step: float | None = None, decimals: int | None = None) -> QSpinBox | QDoubleSpinBox:
    widget.setRange(low, high)
    if step is not None:
        widget.setSingleStep(step)
    if decimals is not None:
        widget.setDecimals(decimals)
    if width is not None:
        widget.setFixedWidth(width)
    return widget


def _dim_label() -> QLabel:
    label = QLabel()
    label.setObjectName("dimLabel")
    return label


class GenerateFormWidgets:
    """The form half of the Generate panel (a mixin: see the module's docstring)."""

    form_model: GenerateForm

    # ================================================================== building
    def _build_form(self) -> QScrollArea:
        """The form's widgets (the panel's attributes) in a scroll area."""
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        self.model_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.model_combo.lineEdit().setPlaceholderText(
            "Model folder or repo id (e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers)")
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
        self.strength = _spin(QDoubleSpinBox(), 0.01, 1.0, step=0.05, decimals=2)
        self.strength.setToolTip("How much of the input video is re-noised: 1 ignores it, small values stay close")
        self.res_combo = QComboBox()
        self.res_combo.setMinimumContentsLength(12)
        self.res_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.width_spin = _spin(QSpinBox(), 16, 4096, 84, step=16)
        self.height_spin = _spin(QSpinBox(), 16, 4096, 84, step=16)
        self.width_spin.setPrefix("W ")
        self.height_spin.setPrefix("H ")
        self.frames = _spin(QSpinBox(), 1, 2001, 96, step=4)
        self.frames_hint = _dim_label()
        self.steps = _spin(QSpinBox(), 1, 1000, 96)
        self.guidance = _spin(QDoubleSpinBox(), 0.0, 50.0, 96, step=0.5, decimals=2)
        self.seed = _spin(QSpinBox(), 0, SEED_MAX, 120)
        self.seed_random = QPushButton("Randomise")
        self.seed_random.setToolTip("Pick a new random seed")
        self.seed_lock = QCheckBox("Lock")
        self.seed_lock.setToolTip("Keep this seed for the next jobs (unlocked: a new seed after each Generate)")
        self.batch = BatchControls()
        self.prompt_history = PromptHistory(self.prompt, self.studio.db.recent_prompts)
        self.gpus = _spin(QSpinBox(), 1, 64, 96)
        self.gpus_hint = _dim_label()
        self.lora_picker = LoraPicker()
        self.lora_picker.set_folder(self.studio.settings.lora_dir)
        self.preset_combo = QComboBox()  # few-step presets the model / LoRAs call for (hidden when none)
        self.preset_combo.setToolTip("Few-step sampling that this model or one of its LoRAs is made for")
        self.step_cache_spin = _spin(QDoubleSpinBox(), 0.0, 1.0, 96, step=0.05, decimals=2)
        self.step_cache_spin.setSpecialValueText("off")
        self.step_cache_spin.setToolTip("Step cache: skip the model on steps whose input barely changed (reuses "
                                        "the last prediction). Higher is faster and less exact; off = exact")

        self.rows: dict[str, FormRow] = {
            "model": FormRow(self.model_combo, self.model_browse),
            "task": FormRow(self.task_combo, stretch_first=False),
            "loras": FormRow(self.lora_picker),
            "prompt": FormRow(self.prompt, self.prompt_history.button),
            "negative_prompt": FormRow(self.negative),
            "image": FormRow(self.image_picker),
            "video": FormRow(self.video_picker),
            "strength": FormRow(self.strength, stretch_first=False),
            "resolution": FormRow(self.res_combo, self.width_spin, self.height_spin),
            "num_frames": FormRow(self.frames, stretch_first=False, hint=self.frames_hint),
            "steps": FormRow(self.steps, stretch_first=False),
            "guidance": FormRow(self.guidance, stretch_first=False),
            "speed": FormRow(self.preset_combo, QLabel("Step cache"), self.step_cache_spin, stretch_first=False),
            "seed": FormRow(self.seed, self.seed_random, self.seed_lock, stretch_first=False),
            "batch": FormRow(self.batch),
            "num_gpus": FormRow(self.gpus, stretch_first=False, hint=self.gpus_hint),
        }
        self.rows["model"].layout().addWidget(self.model_info_label)

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setVerticalSpacing(8)
        self.form = form
        for key, row in self.rows.items():
            form.addRow(ROW_LABELS[key], row)

        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("primaryButton")
        self.generate_button.setToolTip("Add this job to the queue (Ctrl+Enter)")
        self.general_error = QLabel()
        self.general_error.setObjectName("fieldError")
        self.general_error.setWordWrap(True)
        self.general_error.hide()
        self.queue_summary = _dim_label()
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
        return scroll

    def _wire_form(self) -> None:
        self.task_combo.currentIndexChanged.connect(self._task_changed)
        self.res_combo.currentIndexChanged.connect(self._preset_chosen)
        self.width_spin.valueChanged.connect(self._size_edited)
        self.height_spin.valueChanged.connect(self._size_edited)
        self.frames.valueChanged.connect(self._update_frames_hint)
        self.seed_random.clicked.connect(self.randomise_seed)
        # Clear a field's error as soon as it is edited.
        self.prompt.textChanged.connect(lambda: self.rows["prompt"].set_error(None))
        self.prompt.textChanged.connect(self._update_vocabulary_note)
        self.prompt.textChanged.connect(lambda: self.batch.update_summary(self.prompt.toPlainText()))
        self.batch.changed.connect(lambda: self.batch.update_summary(self.prompt.toPlainText()))
        self.batch.changed.connect(lambda: self.rows["batch"].set_error(None))
        self.image_picker.changed.connect(lambda _p: self.rows["image"].set_error(None))
        self.video_picker.changed.connect(lambda _p: self.rows["video"].set_error(None))
        self.frames.valueChanged.connect(lambda _v: self.rows["num_frames"].set_error(None))
        self.gpus.valueChanged.connect(lambda _v: self.rows["num_gpus"].set_error(None))
        self.lora_picker.changed.connect(lambda: self.rows["loras"].set_error(None))
        self.lora_picker.changed.connect(self._refresh_sampling_presets)
        self.preset_combo.activated.connect(self._sampling_preset_chosen)
        self.step_cache_spin.valueChanged.connect(lambda _v: self.rows["speed"].set_error(None))
        self.studio.settings_changed.connect(lambda s: s.lora_dir != self.lora_picker.folder
                                             and self.lora_picker.set_folder(s.lora_dir))

    # ================================================================== widgets <-> form model
    def _read_form(self) -> GenerateForm:
        """Copy the widgets' values into the form model (and return it)."""
        f = self.form_model
        f.remote_models = self.studio.settings.engine == "remote"
        f.model, f.task = self.model_path(), self.task()
        f.prompt, f.negative_prompt = self.prompt.toPlainText(), self.negative.toPlainText()
        f.width, f.height = self.width_spin.value(), self.height_spin.value()
        f.num_frames, f.steps, f.guidance = self.frames.value(), self.steps.value(), self.guidance.value()
        f.seed, f.seed_locked = self.seed.value(), self.seed_lock.isChecked()
        f.strength, f.num_gpus = self.strength.value(), self.gpus.value()
        f.image_path, f.video_path = self.image_picker.path(), self.video_picker.path()
        f.loras, f.lora_strict = self.lora_picker.loras(), self.lora_picker.strict.isChecked()
        f.loras_2 = self.lora_picker.loras_2()
        f.step_cache = self.step_cache_spin.value()
        f.sampling_preset = (self.preset_combo.currentData() or "") if self.preset_combo.count() > 1 else ""
        return f

    def _write_form(self, resize: bool = False, paths: bool = False) -> None:
        """Copy the form model's values into the widgets (not the model: ``set_model`` owns it).

        Only changed values are written, so no widget reports an edit that did not happen;
        ``resize``: re-match the size with the presets even when unchanged; ``paths``: set the
        pickers even when unchanged (they reload their thumbnails).
        """
        f = self.form_model
        if f.task != self.task() and f.task in TASK_KEYS:
            self.task_combo.setCurrentIndex(TASK_KEYS.index(f.task))
        for edit, text in ((self.prompt, f.prompt), (self.negative, f.negative_prompt)):
            if edit.toPlainText() != text:
                edit.setPlainText(text)
        if resize or (self.width_spin.value(), self.height_spin.value()) != (f.width, f.height):
            self.set_size(f.width, f.height)
        for spin, value in ((self.frames, int(f.num_frames)), (self.steps, int(f.steps)),
                            (self.guidance, float(f.guidance)), (self.strength, float(f.strength)),
                            (self.seed, int(f.seed)), (self.gpus, int(f.num_gpus))):
            spin.setValue(value)  # (no signal when unchanged)
        self.seed_lock.setChecked(bool(f.seed_locked))
        for picker, path in ((self.image_picker, f.image_path), (self.video_picker, f.video_path)):
            if paths or picker.path() != path:
                picker.set_path(path)
        self.lora_picker.set_loras(f.loras, f.lora_strict, f.loras_2)
        self.step_cache_spin.setValue(float(f.step_cache))
        index = self.preset_combo.findData(f.sampling_preset)
        if index >= 0:
            self.preset_combo.setCurrentIndex(index)

    def _refresh_sampling_presets(self) -> None:
        """Offer the few-step presets the model folder or a LoRA calls for (fastvideo.configs.sample.presets)."""
        f = self._read_form()
        offered = f.offered_presets()
        self.preset_combo.blockSignals(True)
        self.preset_combo.clear()
        self.preset_combo.addItem("Model's own sampling", "")
        for preset in offered:
            self.preset_combo.addItem(preset.title, preset.name)
            self.preset_combo.setItemData(self.preset_combo.count() - 1, preset.description,
                                          Qt.ItemDataRole.ToolTipRole)
        self.preset_combo.setCurrentIndex(max(self.preset_combo.findData(f.sampling_preset), 0))
        self.preset_combo.blockSignals(False)
        self.preset_combo.setVisible(bool(offered))
        if not offered:
            f.sampling_preset = ""
        self.rows["speed"].set_note("made for few-step sampling: " + ", ".join(p.title for p in offered)
                                    if offered else None)

    def _sampling_preset_chosen(self, index: int) -> None:
        f = self._read_form()
        f.apply_preset(self.preset_combo.itemData(index) or "")
        self._write_form()

    # ================================================================== model defaults
    def _apply_model_info(self, info: dict | None, apply_defaults: bool) -> None:
        # two experts (Wan2.2 A14B): each LoRA row says which one it goes into
        self.lora_picker.set_experts((info or {}).get("experts") or [])
        f = self._read_form()
        f.apply_model_info(info, apply_defaults)
        view = self.task_combo.model()  # mode choices: the model's tasks (all when unknown)
        for i, key in enumerate(TASK_KEYS):
            view.item(i).setEnabled(f.task_allowed(key))
        self.res_combo.blockSignals(True)  # resolution presets from the defaults
        self.res_combo.clear()
        for label, pw, ph in f.presets():
            self.res_combo.addItem(label, (pw, ph))
        self.res_combo.addItem("Custom…", None)
        self.res_combo.blockSignals(False)
        g = f.geometry()  # the model's frame / size steps (Wan2.2 TI2V: sides in 32s)
        self.frames.setSingleStep(g.frame_step)
        self.width_spin.setSingleStep(g.width_multiple)
        self.height_spin.setSingleStep(g.height_multiple)
        self._write_form(resize=True)
        self.gpus_hint.setText(f.gpus_hint(info))
        self.gpus_hint.setToolTip(f.devices_tooltip(info))
        self.gpus.setToolTip(f.devices_tooltip(info))
        if not info:
            self._set_model_info("" if not self.studio.worker_enabled else self.model_info_label.text())
        else:
            self._set_model_info(f.model_summary())
        self._update_frames_hint()
        self._task_changed()
        self._refresh_sampling_presets()

    def _update_vocabulary_note(self) -> None:
        """Warn (without blocking) when the prompt uses none of the words a model knows (the built-in model)."""
        from fastvideo.builtin import vocabulary_warning  # torch-free: one small JSON file

        path = self.model_path()
        try:
            note = vocabulary_warning(path, self.prompt.toPlainText()) if path else None
        except (OSError, ValueError):
            note = None
        self.rows["prompt"].set_note(note)

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
        self.form_model.num_frames = self.frames.value()
        self.frames_hint.setText(self.form_model.frames_hint())

    def randomise_seed(self) -> None:
        self.seed.setValue(self.form_model.randomise_seed())

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
        self._show_row_error(error_row(field), in_form_words(message))

    def _show_row_error(self, row: str, message: str) -> None:
        if row in self.rows:
            self.rows[row].set_error(message)
        else:
            self.general_error.setText(message[:1].upper() + message[1:])
            self.general_error.show()

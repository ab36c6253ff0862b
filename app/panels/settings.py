"""The Settings panel: output folder, default model, GPUs, attention backend,
offload options, live preview, hang timeout.  Saved to a JSON file."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.panels.engine_settings import EngineSettings
from app.panels.generate import FormRow
from app.services.settings import ATTENTION_BACKENDS, Settings, parse_gpu_ids
from app.services.studio import Studio

#: the engine's memory modes (fastvideo.configs.pipelines.base.MEMORY_MODES) as the Settings list them
MEMORY_MODE_TEXT = {"auto": "Automatic (from free memory and the request)",
                    "resident": "Resident (everything on the GPU: fastest)",
                    "model_offload": "Model offload (each part on the GPU while it runs)",
                    "block_stream": "Block streaming (least GPU memory)"}


def engine_models_dir() -> Path:
    """The models folder the engine uses when the setting is empty ($FASTVIDEO_MODELS_DIR or its default)."""
    from fastvideo.configs.registry import models_dir

    return models_dir()


class SettingsPanel(QWidget):
    def __init__(self, studio: Studio, parent: QWidget | None = None):
        super().__init__(parent)
        self.studio = studio
        self.output_dir = QLineEdit()
        self.output_browse = QPushButton("Browse…")
        self.default_model = QComboBox()
        self.default_model.setEditable(True)
        self.default_model.lineEdit().setPlaceholderText("Model folder or repo id")
        self.model_browse = QPushButton("Browse…")
        self.models_dir = QLineEdit()
        self.models_dir.setToolTip("Where downloads and conversions go and where the Models panel looks; the "
                                   "inference process and the converter get it as FASTVIDEO_MODELS_DIR")
        self.models_dir_browse = QPushButton("Browse…")
        self.lora_dir = QLineEdit()
        self.lora_dir.setPlaceholderText("none: Generate's Browse… adds LoRA files from anywhere")
        self.lora_dir.setToolTip("The Generate panel lists the LoRA files (.safetensors, .pt, .pth, .bin) of this "
                                 "folder and its sub-folders")
        self.lora_dir_browse = QPushButton("Browse…")
        self.crisp = QCheckBox("Scale small videos up with crisp pixels (nearest neighbour) instead of blurring")
        self.show_porting = QCheckBox("Show the porting panels (Weight mapping, Parity) in the sidebar")
        self.show_porting.setToolTip("Off: the creator layout (Generate, Queue, History, Models, Settings); the "
                                     "Models panel's Inspect mapping / Parity… still open them")
        self.num_gpus = QSpinBox()
        self.num_gpus.setRange(1, 64)
        self.num_gpus.setFixedWidth(96)
        self.gpu_ids = QLineEdit()
        self.gpu_ids.setPlaceholderText("all that the engine sees (e.g. 0,2)")
        self.gpu_ids.setToolTip("Which of this computer's GPUs the inference process may use (its "
                                "CUDA_VISIBLE_DEVICES); it numbers them 0, 1, ... Empty: all of them. Saving a "
                                "change restarts the idle inference process")
        self.attention = QComboBox()
        for name in ATTENTION_BACKENDS:
            self.attention.addItem("Automatic (the fastest available)" if name == "auto" else name, name)
        self.memory_mode = QComboBox()
        for mode, text in MEMORY_MODE_TEXT.items():
            self.memory_mode.addItem(text, mode)
        self.memory_mode.setToolTip("auto: the engine picks from the GPU's free memory and the request size, and "
                                    "says what it picked (History → Memory). docs/memory.md")
        self.weights = QComboBox()
        for storage, text in (("bf16", "bf16 (as released)"), ("fp8", "fp8 (half the memory, small error)"),
                              ("gguf", "GGUF file…")):
            self.weights.addItem(text, storage)
        self.weights.setToolTip("How the transformer's weights are kept: fp8 or a ComfyUI GGUF file (Q8_0, Q6_K, "
                                "Q5_K, Q4_K) of the same model need less GPU and host memory; LoRAs need bf16")
        self.gguf_path = QLineEdit()
        self.gguf_path.setPlaceholderText("the DiT's .gguf file")
        self.gguf_browse = QPushButton("Browse…")
        self.vae_tiling = QCheckBox("VAE tiling (decode in tiles: less memory, a little slower)")
        self.te_offload = QCheckBox("Keep the text encoder on the CPU between uses")
        self.dit_offload = QCheckBox("Keep the transformer on the CPU between uses (slow, least memory)")
        self.vae_offload = QCheckBox("Keep the VAE on the CPU between uses")
        self.preview = QCheckBox("Show a live preview while generating")
        self.hang_timeout = QSpinBox()
        self.hang_timeout.setRange(5, 3600)
        self.hang_timeout.setSuffix(" s")
        self.hang_timeout.setFixedWidth(96)
        self.hang_timeout.setToolTip("If the inference process sends no heartbeat for this long it is restarted")
        self.engine = EngineSettings()  # this computer / a remote host over SSH; mp / Ray for several GPUs
        self.save_button = QPushButton("Save")
        self.save_button.setObjectName("primaryButton")
        self.revert_button = QPushButton("Revert")
        self.status = QLabel()
        self.status.setObjectName("dimLabel")
        self.paths_label = QLabel()
        self.paths_label.setObjectName("dimLabel")
        self.paths_label.setWordWrap(True)
        self.paths_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.rows = {
            "output_dir": FormRow(self.output_dir, self.output_browse),
            "default_model": FormRow(self.default_model, self.model_browse),
            "models_dir": FormRow(self.models_dir, self.models_dir_browse),
            "lora_dir": FormRow(self.lora_dir, self.lora_dir_browse),
            "num_gpus": FormRow(self.num_gpus, stretch_first=False),
            "gpu_ids": FormRow(self.gpu_ids),
            "attention_backend": FormRow(self.attention, stretch_first=False),
            "memory_mode": FormRow(self.memory_mode, stretch_first=False),
            "weight_storage": FormRow(self.weights, self.gguf_path, self.gguf_browse, stretch_first=False),
            "hang_timeout": FormRow(self.hang_timeout, stretch_first=False),
        }
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        form.setVerticalSpacing(10)
        form.addRow("Output folder", self.rows["output_dir"])
        form.addRow("Default model", self.rows["default_model"])
        form.addRow("Models folder", self.rows["models_dir"])
        form.addRow("LoRA folder", self.rows["lora_dir"])
        form.addRow("GPUs", self.rows["num_gpus"])
        form.addRow("Use GPUs", self.rows["gpu_ids"])
        form.addRow("Attention", self.rows["attention_backend"])
        form.addRow("Engine", self.engine)
        offload = QVBoxLayout()
        offload.setSpacing(8)
        for cb in (self.vae_tiling, self.te_offload, self.dit_offload, self.vae_offload):
            offload.addWidget(cb)
        form.addRow("Memory mode", self.rows["memory_mode"])
        form.addRow("DiT weights", self.rows["weight_storage"])
        form.addRow("Memory", offload)
        form.addRow("Preview", self.preview)
        form.addRow("Player", self.crisp)
        form.addRow("Layout", self.show_porting)
        form.addRow("Hang timeout", self.rows["hang_timeout"])
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.status, 1)

        box = QWidget()
        box.setMaximumWidth(900)
        bl = QVBoxLayout(box)
        bl.setContentsMargins(16, 16, 16, 16)
        title = QLabel("Settings")
        title.setObjectName("panelTitle")
        bl.addWidget(title)
        note = QLabel("Model options (GPUs, attention, memory) apply to the next job; the model is reloaded "
                      "when they change.")
        note.setObjectName("dimLabel")
        note.setWordWrap(True)
        bl.addWidget(note)
        bl.addLayout(form)
        bl.addSpacing(8)
        bl.addLayout(buttons)
        bl.addSpacing(16)
        bl.addWidget(self.paths_label)
        bl.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(box)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(scroll)

        self.output_browse.clicked.connect(self._browse_output)
        self.model_browse.clicked.connect(self._browse_model)
        self.models_dir_browse.clicked.connect(self._browse_models_dir)
        self.lora_dir_browse.clicked.connect(self._browse_lora_dir)
        self.gguf_browse.clicked.connect(self._browse_gguf)
        self.weights.currentIndexChanged.connect(lambda _i: self._weights_changed())
        self.save_button.clicked.connect(self.save)
        self.revert_button.clicked.connect(self.load)
        self.load()

    def load(self) -> None:
        s = self.studio.settings
        self.output_dir.setText(s.output_dir)
        self.default_model.clear()
        self.default_model.addItems([m for m in s.recent_models if m])
        self.default_model.setEditText(s.default_model)
        self.default_model.lineEdit().setPlaceholderText(self._default_model_placeholder())
        self.default_model.setToolTip(s.default_model or self._fallback_model())
        self.models_dir.setText(s.models_dir)
        self.models_dir.setPlaceholderText(f"default: {engine_models_dir()}")
        self.lora_dir.setText(s.lora_dir)
        self.crisp.setChecked(s.crisp_small_videos)
        self.show_porting.setChecked(s.show_porting)
        self.num_gpus.setValue(s.num_gpus)
        self.gpu_ids.setText(s.gpu_ids)
        self.memory_mode.setCurrentIndex(max(0, self.memory_mode.findData(s.memory_mode)))
        gguf = s.weight_storage.lower().endswith(".gguf")
        self.weights.setCurrentIndex(max(0, self.weights.findData("gguf" if gguf else s.weight_storage)))
        self.gguf_path.setText(s.weight_storage if gguf else "")
        self._weights_changed()
        self.attention.setCurrentIndex(max(0, self.attention.findData(s.attention_backend)))
        self.vae_tiling.setChecked(s.vae_tiling)
        self.te_offload.setChecked(s.text_encoder_cpu_offload)
        self.dit_offload.setChecked(s.dit_cpu_offload)
        self.vae_offload.setChecked(s.vae_cpu_offload)
        self.preview.setChecked(s.preview)
        self.hang_timeout.setValue(s.hang_timeout)
        self.engine.load(s)
        for r in self.rows.values():
            r.set_error(None)
        self.status.setText(self.studio.settings_store.error or "")
        p = self.studio.paths
        self.paths_label.setText(f"Settings file: {p.settings_file}\nJob database: {p.jobs_db}\n"
                                 f"Thumbnails: {p.thumbnails_dir}")

    def _fallback_model(self) -> str:
        """The model the Generate panel opens with while no default is set: the last one used, else the
        built-in one ('' when there is neither)."""
        from app.panels.generate_form import builtin_model

        recent = [m for m in self.studio.settings.recent_models if m]
        return recent[0] if recent else builtin_model()

    def _default_model_placeholder(self) -> str:
        from app.panels.generate_form import builtin_model

        model = self._fallback_model()
        if not model:
            return "Model folder or repo id"
        if model == builtin_model():
            return f"Empty: the built-in model ({Path(model).name}) is used"
        return f"Empty: the last model used ({Path(model).name}) opens"

    def collect(self) -> Settings | None:
        """The settings in the form, or None (with inline errors) when something is wrong."""
        from fastvideo.pipelines.validation import output_folder_problem

        ok = True
        for r in self.rows.values():
            r.set_error(None)
        out = self.output_dir.text().strip()
        problem = output_folder_problem(out) if out else "Choose an output folder"
        if problem:
            self.rows["output_dir"].set_error(problem)
            ok = False
        model = self.default_model.currentText().strip()
        remote = self.engine.engine.currentData() == "remote"  # then model paths are the remote host's
        if model and not remote and not Path(model).expanduser().is_dir() and ("/" not in model or os.path.isabs(model)
                                                                               or model.startswith((".", "~"))):
            self.rows["default_model"].set_error(f"No such folder: {model}")
            ok = False
        models_dir = self.models_dir.text().strip()
        if models_dir and Path(models_dir).expanduser().exists() and not Path(models_dir).expanduser().is_dir():
            self.rows["models_dir"].set_error(f"Not a folder: {models_dir}")
            ok = False
        try:
            gpu_ids = parse_gpu_ids(self.gpu_ids.text())
        except ValueError as exc:
            self.rows["gpu_ids"].set_error(str(exc))
            ok = False
        else:
            seen = self.visible_gpus()
            too_high = [i for i in gpu_ids.split(",") if gpu_ids and seen is not None and int(i) >= seen]
            if too_high and not self.studio.settings.gpu_ids:  # numbers are checkable against an unrestricted engine
                self.rows["gpu_ids"].set_error(
                    f"No GPU {', '.join(too_high)}: the inference process sees "
                    + (f"GPUs 0-{seen - 1}" if seen else "no GPU (CPU only)"))
                ok = False
        storage = self.weights.currentData()
        if storage == "gguf":
            gguf = self.gguf_path.text().strip()
            if not gguf.lower().endswith(".gguf"):
                self.rows["weight_storage"].set_error("Choose the DiT's .gguf file (a GGUF of the model you run)")
                ok = False
            elif not remote and not Path(gguf).expanduser().is_file():
                self.rows["weight_storage"].set_error(f"No such file: {gguf}")
                ok = False
            storage = str(Path(gguf).expanduser()) if not remote else gguf
        lora_dir = self.lora_dir.text().strip()
        if lora_dir and not Path(lora_dir).expanduser().is_dir():
            self.rows["lora_dir"].set_error(f"No such folder: {lora_dir}")
            ok = False
        if not ok:
            return None
        s = dataclasses.replace(self.studio.settings)
        s.recent_models = list(s.recent_models)
        s.output_dir = str(Path(out).expanduser())
        s.default_model = model
        s.models_dir = str(Path(models_dir).expanduser()) if models_dir else ""
        if model:
            s.remember_model(model)
        s.num_gpus = self.num_gpus.value()
        s.gpu_ids = gpu_ids
        s.memory_mode = self.memory_mode.currentData()
        s.weight_storage = storage
        s.attention_backend = self.attention.currentData()
        s.vae_tiling = self.vae_tiling.isChecked()
        s.text_encoder_cpu_offload = self.te_offload.isChecked()
        s.dit_cpu_offload = self.dit_offload.isChecked()
        s.vae_cpu_offload = self.vae_offload.isChecked()
        s.preview = self.preview.isChecked()
        s.hang_timeout = self.hang_timeout.value()
        if not self.engine.apply(s):
            return None
        s.lora_dir = str(Path(lora_dir).expanduser()) if lora_dir else ""
        s.crisp_small_videos = self.crisp.isChecked()
        s.show_porting = self.show_porting.isChecked()
        return s

    def _weights_changed(self) -> None:
        gguf = self.weights.currentData() == "gguf"
        self.gguf_path.setVisible(gguf)
        self.gguf_browse.setVisible(gguf)
        self.rows["weight_storage"].set_error(None)

    def _browse_gguf(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "The DiT's GGUF file", self.gguf_path.text(), "GGUF (*.gguf)")
        if path:
            self.gguf_path.setText(path)

    def visible_gpus(self) -> int | None:
        """How many GPUs the inference process said it sees (None: not known yet, or a remote engine)."""
        if self.studio.settings.engine == "remote":
            return None
        return getattr(self.studio.runner, "gpu_count", None)

    def save(self) -> bool:
        s = self.collect()
        if s is None:
            self.status.setText("Not saved: fix the fields marked in red.")
            return False
        try:
            self.studio.save_settings(s)
        except OSError as exc:
            self.status.setText(f"Could not save the settings: {exc}")
            return False
        self.status.setText("Saved.")
        return True

    def _browse_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.output_dir.text() or str(Path.home()))
        if folder:
            self.output_dir.setText(folder)

    def _browse_models_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Models folder", self.models_dir.text()
                                                  or str(engine_models_dir()))
        if folder:
            self.models_dir.setText(folder)

    def _browse_lora_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "LoRA folder", self.lora_dir.text() or str(Path.home()))
        if folder:
            self.lora_dir.setText(folder)

    def _browse_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Default model folder", str(Path.home()))
        if folder:
            self.default_model.setEditText(folder)

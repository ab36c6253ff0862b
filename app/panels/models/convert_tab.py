"""The Models panel's "Convert official → Diffusers" and "Hub-ready folder" tabs (a mixin of :class:`ModelsPanel`).

Conversion runs in a ``python -m fastvideo convert`` subprocess (``app.services.conversion``); a hub-ready
folder is assembled in a background thread.  No torch here.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QWidget,
)

from app.panels.common import browse_row, error_label, form_tab
from app.services.background import run_in_background
from app.services.catalogue import describe_local
from app.services.conversion import ConversionProcess, assemble_hub_folder

#: The flow-shift box's lowest value shows "auto": no --flow-shift is passed and fastvideo convert picks the
#: model's own default (5.0 for Wan2.2 TI2V-5B, else 3.0, Wan's UniPC setting for 480p / 1.3B).
AUTO_FLOW_SHIFT = 0.0
DEFAULT_FLOW_SHIFT = AUTO_FLOW_SHIFT


class ConvertTabMixin:
    """The conversion and hub-ready-folder forms and what they do; the panel provides ``models_root``, ``tabs``,
    ``notify``, ``refresh``, ``engine_env``, ``selected_entry`` and ``_pick_dir``."""

    def _build_convert_tab(self) -> QWidget:
        w = QWidget()
        self.convert_source_edit = QLineEdit()
        self.convert_source_edit.setPlaceholderText("official folder (config.json, DiT safetensors, Wan2.1_VAE.pth…)")
        self.convert_name_edit = QLineEdit()
        self.convert_name_edit.setPlaceholderText("name under converted_weights/")
        self.convert_type = QComboBox()
        self.convert_type.addItem("detect from config.json", None)
        self.convert_type.addItem("t2v", "t2v")
        self.convert_type.addItem("i2v", "i2v")
        self.convert_image_enc_edit = QLineEdit()
        self.convert_image_enc_edit.setPlaceholderText(
            "I2V only: a Diffusers Wan I2V folder to copy image_encoder/ from")
        self.convert_overwrite = QCheckBox("Overwrite an existing output")
        self.convert_flow_shift = QDoubleSpinBox()
        self.convert_flow_shift.setRange(AUTO_FLOW_SHIFT, 100.0)
        self.convert_flow_shift.setSpecialValueText("auto")
        self.convert_flow_shift.setDecimals(2)
        self.convert_flow_shift.setSingleStep(0.5)
        self.convert_flow_shift.setValue(DEFAULT_FLOW_SHIFT)
        self.convert_flow_shift.setFixedWidth(96)
        self.convert_flow_shift.setToolTip("The scheduler's flow_shift (fastvideo convert --flow-shift). auto: the "
                                           "model's default (5.0 for Wan2.2 TI2V-5B, else 3.0); 3.0 suits 480p and "
                                           "the 1.3B model; 5.0 is usual for 720p 14B")
        self.convert_button = QPushButton("Convert")
        self.convert_button.setObjectName("primaryButton")
        self.cancel_convert_button = QPushButton("Cancel")
        self.cancel_convert_button.setObjectName("dangerButton")
        self.cancel_convert_button.setEnabled(False)
        self.convert_bar = QProgressBar()
        self.convert_bar.setTextVisible(False)
        self.convert_bar.setRange(0, 1)
        self.convert_bar.setValue(0)
        self.convert_label = QLabel("The converter checks every key against our model before writing anything, "
                                    "and writes atomically (no partial output).")
        self.convert_label.setObjectName("dimLabel")
        self.convert_label.setWordWrap(True)
        self.convert_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        #: the converter's error as plain text: it lists one problem a line
        self.convert_error = error_label()
        form = QFormLayout()
        row, b = browse_row(self.convert_source_edit)
        b.clicked.connect(lambda: self._pick_dir(self.convert_source_edit, "Official checkpoint folder"))
        form.addRow("Source", row)
        form.addRow("Output name", self.convert_name_edit)
        form.addRow("Model type", self.convert_type)
        shift_row = QHBoxLayout()
        shift_row.addWidget(self.convert_flow_shift)
        hint = QLabel("auto: 5.0 for Wan2.2 TI2V-5B, else 3.0; 5.0 suits 720p 14B")
        hint.setObjectName("dimLabel")
        shift_row.addWidget(hint, 1)
        form.addRow("Flow shift", shift_row)
        row, b = browse_row(self.convert_image_enc_edit)
        b.clicked.connect(lambda: self._pick_dir(self.convert_image_enc_edit, "Diffusers I2V folder"))
        form.addRow("Image encoder", row)
        form.addRow("", self.convert_overwrite)
        form_tab(w, form, (self.convert_button, self.cancel_convert_button),
                 (self.convert_bar, self.convert_label, self.convert_error))
        self.convert_source_edit.textChanged.connect(self._convert_source_changed)
        self.convert_button.clicked.connect(self.start_conversion)
        self.cancel_convert_button.clicked.connect(self.cancel_conversion)
        return w

    def _build_hub_tab(self) -> QWidget:
        w = QWidget()
        self.hub_source_edit = QLineEdit()
        self.hub_source_edit.setPlaceholderText("converted model folder holding the component")
        self.hub_component = QComboBox()
        self.hub_base_edit = QLineEdit()
        self.hub_base_edit.setPlaceholderText("optional: Diffusers model for the other components (default: the same)")
        self.hub_output_edit = QLineEdit()
        self.hub_output_edit.setPlaceholderText("folder to write (ready for `hf upload`)")
        self.hub_repo_edit = QLineEdit()
        self.hub_repo_edit.setPlaceholderText("optional: owner/name for the model card")
        self.hub_overwrite = QCheckBox("Overwrite an existing output")
        self.hub_button = QPushButton("Assemble")
        self.hub_button.setObjectName("primaryButton")
        self.hub_bar = QProgressBar()
        self.hub_bar.setTextVisible(False)
        self.hub_label = QLabel("Takes one converted component and the rest of a base model; adds a model card "
                                "and LFS attributes; checks the result loads.")
        self.hub_label.setObjectName("dimLabel")
        self.hub_label.setWordWrap(True)
        self.hub_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout()
        row, b = browse_row(self.hub_source_edit)
        b.clicked.connect(lambda: self._pick_dir(self.hub_source_edit, "Converted model"))
        form.addRow("Converted model", row)
        form.addRow("Component", self.hub_component)
        row, b = browse_row(self.hub_base_edit)
        b.clicked.connect(lambda: self._pick_dir(self.hub_base_edit, "Base model"))
        form.addRow("Base model", row)
        row, b = browse_row(self.hub_output_edit)
        b.clicked.connect(lambda: self._pick_dir(self.hub_output_edit, "Output folder"))
        form.addRow("Output", row)
        form.addRow("Repo id", self.hub_repo_edit)
        form.addRow("", self.hub_overwrite)
        form_tab(w, form, (self.hub_button,), (self.hub_bar, self.hub_label))
        self.hub_source_edit.textChanged.connect(self._hub_source_changed)
        self.hub_button.clicked.connect(self.start_assemble)
        return w

    # ================================================================== conversion
    def _convert_selected(self) -> None:
        e = self.selected_entry()
        if e is not None:
            self.convert_source_edit.setText(str(e.path))
            self.tabs.setCurrentIndex(1)

    def _convert_source_changed(self, text: str) -> None:
        name = Path(text.strip()).name if text.strip() else ""
        self.convert_name_edit.setText(name)

    def chosen_flow_shift(self) -> float | None:
        """The flow shift to pass to fastvideo convert; None (auto) lets it use the model's own default."""
        value = float(self.convert_flow_shift.value())
        return None if value <= AUTO_FLOW_SHIFT else value

    def conversion_output(self) -> Path:
        return self.models_root / "converted_weights" / self.convert_name_edit.text().strip()

    def start_conversion(self) -> ConversionProcess | None:
        if self.conversion is not None and self.conversion.is_active():
            return None
        src = self.convert_source_edit.text().strip()
        name = self.convert_name_edit.text().strip()
        if not src or not Path(src).is_dir():
            self._conversion_failed(f"choose the official checkpoint folder to convert ({src or 'none given'})")
            return None
        if not name or "/" in name or "\\" in name:
            self._conversion_failed("enter a folder name for the output (under converted_weights/)")
            return None
        out = self.conversion_output()
        out.parent.mkdir(parents=True, exist_ok=True)
        proc = ConversionProcess(src, out, model_type=self.convert_type.currentData(),
                                 overwrite=self.convert_overwrite.isChecked(),
                                 image_encoder_from=self.convert_image_enc_edit.text().strip() or None,
                                 flow_shift=self.chosen_flow_shift(), env=self.engine_env(),
                                 parent=self)
        self.convert_error.hide()
        proc.progress.connect(self._conversion_progress)
        proc.finished.connect(self._conversion_finished)
        proc.failed.connect(self._conversion_failed)
        proc.cancelled.connect(self._conversion_cancelled)
        self.conversion = proc
        self.convert_button.setEnabled(False)
        self.cancel_convert_button.setEnabled(True)
        self.convert_bar.setRange(0, 0)  # busy until the first file is written
        self.convert_label.setText(f"Checking {Path(src).name} against our model (headers only)…")
        proc.start()
        return proc

    def cancel_conversion(self) -> None:
        if self.conversion is not None:
            self.conversion.cancel()

    def _conversion_progress(self, done: int, total: int, file: str) -> None:
        self.convert_bar.setRange(0, total)
        self.convert_bar.setValue(done)
        self.convert_label.setText(f"[{done}/{total}] {file}")

    def _conversion_done_ui(self) -> None:
        self.convert_button.setEnabled(True)
        self.cancel_convert_button.setEnabled(False)
        if self.convert_bar.maximum() == 0:
            self.convert_bar.setRange(0, 1)
            self.convert_bar.setValue(0)

    def _conversion_finished(self, out: str) -> None:
        self._conversion_done_ui()
        self.convert_bar.setValue(self.convert_bar.maximum())
        self.convert_label.setText(f"Converted into {out}.")
        self.notify.emit(f"Converted into {out}.", "info")
        self.hub_source_edit.setText(out)
        self.refresh()

    def _conversion_failed(self, message: str) -> None:
        self._conversion_done_ui()
        self.convert_label.setText("Conversion failed:")
        self.convert_error.setText(message)  # plain text, line breaks kept
        self.convert_error.show()

    def _conversion_cancelled(self) -> None:
        self._conversion_done_ui()
        self.convert_label.setText("Conversion cancelled; nothing was written.")

    # ================================================================== hub-ready folder
    def _hub_source_changed(self, text: str) -> None:
        self.hub_component.clear()
        local = describe_local(Path(text.strip()))
        if local["layout"] != "Diffusers" or local["error"]:
            return
        for k in local["present"]:
            self.hub_component.addItem(k)
        i = self.hub_component.findText("transformer")
        if i >= 0:
            self.hub_component.setCurrentIndex(i)
        if not self.hub_output_edit.text():
            self.hub_output_edit.setText(str(self.models_root / "hub" / Path(text.strip()).name))

    def start_assemble(self) -> None:
        if self.assembling:
            return
        src, comp = self.hub_source_edit.text().strip(), self.hub_component.currentText()
        out = self.hub_output_edit.text().strip()
        if not src or not comp or not out:
            self.hub_label.setText("<span style='color:#ff7b7b'>Choose the converted model, its component and "
                                   "an output folder.</span>")
            return
        base = self.hub_base_edit.text().strip() or None
        repo = self.hub_repo_edit.text().strip()
        overwrite = self.hub_overwrite.isChecked()
        self.assembling = True
        self.hub_button.setEnabled(False)
        self.hub_bar.setRange(0, 0)
        bridge = _ProgressBridge(self)
        bridge.progress.connect(self._hub_progress)

        def work():
            return assemble_hub_folder(src, comp, out, base=base, repo_id=repo, overwrite=overwrite,
                                       progress=lambda d, t, f: bridge.progress.emit(d, t, f))

        run_in_background(work, self._hub_done, self._hub_failed)

    def _hub_progress(self, done: int, total: int, file: str) -> None:
        self.hub_bar.setRange(0, total)
        self.hub_bar.setValue(done)
        self.hub_label.setText(f"[{done}/{total}] {file}")

    def _hub_done(self, out) -> None:
        self.assembling = False
        self.hub_button.setEnabled(True)
        self.hub_bar.setRange(0, 1)
        self.hub_bar.setValue(1)
        self.hub_label.setText(f"Hub-ready folder written: {out} (upload with `hf upload OWNER/NAME {out}`).")
        self.notify.emit(f"Hub-ready folder written: {out}", "info")

    def _hub_failed(self, exc: BaseException) -> None:
        self.assembling = False
        self.hub_button.setEnabled(True)
        self.hub_bar.setRange(0, 1)
        self.hub_bar.setValue(0)
        self.hub_label.setText(f"<span style='color:#ff7b7b'>Could not assemble: {exc}</span>")



class _ProgressBridge(QObject):
    progress = Signal(int, int, str)

"""The Generate panel's LoRA picker: LoRAs from the LoRA folder (Settings) or any file (Browse…), each with a
strength; a row per LoRA with its name (the path in the tooltip), strength and a remove button.  For a model
with two experts (Wan2.2 A14B) each row also says which expert the LoRA goes into: both, the high-noise
``transformer`` or the low-noise ``transformer_2`` (the engine's ``loras`` / ``loras_2``)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.services.loras import LORA_SUFFIXES, list_lora_files

STRENGTH_RANGE = (-4.0, 4.0)
#: where a LoRA goes on a two-expert model (the engine's SamplingParam.loras / loras_2)
TARGETS = (("both", "Both experts"), ("transformer", "High noise"), ("transformer_2", "Low noise"))


class LoraRow(QWidget):
    """One chosen LoRA: name, strength, remove."""

    removed = Signal(object)  # self
    changed = Signal()

    def __init__(self, path: str, strength: float = 1.0, target: str = "both", parent: QWidget | None = None):
        super().__init__(parent)
        self.path = path
        self.target = QComboBox()
        for value, text in TARGETS:
            self.target.addItem(text, value)
        self.target.setCurrentIndex(max(0, self.target.findData(target)))
        self.target.setToolTip("Which expert the LoRA is merged into: both, the high-noise expert (transformer, "
                               "early steps) or the low-noise one (transformer_2, late steps)")
        self.target.hide()  # shown for models with two experts
        self.name = QLabel(Path(path).name)
        self.name.setToolTip(path)
        self.name.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.name.setObjectName("loraName")
        self.strength = QDoubleSpinBox()
        self.strength.setRange(*STRENGTH_RANGE)
        self.strength.setSingleStep(0.05)
        self.strength.setDecimals(2)
        self.strength.setValue(float(strength))
        self.strength.setFixedWidth(80)
        self.strength.setToolTip("Strength: 1 applies the LoRA as trained, 0 not at all; negative values invert it")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setObjectName("linkButton")
        self.remove_button.setToolTip(f"Remove {Path(path).name}")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.name, 1)
        lay.addWidget(QLabel("×"))
        lay.addWidget(self.strength)
        lay.addWidget(self.target)
        lay.addWidget(self.remove_button)
        self.strength.valueChanged.connect(lambda _v: self.changed.emit())
        self.target.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.remove_button.clicked.connect(lambda: self.removed.emit(self))


class LoraPicker(QWidget):
    """``loras()`` -> [(path, strength)]; ``set_loras`` puts a job's back; ``changed`` on every edit."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.folder = ""
        self.experts: list[str] = []
        self.rows: list[LoraRow] = []
        self.folder_combo = QComboBox()
        self.folder_combo.setMinimumContentsLength(14)
        self.folder_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.folder_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.setToolTip("Add a LoRA file from anywhere (.safetensors, .pt, .pth, .bin)")
        self.strict = QCheckBox("Strict")
        self.strict.setChecked(True)
        self.strict.setToolTip("On: a LoRA key that fits no weight of the model is an error (nothing is applied).\n"
                               "Off: the keys that fit are applied and the others are skipped (listed in the log).")
        self.rows_box = QVBoxLayout()
        self.rows_box.setContentsMargins(0, 0, 0, 0)
        self.rows_box.setSpacing(2)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.folder_combo, 1)
        top.addWidget(self.browse_button)
        top.addWidget(self.strict)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addLayout(top)
        lay.addLayout(self.rows_box)
        self.folder_combo.activated.connect(self._folder_chosen)
        self.browse_button.clicked.connect(self.browse)
        self.strict.toggled.connect(lambda _c: self.changed.emit())
        self.set_folder("")

    # ------------------------------------------------------------------ folder
    def set_folder(self, folder: str) -> None:
        """List the LoRA files of ``folder`` (the Settings' LoRA folder) in the combo box."""
        self.folder = folder or ""
        files = list_lora_files(self.folder)
        self.folder_combo.clear()
        # Short first items (the box is narrow in the form); the whole story in the tooltip.
        if not self.folder:
            self.folder_combo.addItem("Set a folder in Settings")
            self.folder_combo.setToolTip("No LoRA folder: set one in Settings to list its LoRAs here; "
                                         "Browse… adds any LoRA file")
        elif not files:
            self.folder_combo.addItem("No LoRA files in the folder")
            self.folder_combo.setToolTip(f"No LoRA files (.safetensors, .pt, .pth, .bin) in {self.folder}")
        else:
            self.folder_combo.setToolTip(f"LoRA files in {self.folder}")
            self.folder_combo.addItem(f"Add a LoRA ({len(files)})…")
        root = Path(self.folder).expanduser() if self.folder else None
        for p in files:
            self.folder_combo.addItem(str(p.relative_to(root)) if root else p.name, str(p))
            self.folder_combo.setItemData(self.folder_combo.count() - 1, str(p), 3)  # ToolTipRole
        self.folder_combo.setEnabled(bool(files))
        self.folder_combo.setCurrentIndex(0)

    def folder_files(self) -> list[str]:
        return [self.folder_combo.itemData(i) for i in range(1, self.folder_combo.count())]

    def _folder_chosen(self, index: int) -> None:
        path = self.folder_combo.itemData(index)
        self.folder_combo.setCurrentIndex(0)
        if path:
            self.add(path)

    def browse(self) -> None:
        start = self.folder or (str(Path(self.rows[-1].path).parent) if self.rows else str(Path.home()))
        pattern = " ".join(f"*{s}" for s in LORA_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, "Add a LoRA", start, f"LoRA files ({pattern});;All files (*)")
        if path:
            self.add(path)

    # ------------------------------------------------------------------ rows
    def set_experts(self, experts: list[str]) -> None:
        """The model's denoisers: with two, each row offers which expert its LoRA goes into."""
        self.experts = list(experts or [])
        for row in self.rows:
            row.target.setVisible(self.two_experts())

    def two_experts(self) -> bool:
        return len(self.experts) >= 2

    def add(self, path: str, strength: float = 1.0, target: str = "both") -> LoraRow:
        """Add a LoRA (a LoRA already in the list for the same expert is not added twice: its row is returned)."""
        for row in self.rows:
            if row.path == path and (row.target.currentData() == target or not self.two_experts()):
                return row
        row = LoraRow(path, strength, target, self)
        row.target.setVisible(self.two_experts())
        row.removed.connect(self._remove)
        row.changed.connect(self.changed)
        self.rows.append(row)
        self.rows_box.addWidget(row)
        self.changed.emit()
        return row

    def _remove(self, row: LoraRow) -> None:
        if row in self.rows:
            self.rows.remove(row)
            self.rows_box.removeWidget(row)
            row.deleteLater()
            self.changed.emit()

    def clear(self) -> None:
        for row in list(self.rows):
            self.rows.remove(row)
            self.rows_box.removeWidget(row)
            row.deleteLater()

    def _specs(self, targets: tuple[str, ...]) -> list[tuple[str, float]]:
        return [(row.path, round(row.strength.value(), 4)) for row in self.rows
                if not self.two_experts() or row.target.currentData() in targets]

    def loras(self) -> list[tuple[str, float]]:
        """The LoRAs for the model's DiT (``transformer``; on a two-expert model, those for the high-noise one)."""
        return self._specs(("both", "transformer"))

    def loras_2(self) -> list[tuple[str, float]]:
        """The LoRAs for the second expert (``transformer_2``); [] on a one-expert model."""
        return self._specs(("both", "transformer_2")) if self.two_experts() else []

    def set_loras(self, loras: list[tuple[str, float]], strict: bool = True,
                  loras_2: list[tuple[str, float]] | None = None) -> None:
        """Show exactly these LoRAs (no ``changed`` for an unchanged list): one in both lists with the same
        strength is one row for both experts."""
        first = [(p, round(float(s), 4)) for p, s in loras]
        second = [(p, round(float(s), 4)) for p, s in (loras_2 or [])]
        if (self.loras(), self.loras_2()) == (first, second) and self.strict.isChecked() == strict:
            return
        self.blockSignals(True)
        self.clear()
        for spec in first:
            self.add(spec[0], spec[1], "both" if spec in second else "transformer")
        for spec in second:
            if spec not in first:
                self.add(spec[0], spec[1], "transformer_2")
        self.strict.setChecked(bool(strict))
        self.blockSignals(False)
        self.changed.emit()

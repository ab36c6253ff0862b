"""The Models panel: installed models, hub downloads, conversion, hub-ready folders.

Everything heavy runs elsewhere: scans and hub-folder assembly in a background thread,
downloads on their own thread (``app.services.downloads``), conversion in a
``python -m fastvideo convert`` subprocess (``app.services.conversion``).  No torch here.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QObject, QSortFilterProxyModel, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.itemmodels.models_list import EntryRole, ModelEntry, ModelsTableModel, SortRole, human_bytes, scan_models
from app.panels.mapping import error_label
from app.services.background import run_in_background
from app.services.conversion import ConversionProcess, assemble_hub_folder
from app.services.downloads import Download, default_local_dir, free_space, human_size, human_time
from app.services.settings import MODELS_DIR_ENV

#: components whose checkpoint is checked against the model (headers only) before a model is called loadable
FIT_COMPONENTS = ("transformer", "vae", "text_encoder", "image_encoder")
_PROBLEMS = (("duplicate_target", "duplicate target"), ("missing", "missing"), ("unexpected", "unexpected"),
             ("shape_mismatch", "wrong shape"))
LOADS_COLUMN = 6


class FitModelsTableModel(ModelsTableModel):
    """The models table, with "Loads" from the header-only mapping check (what ``fastvideo inspect-mapping``
    does): "checking…" until the inference process answers, "no — checkpoint does not fit" when it does not."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.fit: dict[str, dict] = {}  # str(path) -> {"state": pending|ok|bad|error, "problems": {...}, ...}

    def fit_of(self, e: ModelEntry) -> dict | None:
        return self.fit.get(str(e.path))

    def loads_text(self, e: ModelEntry) -> str:
        f = self.fit_of(e)
        if e.loads and f is not None:
            if f["state"] == "pending":
                return "checking…"
            if f["state"] == "bad":
                return "no — checkpoint does not fit"
        return e.loads_text

    def loads(self, e: ModelEntry) -> bool:
        f = self.fit_of(e)
        return e.loads and (f is None or f["state"] in ("ok", "error"))

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if index.isValid() and index.column() == LOADS_COLUMN and 0 <= index.row() < len(self.entries):
            e = self.entries[index.row()]
            if role in (Qt.ItemDataRole.DisplayRole, SortRole):
                text = self.loads_text(e)
                return text if role == Qt.ItemDataRole.DisplayRole else text.lower()
            if role == Qt.ItemDataRole.ForegroundRole:
                from PySide6.QtGui import QColor

                return QColor("#45c486") if self.loads(e) else QColor("#d9a441")
            if role == Qt.ItemDataRole.ToolTipRole and (self.fit_of(e) or {}).get("summary"):
                return f"{e.path}\n{self.fit_of(e)['summary']}"
        return super().data(index, role)

    def fit_changed(self, path: str) -> None:
        for row, e in enumerate(self.entries):
            if str(e.path) == path:
                self.dataChanged.emit(self.index(row, 0), self.index(row, self.columnCount() - 1))

#: fastvideo convert --flow-shift's default (Wan's UniPC settings for 480p / 1.3B)
DEFAULT_FLOW_SHIFT = 3.0


def default_models_root() -> Path:
    from fastvideo.configs.registry import models_dir

    return models_dir()


def _browse_row(edit: QLineEdit, button_text: str = "Browse…") -> tuple[QHBoxLayout, QPushButton]:
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    b = QPushButton(button_text)
    row.addWidget(b)
    return row, b


class ModelsPanel(QWidget):
    #: a model folder to open in the weight-mapping inspector / parity panel
    inspect_requested = Signal(str)
    parity_requested = Signal(str)
    #: a model folder to generate with (the window switches to Generate with it selected)
    generate_requested = Signal(str)
    #: the loadable (Diffusers) model folders found by the last scan
    models_changed = Signal(list)
    #: a message for the window's banner: text, level
    notify = Signal(str, str)

    def __init__(self, studio, models_root: str | os.PathLike | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.studio = studio
        #: a folder given here wins over the Settings' models folder (tests, --models-dir)
        self._fixed_root = bool(models_root)
        self._env_applied = False
        self.models_root = Path(models_root) if models_root else self.configured_root()
        self.download: Download | None = None
        self.conversion: ConversionProcess | None = None
        self.assembling = False
        self._local_dir_edited = False
        self.scan_count = 0
        self._scanning = False

        title = QLabel("Models")
        title.setObjectName("panelTitle")
        self.root_label = QLabel()
        self.root_label.setObjectName("dimLabel")
        self.root_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        # ---- installed models
        self.model = FitModelsTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SortRole)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter models…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.proxy.setFilterFixedString)
        self.refresh_button = QPushButton("Refresh")
        self.open_button = QPushButton("Open folder")
        self.inspect_button = QPushButton("Inspect mapping")
        self.parity_button = QPushButton("Parity…")
        self.generate_button = QPushButton("Use in Generate")
        self.generate_button.setToolTip("Switch to Generate with this model selected")
        self.resume_button = QPushButton("Resume download")
        self.convert_sel_button = QPushButton("Convert…")
        self.detail_label = QLabel("Select a model to see its details.")
        self.detail_label.setObjectName("details")
        self.detail_label.setWordWrap(True)
        self.detail_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                                  | Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.detail_label.linkActivated.connect(self._detail_link)

        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(self.filter_edit, 1)
        for b in (self.refresh_button, self.open_button, self.generate_button, self.inspect_button,
                  self.parity_button, self.convert_sel_button, self.resume_button):
            bar.addWidget(b)
        tl.addLayout(bar)
        tl.addWidget(self.table, 1)
        tl.addWidget(self.detail_label)

        # ---- tabs
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_download_tab(), "Download from the Hub")
        self.tabs.addTab(self._build_convert_tab(), "Convert official → Diffusers")
        self.tabs.addTab(self._build_hub_tab(), "Hub-ready folder")

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.tabs)
        split.setSizes([420, 330])
        split.setChildrenCollapsible(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 16, 16, 16)
        head = QHBoxLayout()
        head.addWidget(title)
        head.addStretch(1)
        head.addWidget(self.root_label)
        lay.addLayout(head)
        lay.addWidget(split, 1)

        self.refresh_button.clicked.connect(self.refresh)
        self.open_button.clicked.connect(self._open_selected)
        self.inspect_button.clicked.connect(lambda: self._emit_selected(self.inspect_requested))
        self.parity_button.clicked.connect(lambda: self._emit_selected(self.parity_requested))
        self.generate_button.clicked.connect(lambda: self._emit_selected(self.generate_requested))
        self.resume_button.clicked.connect(self._resume_selected)
        self.convert_sel_button.clicked.connect(self._convert_selected)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._selection_changed())
        self._selection_changed()
        self.set_models_root(self.models_root)
        if studio is not None and hasattr(studio, "settings_changed"):
            studio.settings_changed.connect(self._settings_changed)

    # ================================================================== the models folder
    def configured_root(self) -> Path:
        """The Settings' models folder, else $FASTVIDEO_MODELS_DIR / the engine's default."""
        md = getattr(getattr(self.studio, "settings", None), "models_dir", "") if self.studio else ""
        return Path(md).expanduser() if md else default_models_root()

    def engine_env(self) -> dict[str, str]:
        """What the engine's processes get so they use the same models folder (FASTVIDEO_MODELS_DIR)."""
        return {MODELS_DIR_ENV: str(self.models_root)} if self._fixed_root or self._root_from_settings() else {}

    def _root_from_settings(self) -> bool:
        return bool(getattr(getattr(self.studio, "settings", None), "models_dir", ""))

    def _apply_engine_env(self) -> None:
        """The inference process gets the models folder through the environment it is started with."""
        client = getattr(self.studio, "client", None)
        if client is None or not hasattr(client, "extra_env"):
            return
        env = self.engine_env()
        if env:
            client.extra_env.update(env)
            self._env_applied = True
        elif self._env_applied:  # back to the default: only ever take out what was put in here
            client.extra_env.pop(MODELS_DIR_ENV, None)
            self._env_applied = False

    def _settings_changed(self, _settings) -> None:
        if self._fixed_root:
            return
        root = self.configured_root()
        self._apply_engine_env()
        if root != self.models_root:
            self.set_models_root(root, scan=True)

    # ================================================================== tabs
    def _build_download_tab(self) -> QWidget:
        w = QWidget()
        self.repo_edit = QLineEdit()
        self.repo_edit.setPlaceholderText("owner/name, e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers")
        self.revision_edit = QLineEdit()
        self.revision_edit.setPlaceholderText("main")
        self.local_dir_edit = QLineEdit()
        self.local_dir_edit.setPlaceholderText("<models folder>/owner--name")
        self.endpoint_edit = QLineEdit(os.environ.get("HF_ENDPOINT", ""))
        self.endpoint_edit.setPlaceholderText("https://huggingface.co (or $HF_ENDPOINT)")
        self.token_edit = QLineEdit()
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText("$HF_TOKEN or the `hf auth login` token")
        self.download_button = QPushButton("Download")
        self.download_button.setObjectName("primaryButton")
        self.cancel_download_button = QPushButton("Cancel")
        self.cancel_download_button.setObjectName("dangerButton")
        self.cancel_download_button.setEnabled(False)
        self.plan_label = QLabel("Downloads resume where they stopped: finished files are never fetched again.")
        self.plan_label.setObjectName("dimLabel")
        self.plan_label.setWordWrap(True)
        self.total_bar = QProgressBar()
        self.total_bar.setRange(0, 1000)
        self.total_bar.setTextVisible(False)
        self.total_label = QLabel()
        self.total_label.setObjectName("progressLabel")
        self.file_bar = QProgressBar()
        self.file_bar.setRange(0, 1000)
        self.file_bar.setTextVisible(False)
        self.file_bar.setMaximumHeight(6)
        self.file_label = QLabel()
        self.file_label.setObjectName("dimLabel")
        self.download_error = QLabel()
        self.download_error.setObjectName("fieldError")
        self.download_error.setWordWrap(True)
        self.download_error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.download_error.hide()

        form = QFormLayout()
        form.addRow("Repo id", self.repo_edit)
        rev_row = QHBoxLayout()
        rev_row.addWidget(self.revision_edit, 1)
        rev_row.addWidget(QLabel("Endpoint"))
        rev_row.addWidget(self.endpoint_edit, 2)
        form.addRow("Revision", rev_row)
        row, self.local_dir_browse = _browse_row(self.local_dir_edit)
        form.addRow("Folder", row)
        form.addRow("Token", self.token_edit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.cancel_download_button)
        buttons.addStretch(1)
        lay = QVBoxLayout(w)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.plan_label)
        lay.addWidget(self.total_bar)
        lay.addWidget(self.total_label)
        lay.addWidget(self.file_bar)
        lay.addWidget(self.file_label)
        lay.addWidget(self.download_error)
        lay.addStretch(1)

        self.repo_edit.textChanged.connect(self._repo_changed)
        self.local_dir_edit.textEdited.connect(lambda _t: setattr(self, "_local_dir_edited", True))
        self.local_dir_browse.clicked.connect(
            lambda: self._pick_dir(self.local_dir_edit, "Download into", mark_edited=True))
        self.download_button.clicked.connect(self.start_download)
        self.cancel_download_button.clicked.connect(self.cancel_download)
        self.repo_edit.returnPressed.connect(self.start_download)
        return w

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
        self.convert_flow_shift.setRange(0.1, 100.0)
        self.convert_flow_shift.setDecimals(2)
        self.convert_flow_shift.setSingleStep(0.5)
        self.convert_flow_shift.setValue(DEFAULT_FLOW_SHIFT)
        self.convert_flow_shift.setFixedWidth(96)
        self.convert_flow_shift.setToolTip("The scheduler's flow_shift (fastvideo convert --flow-shift): 3.0 suits "
                                           "480p and the 1.3B model; 5.0 is usual for 720p 14B")
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
        row, b = _browse_row(self.convert_source_edit)
        b.clicked.connect(lambda: self._pick_dir(self.convert_source_edit, "Official checkpoint folder"))
        form.addRow("Source", row)
        form.addRow("Output name", self.convert_name_edit)
        form.addRow("Model type", self.convert_type)
        shift_row = QHBoxLayout()
        shift_row.addWidget(self.convert_flow_shift)
        hint = QLabel("scheduler flow_shift: 3.0 for 480p / 1.3B, 5.0 for 720p 14B")
        hint.setObjectName("dimLabel")
        shift_row.addWidget(hint, 1)
        form.addRow("Flow shift", shift_row)
        row, b = _browse_row(self.convert_image_enc_edit)
        b.clicked.connect(lambda: self._pick_dir(self.convert_image_enc_edit, "Diffusers I2V folder"))
        form.addRow("Image encoder", row)
        form.addRow("", self.convert_overwrite)
        buttons = QHBoxLayout()
        buttons.addWidget(self.convert_button)
        buttons.addWidget(self.cancel_convert_button)
        buttons.addStretch(1)
        lay = QVBoxLayout(w)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.convert_bar)
        lay.addWidget(self.convert_label)
        lay.addWidget(self.convert_error)
        lay.addStretch(1)
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
        row, b = _browse_row(self.hub_source_edit)
        b.clicked.connect(lambda: self._pick_dir(self.hub_source_edit, "Converted model"))
        form.addRow("Converted model", row)
        form.addRow("Component", self.hub_component)
        row, b = _browse_row(self.hub_base_edit)
        b.clicked.connect(lambda: self._pick_dir(self.hub_base_edit, "Base model"))
        form.addRow("Base model", row)
        row, b = _browse_row(self.hub_output_edit)
        b.clicked.connect(lambda: self._pick_dir(self.hub_output_edit, "Output folder"))
        form.addRow("Output", row)
        form.addRow("Repo id", self.hub_repo_edit)
        form.addRow("", self.hub_overwrite)
        lay = QVBoxLayout(w)
        lay.addLayout(form)
        buttons = QHBoxLayout()
        buttons.addWidget(self.hub_button)
        buttons.addStretch(1)
        lay.addLayout(buttons)
        lay.addWidget(self.hub_bar)
        lay.addWidget(self.hub_label)
        lay.addStretch(1)
        self.hub_source_edit.textChanged.connect(self._hub_source_changed)
        self.hub_button.clicked.connect(self.start_assemble)
        return w

    # ================================================================== installed models
    def set_models_root(self, root: str | os.PathLike, scan: bool = False) -> None:
        self.models_root = Path(root)
        self.root_label.setText(f"Models folder: {self.models_root}")
        self._apply_engine_env()
        self._repo_changed(self.repo_edit.text())
        if scan or self.scan_count or self.isVisible():
            self.refresh()

    def ensure_scanned(self) -> None:
        """Scan once, the first time the models are needed (not at window creation)."""
        if not self.scan_count and not self._scanning:
            self.refresh()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.ensure_scanned()

    def refresh(self) -> None:
        root = self.models_root
        extra = list(getattr(self.studio.settings, "recent_models", []) or []) if self.studio else []
        self.refresh_button.setEnabled(False)
        self._scanning = True

        def done(entries: list[ModelEntry]) -> None:
            self._scanning = False
            self.refresh_button.setEnabled(True)
            self._set_entries(entries)

        def failed(exc: BaseException) -> None:
            self._scanning = False
            self.refresh_button.setEnabled(True)
            self.notify.emit(f"Could not scan {root}: {exc}", "error")

        run_in_background(lambda: scan_models(root, extra), done, failed)

    def _set_entries(self, entries: list[ModelEntry]) -> None:
        selected = self.selected_entry()
        self.model.set_entries(entries)
        self.table.resizeColumnsToContents()
        for col, most in ((0, 260), (5, 260)):
            self.table.setColumnWidth(col, min(self.table.columnWidth(col) + 12, most))
        self.scan_count += 1
        if selected is not None:
            self.select_path(selected.path)
        self._selection_changed()
        self.models_changed.emit([str(e.path) for e in entries if e.loads])
        self.check_fit()

    # ------------------------------------------------------------------ does the checkpoint fit?
    def check_fit(self, entries: list[ModelEntry] | None = None) -> int:
        """Ask the inference process for the header-only mapping report (``inspect``, as ``fastvideo
        inspect-mapping``) of every weight component of each loadable Diffusers model; returns how many
        requests went out (0 without an inference process)."""
        if self.studio is None or not getattr(self.studio, "worker_enabled", False):
            return 0
        sent = 0
        for e in entries if entries is not None else self.model.entries:
            comps = [c for c in FIT_COMPONENTS if c in e.components and (e.path / c).is_dir()]
            if not e.loads or e.layout != "Diffusers" or not comps:
                continue
            key = str(e.path)
            self.model.fit[key] = {"state": "pending", "waiting": set(comps), "problems": {}, "errors": {}}
            for comp in comps:
                self.studio.runner.call("inspect", lambda h, k=key, c=comp: self._fit_reply(k, c, h),
                                        model_path=key, component=comp)
                sent += 1
            self.model.fit_changed(key)
        return sent

    def _fit_reply(self, key: str, comp: str, h: dict) -> None:
        fit = self.model.fit.get(key)
        if fit is None or comp not in fit.get("waiting", ()):
            return
        fit["waiting"].discard(comp)
        result = h.get("result") if h.get("type") == "inspect_result" else None
        if isinstance(result, dict):
            counts = result.get("counts") or {}
            bad = {label: counts[s] for s, label in _PROBLEMS if counts.get(s)}
            if bad:
                fit["problems"][comp] = bad
        else:
            fit["errors"][comp] = str(h.get("message") or "no answer from the inference process")
        if fit["waiting"]:
            return
        if fit["problems"]:
            fit["state"] = "bad"
            fit["component"] = next(iter(fit["problems"]))
            fit["summary"] = "checkpoint does not fit: " + "; ".join(
                f"{c}: " + ", ".join(f"{n} {label}" for label, n in p.items()) for c, p in fit["problems"].items())
        elif fit["errors"]:
            fit["state"] = "error"  # not checked: the scan's answer stands
            fit["summary"] = "mapping not checked: " + "; ".join(f"{c}: {m}" for c, m in fit["errors"].items())
        else:
            fit["state"] = "ok"
            fit["summary"] = "every checkpoint key maps onto the model (headers checked)"
        self.model.fit_changed(key)
        if self.selected_entry() is not None and str(self.selected_entry().path) == key:
            self._selection_changed()
        self.models_changed.emit([str(e.path) for e in self.model.entries if self.model.loads(e)])

    def fit_state(self, path: str | os.PathLike) -> dict | None:
        return self.model.fit.get(str(path))

    def _detail_link(self, link: str) -> None:
        if link.startswith("inspect:"):
            self.inspect_requested.emit(link.removeprefix("inspect:"))

    def entries(self) -> list[ModelEntry]:
        return list(self.model.entries)

    def entry(self, name: str) -> ModelEntry | None:
        return next((e for e in self.model.entries if e.name == name), None)

    def select_path(self, path: str | os.PathLike) -> bool:
        target = Path(path).resolve()
        for row, e in enumerate(self.model.entries):
            if e.path.resolve() == target:
                idx = self.proxy.mapFromSource(self.model.index(row, 0))
                if idx.isValid():
                    self.table.selectRow(idx.row())
                    return True
        return False

    def selected_entry(self) -> ModelEntry | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        return self.proxy.data(rows[0], EntryRole)

    def _selection_changed(self) -> None:
        e = self.selected_entry()
        self.open_button.setEnabled(e is not None)
        self.inspect_button.setEnabled(e is not None and e.layout in ("Diffusers", "official"))
        self.inspect_button.setToolTip("Preview what `fastvideo convert` will do: the official keys through the "
                                       "conversion's rules" if e is not None and e.layout == "official" else
                                       "Every checkpoint key, the rule that fired, the target and the status")
        self.parity_button.setEnabled(e is not None and self.model.loads(e))
        self.generate_button.setEnabled(e is not None and self.model.loads(e))
        self.resume_button.setEnabled(e is not None and e.download_complete is False and not self._downloading())
        self.convert_sel_button.setEnabled(e is not None and e.layout == "official")
        if e is None:
            self.detail_label.setText(f"{self.model.rowCount()} model folder(s). Select one to see its details.")
            return
        parts = [f"<b>{e.name}</b> — {e.path}", f"{e.layout} layout · {human_bytes(e.size)} on disk"]
        if e.repo_id:
            parts.append(f"downloaded from {e.repo_id}" + ("" if e.download_complete else " (unfinished)"))
        if e.problem:
            parts.append(f"<span style='color:#d9a441'>{e.problem}</span>")
        fit = self.model.fit_of(e)
        if fit is not None and fit.get("summary"):
            color = {"bad": "#ff6b6b", "ok": "#45c486"}.get(fit["state"], "#d9a441")
            parts.append(f"<span style='color:{color}'>{_esc(fit['summary'])}</span>")
        if e.layout == "Diffusers":
            parts.append(f"<a href='inspect:{e.path}'>Open in the Weight mapping inspector</a>")
        elif e.layout == "official":
            parts.append(f"<a href='inspect:{e.path}'>Preview the conversion in the Weight mapping inspector</a> "
                         "(official keys through the converter's rules, headers only)")
        self.detail_label.setText("<br>".join(parts))

    def _emit_selected(self, signal) -> None:
        e = self.selected_entry()
        if e is not None:
            signal.emit(str(e.path))

    def _open_selected(self) -> None:
        e = self.selected_entry()
        if e is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(e.path)))

    def _pick_dir(self, edit: QLineEdit, caption: str, mark_edited: bool = False) -> None:
        start = edit.text() or str(self.models_root)
        path = QFileDialog.getExistingDirectory(self, caption, start)
        if path:
            edit.setText(path)
            if mark_edited:
                self._local_dir_edited = True

    # ================================================================== download
    def _downloading(self) -> bool:
        return self.download is not None and self.download.is_active()

    def _repo_changed(self, text: str) -> None:
        if not self._downloading():
            self.download_button.setText("Download")
        if not self._local_dir_edited:
            rid = text.strip()
            self.local_dir_edit.setText(str(default_local_dir(self.models_root, rid)) if rid else "")

    def _resume_selected(self) -> None:
        from fastvideo.hub.download import read_manifest

        e = self.selected_entry()
        if e is None:
            return
        m = read_manifest(e.path)
        self.repo_edit.setText(str(m.get("repo_id") or ""))
        self.revision_edit.setText("" if m.get("revision") in (None, "main") else str(m["revision"]))
        if m.get("endpoint"):
            self.endpoint_edit.setText(str(m["endpoint"]))
        self.local_dir_edit.setText(str(e.path))
        self._local_dir_edited = True
        self.tabs.setCurrentIndex(0)
        self.start_download()

    def start_download(self, **options) -> Download | None:
        """Start (or resume) the download in the form; ``options`` go to ``download_repo``."""
        if self._downloading():
            return None
        rid = self.repo_edit.text().strip()
        parts = rid.split("/")
        if len(parts) != 2 or not all(parts) or " " in rid:
            self._download_failed("ValueError", "Repo id", "Enter a repo id as owner/name "
                                  "(as in the model page URL, e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers).")
            return None
        local_dir = self.local_dir_edit.text().strip() or str(default_local_dir(self.models_root, rid))
        self.download_error.hide()
        self.total_bar.setValue(0)
        self.file_bar.setValue(0)
        self.total_label.setText("Asking the hub for the file list…")
        self.file_label.setText("")
        d = Download(rid, local_dir, self.revision_edit.text().strip() or None,
                     self.endpoint_edit.text().strip() or None, self.token_edit.text().strip() or None,
                     parent=self, **options)
        d.planned.connect(self._download_planned)
        d.progress.connect(self._download_progress)
        d.finished.connect(self._download_finished)
        d.failed.connect(self._download_failed)
        d.cancelled.connect(self._download_cancelled)
        self.download = d
        self._set_download_busy(True)
        d.start()
        return d

    def cancel_download(self) -> None:
        if self.download is not None and self.download.is_active():
            self.download.cancel()
            self.total_label.setText("Cancelling… (finished files and partial data are kept)")

    def _set_download_busy(self, busy: bool) -> None:
        self.download_button.setEnabled(not busy)
        self.cancel_download_button.setEnabled(busy)
        for w in (self.repo_edit, self.revision_edit, self.local_dir_edit, self.endpoint_edit, self.token_edit,
                  self.local_dir_browse):
            w.setEnabled(not busy)
        self._selection_changed()

    def _download_planned(self, plan) -> None:
        if self.download is None:
            return
        try:
            free = human_size(free_space(self.download.local_dir))
        except OSError:
            free = "?"
        self.plan_label.setText(f"{plan.repo_id}@{plan.commit[:12]}: {len(plan.files)} files, "
                                f"{human_size(plan.total_bytes)} → {self.download.local_dir} ({free} free)"
                                + (" · gated" if plan.gated else ""))

    def _download_progress(self, p) -> None:
        if p.kind == "retry":
            self.file_label.setText(p.message)
            return
        self.total_bar.setValue(int(1000 * p.fraction))
        if p.file_total:
            self.file_bar.setValue(int(1000 * p.file_bytes / p.file_total))
        self.total_label.setText(
            f"{100 * p.fraction:.1f}% · {human_size(p.bytes_done)} of {human_size(p.bytes_total)} · "
            f"files {p.files_done}/{p.files_total} · {human_size(p.speed)}/s · {human_time(p.eta)} left")
        if p.file:
            self.file_label.setText(f"{p.file}: {human_size(p.file_bytes)} of {human_size(p.file_total)}")
        elif p.kind == "done":
            self.file_label.setText("All files verified.")

    def _download_finished(self, path: str) -> None:
        self._set_download_busy(False)
        self.download_button.setText("Download")
        self.total_bar.setValue(1000)
        self.file_bar.setValue(1000)
        self.notify.emit(f"Downloaded {self.download.repo_id if self.download else ''} into {path}.", "info")
        self.refresh()

    def _download_failed(self, cls: str, title: str, message: str) -> None:
        self._set_download_busy(False)
        if self.download is not None and self.download.plan is not None:
            self.download_button.setText("Resume")
        self.download_error.setText(f"<b>{title}</b>: {message}")
        self.download_error.show()
        self.total_label.setText("Stopped." + (" Finished files are kept; Resume continues."
                                               if cls in ("HubOfflineError", "IntegrityError", "DownloadError")
                                               else ""))
        self.refresh()

    def _download_cancelled(self) -> None:
        self._set_download_busy(False)
        self.download_button.setText("Resume")
        self.total_label.setText("Cancelled. Finished files and partial data are kept; Resume continues "
                                 "from there (also after a restart).")
        self.refresh()

    # ================================================================== conversion
    def _convert_selected(self) -> None:
        e = self.selected_entry()
        if e is not None:
            self.convert_source_edit.setText(str(e.path))
            self.tabs.setCurrentIndex(1)

    def _convert_source_changed(self, text: str) -> None:
        name = Path(text.strip()).name if text.strip() else ""
        self.convert_name_edit.setText(name)

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
                                 flow_shift=float(self.convert_flow_shift.value()), env=self.engine_env(),
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
        import json

        self.hub_component.clear()
        p = Path(text.strip()) / "model_index.json"
        try:
            index = json.loads(p.read_text())
        except (OSError, ValueError):
            return
        for k, v in index.items():
            if not k.startswith("_") and isinstance(v, list) and (p.parent / k).is_dir():
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

    # ================================================================== lifecycle
    def busy(self) -> bool:
        return self._downloading() or (self.conversion is not None and self.conversion.is_active()) \
            or self.assembling

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop a running download (data kept for resuming) and conversion (nothing left behind)."""
        if self.download is not None and self.download.is_active():
            self.download.cancel()
            self.download.wait(timeout)
        if self.conversion is not None and self.conversion.is_active() and self.conversion.proc is not None:
            self.conversion.cancel()
            self.conversion.proc.waitForFinished(int(timeout * 1000))



class _ProgressBridge(QObject):
    progress = Signal(int, int, str)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

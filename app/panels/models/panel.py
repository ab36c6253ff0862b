"""The Models panel: installed models, hub downloads, conversion, hub-ready folders.

Everything heavy runs elsewhere: scans and hub-folder assembly in a background thread,
downloads on their own thread (``app.services.downloads``), conversion in a
``python -m fastvideo convert`` subprocess (``app.services.conversion``).  No torch here.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.itemmodels.models_list import EntryRole, ModelEntry, SortRole, scan_models
from app.panels.common import esc
from app.panels.models.convert_tab import ConvertTabMixin
from app.panels.models.download_tab import DownloadTabMixin
from app.panels.models.fit import PROBLEMS, FitModelsTableModel
from app.services.background import run_in_background
from app.services.catalogue import weight_components
from app.services.conversion import ConversionProcess
from app.services.downloads import Download
from app.services.settings import MODELS_DIR_ENV
from app.widgets.open_path import open_location
from fastvideo.hub.download import human_bytes


def default_models_root() -> Path:
    from fastvideo.configs.registry import models_dir

    return models_dir()


class ModelsPanel(DownloadTabMixin, ConvertTabMixin, QWidget):
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
            if not e.loads or e.layout != "Diffusers":
                continue
            comps = [c for c in weight_components(e.path) if (e.path / c).is_dir()]
            if not comps:
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
            bad = {label: counts[s] for s, label in PROBLEMS if counts.get(s)}
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
            parts.append(f"<span style='color:{color}'>{esc(fit['summary'])}</span>")
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
            ok, message = open_location(str(e.path))
            if not ok:
                self.notify.emit(message, "warning")

    def _pick_dir(self, edit: QLineEdit, caption: str, mark_edited: bool = False) -> None:
        start = edit.text() or str(self.models_root)
        path = QFileDialog.getExistingDirectory(self, caption, start)
        if path:
            edit.setText(path)
            if mark_edited:
                self._local_dir_edited = True

    # ================================================================== download
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

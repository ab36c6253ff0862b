"""The main window: a navigation sidebar and one panel at a time.

Panels are registered with :meth:`MainWindow.add_panel`, so more (models,
mapping, parity...) can be added without touching the others.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.panels.generate import GeneratePanel
from app.panels.generate_form import settings_from_metadata
from app.panels.history import HistoryPanel
from app.panels.mapping import MappingPanel
from app.panels.models import ModelsPanel
from app.panels.parity import ParityPanel
from app.panels.queue import QueuePanel
from app.panels.settings import SettingsPanel
from app.resources import resource_path
from app.services.background import run_in_background
from app.services.studio import Studio
from app.widgets.about import AboutDialog
from app.window_layout import SidebarLayoutMixin

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm")


class Banner(QFrame):
    """A dismissable message strip at the top of the window (no modal dialogs)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QPushButton("Dismiss")
        close.setObjectName("linkButton")
        close.clicked.connect(self.hide)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(12, 8, 12, 8)
        lay.addWidget(self.label, 1)
        lay.addWidget(close)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        self.level = "info"
        self.hide()

    def show_message(self, text: str, level: str = "info") -> None:
        self.level = level
        self.setProperty("level", level)
        self.style().unpolish(self)
        self.style().polish(self)
        self.label.setText(text)
        self.show()
        if level == "info":
            self._timer.start(8000)
        else:
            self._timer.stop()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""


class MainWindow(SidebarLayoutMixin, QMainWindow):
    def __init__(self, studio: Studio):
        super().__init__()
        self.studio = studio
        self.setWindowTitle("FastVideo Studio")
        icon = resource_path("icon.svg")
        if icon:
            self.setWindowIcon(QIcon(str(icon)))
        self.resize(1280, 820)
        self.setAcceptDrops(True)
        self._closed = False

        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setFixedWidth(168)
        self.sidebar.setIconSize(QSize(18, 18))
        self.stack = QStackedWidget()
        self.banner = Banner()
        self.panels: dict[str, QWidget] = {}

        brand = QLabel("FastVideo\nStudio")
        brand.setObjectName("brand")
        side = QWidget()
        side.setObjectName("sideBox")
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 12, 0, 12)
        sl.addWidget(brand)
        sl.addWidget(self.sidebar, 1)
        self.worker_dot = QLabel()
        self.worker_dot.setObjectName("workerDot")
        self.worker_dot.setToolTip("The inference process: it starts with the first job (or model choice) "
                                   "and keeps the model loaded")
        sl.addWidget(self.worker_dot)

        main = QWidget()
        ml = QVBoxLayout(main)
        ml.setContentsMargins(0, 0, 0, 0)
        ml.setSpacing(0)
        ml.addWidget(self.banner)
        ml.addWidget(self.stack, 1)
        central = QWidget()
        cl = QHBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addWidget(side)
        cl.addWidget(main, 1)
        self.setCentralWidget(central)

        self.status_label = QLabel()
        self.queue_label = QLabel()
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.queue_label)

        self.generate = GeneratePanel(studio)
        self.queue = QueuePanel(studio)
        self.history = HistoryPanel(studio)
        self.settings = SettingsPanel(studio)
        self.add_panel("generate", "Generate", self.generate)
        self.add_panel("queue", "Queue", self.queue)
        self.add_panel("history", "History", self.history)
        self.add_panel("settings", "Settings", self.settings)
        # Porter panels (issue 7): models, weight-mapping inspector, parity.
        self.models = ModelsPanel(studio)
        self.mapping = MappingPanel(studio)
        self.parity = ParityPanel(studio)
        self.add_panel("models", "Models", self.models)
        self._add_section("Porting")  # hidden in the creator layout (Settings → Layout)
        self.add_panel("mapping", "Weight mapping", self.mapping)
        self.add_panel("parity", "Parity", self.parity)
        for panel in (self.models, self.mapping, self.parity):
            panel.notify.connect(self.notify)
        self.generate.result.notify.connect(self.notify)
        self.history.notify.connect(self.notify)
        self.models.models_changed.connect(self.mapping.set_models)
        self.models.models_changed.connect(self.parity.set_models)
        self.models.inspect_requested.connect(self._inspect_model)
        self.models.parity_requested.connect(self._parity_model)
        self.models.generate_requested.connect(self._generate_model)
        self.mapping.rules_for_parity.connect(self._parity_with_rules)
        self.sidebar.currentRowChanged.connect(self._row_changed)
        studio.settings_changed.connect(self._apply_settings_layout)
        self._apply_settings_layout(studio.settings)

        runner = studio.runner
        runner.notify.connect(self.notify)
        runner.worker_status.connect(self.status_label.setText)
        runner.jobs_changed.connect(self._update_queue_label)
        runner.paused_changed.connect(lambda _p: self._update_queue_label())
        studio.client.state_changed.connect(self._worker_state)
        self.generate.show_panel.connect(self.show_panel)
        self.history.restore_requested.connect(self.restore_settings)
        self.history.queued.connect(lambda job_id: self.notify(f"Job {job_id} queued again.", "info"))
        self._update_queue_label()
        self._worker_state(studio.client.state)
        self.about_dialog: AboutDialog | None = None
        self._build_menus()
        self.show_panel("generate")
        if studio.db.interrupted_on_open:
            n = len(studio.db.interrupted_on_open)
            self.notify(f"{n} job{'s were' if n > 1 else ' was'} running when the studio last stopped; "
                        f"{'they are' if n > 1 else 'it is'} marked interrupted in History.", "warning")
        if studio.settings_store.error:
            self.notify(studio.settings_store.error, "warning")
        runner.schedule()

    # ------------------------------------------------------------------ menus
    def _action(self, menu, text: str, slot, shortcut: str | tuple[str, ...] = (), tip: str = "") -> QAction:
        act = QAction(text, self)
        keys = (shortcut,) if isinstance(shortcut, str) else shortcut
        if keys:
            act.setShortcuts([QKeySequence(k) for k in keys])
        if tip:
            act.setStatusTip(tip)
            act.setToolTip(tip)
        act.triggered.connect(lambda _checked=False: slot())
        menu.addAction(act)
        self.actions_by_name[text] = act
        return act

    def _build_menus(self) -> None:
        """File / Edit / View / Help; every action works from any panel (the window owns the shortcuts)."""
        self.actions_by_name: dict[str, QAction] = {}
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "Choose model folder…", self._open_model, "Ctrl+O",
                     "Pick a model folder for the Generate panel")
        self._action(file_menu, "Restore settings from a video…", self._restore_dialog, "Ctrl+Shift+O",
                     "Read the settings a FastVideo MP4 carries and put them in the Generate panel")
        self._action(file_menu, "Open output folder", self._open_outputs, (), "Show the folder videos are saved in")
        file_menu.addSeparator()
        quit_act = self._action(file_menu, "Quit", self.close, "Ctrl+Q", "Close the studio (a running job is "
                                "stopped)")
        quit_act.setMenuRole(QAction.MenuRole.QuitRole)
        edit_menu = bar.addMenu("&Edit")
        self.generate_action = self._action(edit_menu, "Generate", self._generate, ("Ctrl+Return", "Ctrl+Enter"),
                                            "Queue a job with the Generate panel's settings")
        self.cancel_action = self._action(edit_menu, "Cancel running job", self._cancel_job, "Esc",
                                          "Stop the job that is running (within one step)")
        self._action(edit_menu, "Copy seed of the shown result", self.generate.copy_seed, (),
                     "Copy the seed of the job shown in the Generate panel")
        edit_menu.addSeparator()
        self._action(edit_menu, "Settings…", lambda: self.show_panel("settings"), "Ctrl+,")
        self.view_menu = bar.addMenu("&View")
        self._fill_view_menu()
        help_menu = bar.addMenu("&Help")
        about = self._action(help_menu, "About FastVideo Studio", self.show_about, "F1")
        about.setMenuRole(QAction.MenuRole.AboutRole)
        self.studio.runner.job_state.connect(lambda _j, _s: self._update_actions())
        self._update_actions()

    def _fill_view_menu(self) -> None:
        """One entry per panel (Ctrl+1 ... Ctrl+9, in sidebar order); rebuilt when panels are added."""
        menu = getattr(self, "view_menu", None)
        if menu is None:
            return
        for act in menu.actions():
            menu.removeAction(act)
            act.deleteLater()
        items = [self.sidebar.item(r) for r in range(self.sidebar.count())]
        for i, item in enumerate(it for it in items if it.data(Qt.ItemDataRole.UserRole)):  # not section headers
            name = item.data(Qt.ItemDataRole.UserRole)
            act = QAction(item.text(), self)
            if i < 9:
                act.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            act.triggered.connect(lambda _c=False, n=name: self.show_panel(n))
            menu.addAction(act)

    def _update_actions(self) -> None:
        self.cancel_action.setEnabled(self.studio.runner.current is not None)

    def _generate(self) -> None:
        if self.generate.generate() is None or self.current_panel() != "generate":
            self.show_panel("generate")  # where the job (or the reason it was not queued) shows

    def _cancel_job(self) -> None:
        if self.studio.runner.current is not None:
            self.generate.cancel()
            self.notify("Cancelling the running job…", "info")

    def _open_model(self) -> None:
        self.show_panel("generate")
        self.generate._browse_model()

    def _restore_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Restore settings from a video", self.studio.settings.output_dir,
                                              "Videos (*.mp4 *.mov *.mkv *.webm);;All files (*)")
        if path:
            self.restore_from_file(path)

    def _open_outputs(self) -> None:
        from app.widgets.open_path import open_location

        folder = Path(self.studio.settings.output_dir or self.studio.paths.default_output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        ok, message = open_location(str(folder))
        if not ok:
            self.notify(message, "warning")

    def show_about(self) -> AboutDialog:
        if self.about_dialog is None:
            self.about_dialog = AboutDialog(self.studio, self)
        self.about_dialog.show()
        self.about_dialog.raise_()
        return self.about_dialog

    # ------------------------------------------------------------------ navigation
    def add_panel(self, name: str, title: str, widget: QWidget, icon: QIcon | None = None) -> None:
        """Register a panel under ``name`` (shown in the sidebar as ``title``)."""
        if name in self.panels:
            raise ValueError(f"a panel named {name!r} exists already")
        self.panels[name] = widget
        widget.setObjectName(f"panel_{name}")
        self.stack.addWidget(widget)
        item = QListWidgetItem(icon or QIcon(), title)
        item.setData(Qt.ItemDataRole.UserRole, name)
        self.sidebar.addItem(item)
        self._fill_view_menu()

    def panel_names(self) -> list[str]:
        return list(self.panels)

    def show_panel(self, name: str) -> None:
        if name not in self.panels:
            raise KeyError(f"no panel {name!r}; panels: {', '.join(self.panels)}")
        self._reveal(name)  # a hidden porter panel: its section shows for this session
        self.sidebar.setCurrentRow(self._row_of(name))

    def _panel_shown(self, name: str) -> None:
        if name in ("mapping", "parity"):
            self.models.ensure_scanned()  # fills their model lists

    def _inspect_model(self, path: str) -> None:
        self.mapping.set_model(path)
        self.show_panel("mapping")
        self.mapping.load()

    def _parity_model(self, path: str) -> None:
        self.parity.set_model(path)
        self.show_panel("parity")

    def _generate_model(self, path: str) -> None:
        """Models panel → Generate: that model selected (its defaults applied), ready for a prompt."""
        self.generate.set_model(path)
        self.show_panel("generate")

    def _parity_with_rules(self, rules: list, label: str) -> None:  # ordered (pattern, value) pairs
        self.parity.set_model(self.mapping.model_path or self.mapping.current_model_path(),
                              self.mapping.inputs.component if self.mapping.inputs else None)
        self.parity.set_rules(rules, label)
        self.show_panel("parity")

    def current_panel(self) -> str:
        return list(self.panels)[self.stack.currentIndex()]

    # ------------------------------------------------------------------ messages
    def notify(self, text: str, level: str = "info") -> None:
        self.banner.show_message(text, level)
        self.status_label.setText(text.splitlines()[0][:160])

    def _update_queue_label(self) -> None:
        c = self.studio.db.counts()
        text = f"{c['running']} running · {c['queued']} waiting"
        if self.studio.db.paused:
            text += " · paused"
        self.queue_label.setText(text)

    def _worker_state(self, state: str) -> None:
        names = {"stopped": "● engine off", "starting": "● engine starting…", "running": "● engine ready",
                 "stopping": "● engine stopping…"}
        self.worker_dot.setText(names.get(state, state))
        self.worker_dot.setProperty("state", state)
        self.worker_dot.style().unpolish(self.worker_dot)
        self.worker_dot.style().polish(self.worker_dot)

    # ------------------------------------------------------------------ restore / drop
    def restore_settings(self, settings: dict) -> None:
        self.generate.apply_job_settings(settings)
        self.show_panel("generate")

    def restore_from_file(self, path: str) -> None:
        """Read the settings embedded in a generated MP4 and put them in the Generate panel."""
        from fastvideo.utils.media import read_metadata

        def done(md):
            if not md:
                self.notify(f"{Path(path).name} has no FastVideo settings in it (it was not made by FastVideo, "
                            "or its metadata was stripped).", "warning")
                return
            self.restore_settings(settings_from_metadata(md))
            self.notify(f"Settings restored from {Path(path).name}.", "info")

        run_in_background(lambda: read_metadata(path), done,
                          lambda exc: self.notify(f"Could not read {path}: {exc}", "error"))

    @staticmethod
    def _dropped_video(event) -> str | None:
        md = event.mimeData()
        if not md.hasUrls():
            return None
        for url in md.urls():
            if url.isLocalFile() and url.toLocalFile().lower().endswith(VIDEO_SUFFIXES):
                return url.toLocalFile()
        return None

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if self._dropped_video(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:  # noqa: N802
        path = self._dropped_video(event)
        if path:
            event.acceptProposedAction()
            self.restore_from_file(path)

    # ------------------------------------------------------------------ close
    def closeEvent(self, event) -> None:  # noqa: N802
        if not self._closed:
            self._closed = True
            self.models.shutdown()  # a download keeps its data for resuming; a conversion leaves nothing
            self.status_label.setText("Stopping the inference process…")
            self.studio.close()
        super().closeEvent(event)

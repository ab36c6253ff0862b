"""Help → About: versions (studio, engine, Python, Qt, the inference process's) and where the studio keeps
its files (data, settings, job database, outputs, models, runtime), selectable and copyable."""

from __future__ import annotations

import platform
import sys

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPushButton, QVBoxLayout, QWidget

import app
from app.services.studio import Studio


def about_facts(studio: Studio) -> list[tuple[str, list[tuple[str, str]]]]:
    """``[(section, [(name, value), ...]), ...]``: what the About dialog shows (and copies)."""
    import fastvideo
    from app.bootstrap.runtime import is_frozen, runtime_dir
    from fastvideo.configs.registry import models_dir

    hello = studio.client.hello or {}
    worker = (f"Python {hello.get('python')}, fastvideo {hello.get('fastvideo_version')}, pid {hello.get('pid')}"
              if hello else "not running (it starts with the first job or model choice)")
    versions = [("FastVideo Studio", app.__version__), ("fastvideo engine", getattr(fastvideo, "__version__", "?")),
                ("Python", f"{platform.python_version()} ({sys.executable})"),
                ("Qt", f"{qVersion()} (PySide6 {pyside_version}, platform {QGuiApplication.platformName()})"),
                ("Inference process", worker),
                ("System", f"{platform.system()} {platform.release()} {platform.machine()}")]
    p, s = studio.paths, studio.settings
    paths = [("Data", str(p.data_dir)), ("Settings", str(p.settings_file)), ("Job database", str(p.jobs_db)),
             ("Outputs", s.output_dir or str(p.default_output_dir)), ("Models", s.models_dir or str(models_dir())),
             ("Thumbnails", str(p.thumbnails_dir))]
    if is_frozen():
        paths.append(("Inference runtime", str(runtime_dir(p.data_dir))))
    return [("Versions", versions), ("Paths", paths)]


def about_text(studio: Studio) -> str:
    """The facts as plain text (what "Copy" puts on the clipboard)."""
    lines = []
    for section, rows in about_facts(studio):
        lines.append(f"{section}:")
        lines += [f"  {name}: {value}" for name, value in rows]
    return "\n".join(lines)


class AboutDialog(QDialog):
    def __init__(self, studio: Studio, parent: QWidget | None = None):
        super().__init__(parent)
        from html import escape

        self.studio = studio
        self.setWindowTitle("About FastVideo Studio")
        self.setMinimumWidth(640)
        title = QLabel("FastVideo Studio")
        title.setObjectName("panelTitle")
        blurb = QLabel("Generate videos with diffusion models, and port new models to the engine.")
        blurb.setObjectName("dimLabel")
        html = []
        for section, rows in about_facts(studio):
            html.append(f"<p><b>{escape(section)}</b></p><table>")
            html += [f"<tr><td style='color:#8b95a3;padding-right:12px'>{escape(k)}</td><td>{escape(v)}</td></tr>"
                     for k, v in rows]
            html.append("</table>")
        self.facts = QLabel("".join(html))
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.facts.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the versions and paths (for a bug report)")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.close)
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(about_text(studio)))
        lay = QVBoxLayout(self)
        lay.addWidget(title)
        lay.addWidget(blurb)
        lay.addWidget(self.facts, 1)
        lay.addWidget(buttons)

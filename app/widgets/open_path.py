"""Open a file or folder with the desktop's program for it, and say so when that cannot happen.

``QDesktopServices.openUrl`` needs a desktop launcher (``xdg-open`` on Linux, a file manager...);
without one it returns False and nothing happens.  :func:`open_location` then copies the path to the
clipboard and returns a message that names the path and the reason, for the caller to show.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication


def _open_url(url: QUrl) -> bool:  # (tests replace it)
    return bool(QDesktopServices.openUrl(url))


def launcher_problem() -> str:
    """Why the desktop may be unable to open files here, in words ('' when nothing is known to be missing)."""
    if sys.platform.startswith("linux") and shutil.which("xdg-open") is None:
        return "no desktop launcher is installed (xdg-open, package xdg-utils)"
    platform = QGuiApplication.platformName()
    if platform in ("offscreen", "minimal"):
        return f"the studio runs without a desktop (Qt platform {platform!r})"
    return "the desktop has no program for it"


def open_location(path: str | None, folder: bool = False) -> tuple[bool, str]:
    """Open ``path`` (with ``folder``: the folder that holds it).  ``(True, "")`` when the desktop took it;
    otherwise ``(False, message)``: the path is on the clipboard and the message says why and where it is."""
    if not path:
        return False, "There is no file to open."
    target = Path(path).parent if folder else Path(path)
    what = "the folder" if folder else "the file"
    if not target.exists():
        return False, f"Could not open {what}: {target} does not exist (moved or deleted?)."
    if _open_url(QUrl.fromLocalFile(str(target))):
        return True, ""
    QGuiApplication.clipboard().setText(str(target))
    return False, f"Could not open {what}: {launcher_problem()}. Its path is copied to the clipboard: {target}"

"""Hub downloads for the Models panel: ``fastvideo.hub.download`` on a worker thread.

The same functions back ``fastvideo download`` (plan, disk check, resumable transfer,
manifest), so a download started here and interrupted (cancel, lost connection, the
studio closed) is continued by the next start -- here or on the command line --
without fetching finished files again.  Torch-free.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from fastvideo.hub import download as hub

ERROR_TITLES = {
    "GatedRepoError": "Gated model",
    "RepoNotFoundError": "Unknown repo",
    "RevisionNotFoundError": "Unknown revision",
    "AuthenticationError": "Access refused",
    "HubOfflineError": "Offline",
    "DiskSpaceError": "Not enough disk space",
    "IntegrityError": "Corrupt file",
    "EntryNotFoundError": "File missing on the hub",
    "UnsafeFileNameError": "Unsafe file name in the repo",
}


def explain(exc: BaseException) -> tuple[str, str]:
    """(title, message) for a download failure, in words a user can act on."""
    name = type(exc).__name__
    if isinstance(exc, hub.DownloadError):
        return ERROR_TITLES.get(name, "Download failed"), str(exc)
    if isinstance(exc, OSError):
        return "Disk error", f"{exc.strerror or exc}: {exc.filename or ''}".strip(": ")
    return "Download failed", f"{name}: {exc}"


def default_local_dir(models_root: str | os.PathLike, repo_id: str) -> Path:
    """Where a repo goes under the models folder (the layout ``resolve_model`` looks in)."""
    return Path(models_root) / repo_id.strip().replace("/", "--")


def human_size(n: float | None) -> str:
    if n is None:
        return "?"
    return hub.human_bytes(float(n))


def human_time(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    return hub._clock(seconds)


@dataclass
class PendingDownload:
    """A download that did not finish (its folder has a manifest with ``complete: false``)."""

    local_dir: Path
    repo_id: str
    revision: str
    endpoint: str | None
    files_done: int


def pending_downloads(models_root: str | os.PathLike) -> list[PendingDownload]:
    """Unfinished downloads under the models folder (resumable after a restart)."""
    root = Path(models_root)
    out = []
    if not root.is_dir():
        return out
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        m = hub.read_manifest(d)
        if m and not m.get("complete") and m.get("repo_id"):
            out.append(PendingDownload(d, str(m["repo_id"]), str(m.get("revision") or "main"), m.get("endpoint"),
                                       len(m.get("files") or {})))
    return out


class Download(QObject):
    """One download on its own thread; every signal arrives on the GUI thread."""

    planned = Signal(object)  # DownloadPlan
    progress = Signal(object)  # DownloadProgress
    finished = Signal(str)  # local dir
    failed = Signal(str, str, str)  # error class, title, message
    cancelled = Signal()

    def __init__(self, repo_id: str, local_dir: str | os.PathLike, revision: str | None = None,
                 endpoint: str | None = None, token: str | None = None, parent: QObject | None = None,
                 **options: Any):
        super().__init__(parent)
        self.repo_id = repo_id.strip()
        self.local_dir = Path(local_dir).expanduser()
        self.revision = revision or None
        self.endpoint = endpoint or None
        self.token = token or None
        self.options = options  # passed to download_repo (retries, backoff, min_interval, disk_margin)
        self.cancel_event = threading.Event()
        self.plan: hub.DownloadPlan | None = None
        self.last: hub.DownloadProgress | None = None
        self.state = "idle"  # idle | planning | running | done | failed | cancelled
        self.error: tuple[str, str, str] | None = None
        self.started_at = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a Download object runs once; make a new one to resume")
        self.state = "planning"
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"download-{self.repo_id}", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self.cancel_event.set()

    def is_active(self) -> bool:
        return self.state in ("planning", "running")

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            plan = hub.plan_download(self.repo_id, self.revision, self.endpoint, self.token)
            self.plan = plan
            self.planned.emit(plan)
            if self.cancel_event.is_set():
                raise hub.DownloadCancelled("cancelled")
            self.state = "running"
            out = hub.download_repo(self.repo_id, self.local_dir, self.revision, self.endpoint, self.token,
                                    progress=self._on_progress, cancel_event=self.cancel_event, plan=plan,
                                    **self.options)
        except hub.DownloadCancelled:
            self.state = "cancelled"
            self.cancelled.emit()
            return
        except BaseException as exc:  # noqa: BLE001 - every failure is reported
            title, message = explain(exc)
            self.state = "failed"
            self.error = (type(exc).__name__, title, message)
            self.failed.emit(*self.error)
            return
        self.state = "done"
        self.finished.emit(str(out))

    def _on_progress(self, p: hub.DownloadProgress) -> None:
        self.last = p
        self.progress.emit(p)


def free_space(path: str | os.PathLike) -> int:
    return shutil.disk_usage(hub._existing_parent(Path(path).expanduser())).free

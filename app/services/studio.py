"""Everything the window needs, built in one place: paths, settings, job
database, the inference process client and the job runner."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, Signal

from app.bootstrap.runtime import worker_launch
from app.services.jobs_db import JobsDB
from app.services.paths import StudioPaths, resolve_paths
from app.services.references import ReferenceService
from app.services.runner import JobRunner
from app.services.settings import GPU_IDS_ENV, Settings, SettingsStore
from app.services.thumbnails import Thumbnails
from app.services.worker_client import WorkerClient


def _fastvideo_root() -> str:
    """The folder holding the ``fastvideo`` package (so the worker finds it, installed or not)."""
    import fastvideo

    return str(Path(fastvideo.__file__).resolve().parent.parent)


class StudioBusyError(RuntimeError):
    """The data folder is in use by another running studio."""


class Studio(QObject):
    settings_changed = Signal(object)  # Settings

    def __init__(self, data_dir: str | os.PathLike | None = None, *, worker_args: list[str] | None = None,
                 worker_env: dict[str, str] | None = None, worker_enabled: bool = True,
                 heartbeat_interval: float = 1.0, hang_timeout: float | None = None, parent=None):
        super().__init__(parent)
        self.paths: StudioPaths = resolve_paths(data_dir).ensure()
        # One studio per data folder: a second one would mark the first one's running job interrupted.
        self._lock = QLockFile(str(self.paths.data_dir / "studio.lock"))
        self._lock.setStaleLockTime(0)  # a lock whose process is gone is stale (the studio was killed)
        if not self._lock.tryLock(200):
            info = self._lock.getLockInfo()
            pid = info[1] if isinstance(info, (tuple, list)) and len(info) > 1 else "?"
            raise StudioBusyError(f"another FastVideo Studio (pid {pid}) is using {self.paths.data_dir}; "
                                  "close it first, or start this one with another --data-dir")
        self.settings_store = SettingsStore(self.paths.settings_file, self.paths.default_output_dir)
        self.settings: Settings = self.settings_store.load()
        self.db = JobsDB(self.paths.jobs_db)
        self.worker_enabled = worker_enabled
        self._hang_override = hang_timeout  # tests use short ones; otherwise the setting decides
        env = dict(worker_env or {})
        # Packaged (frozen) studio: the worker is the runtime environment's Python (app/bootstrap).
        python, runtime_env = worker_launch(self.paths.data_dir)
        if python is None:
            root = _fastvideo_root()
            env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH") or os.environ.get("PYTHONPATH"))
                                                if p)
        else:
            env = {**runtime_env, **env}
        env.update(self.settings.gpu_env())  # Settings → "Use GPUs": CUDA_VISIBLE_DEVICES of the engine
        self._worker_args = list(worker_args or [])
        # Engine: this computer, or a remote host through ssh (Settings → Engine); --ray-address if set.
        self.client = WorkerClient(self, python=python, extra_args=[*self._worker_args, *self.settings.serve_args()],
                                   env=env, heartbeat_interval=heartbeat_interval,
                                   hang_timeout=hang_timeout or float(self.settings.hang_timeout),
                                   remote=self.settings.remote_engine())
        self.runner = JobRunner(self.db, self.client, self)
        self.references = ReferenceService(self.client, self.paths.data_dir, self)  # parity's diffusers
        self.thumbnails = Thumbnails(self.paths.thumbnails_dir, self)

    def save_settings(self, settings: Settings) -> None:
        self.settings_store.save(settings)
        self.settings = settings
        self.client.hang_timeout = self._hang_override or float(settings.hang_timeout)
        remote, args = settings.remote_engine(), [*self._worker_args, *settings.serve_args()]
        gpus = settings.gpu_env().get(GPU_IDS_ENV)
        if (remote, args, gpus) != (self.client.remote, self.client.extra_args, self.client.extra_env.get(GPU_IDS_ENV)):
            self.client.remote, self.client.extra_args = remote, args
            if gpus:
                self.client.extra_env[GPU_IDS_ENV] = gpus
            else:
                self.client.extra_env.pop(GPU_IDS_ENV, None)
            if self.runner.current is None and self.client.is_running():
                self.client.shutdown(5.0)  # the next request starts the engine where the settings now say
        self.settings_changed.emit(settings)

    def close(self, timeout: float = 10.0) -> None:
        self.runner.shutdown(timeout)
        self.db.close()
        if self._lock.isLocked():
            self._lock.unlock()

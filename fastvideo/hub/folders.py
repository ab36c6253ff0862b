"""Where models live on disk: the models folder, the paths tried for a name or repo id, the Hugging Face
cache, and downloading a repo id into the models folder.  Torch-free; the registry (configs) and the CLI use it."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path


def models_dir() -> Path:
    """Where downloaded and converted models live (``FASTVIDEO_MODELS_DIR`` or the user data dir)."""
    env = os.environ.get("FASTVIDEO_MODELS_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("fastvideo", appauthor=False)) / "models"


def local_candidates(name: str) -> list[Path]:
    """Paths tried for a name: as given, then under the models folder's layouts."""
    root = models_dir()
    short = name.split("/")[-1]
    return [Path(name).expanduser(), root / "converted_weights" / short, root / "official_weights" / short,
            root / name.replace("/", "--")]


def looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def from_hub_cache(repo_id: str, download: bool) -> Path | None:
    """The repo's snapshot in the Hugging Face cache; with ``download``, downloaded into the models folder."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover
        return None
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    if not download:
        return None
    return Path(download_model(repo_id))


def model_download_dir(repo_id: str) -> Path:
    """``models_dir() / "owner--name"`` (one of :func:`local_candidates`)."""
    return models_dir() / repo_id.replace("/", "--")


def download_model(repo_id: str, *, revision: str | None = None, endpoint: str | None = None,
                   token: str | bool | None = None, progress: Callable | None = None,
                   cancel_event: threading.Event | None = None) -> Path:
    """Download (or finish downloading) ``repo_id`` into the models folder; returns the folder.

    ``progress`` defaults to a status line on stderr.  Errors are
    :class:`fastvideo.hub.DownloadError` subclasses with a message saying what to do.
    """
    from fastvideo.hub.download import TextProgress, download_repo

    dest = model_download_dir(repo_id)
    printer = TextProgress() if progress is None else None
    try:
        return download_repo(repo_id, dest, revision=revision, endpoint=endpoint, token=token,
                             progress=progress or printer, cancel_event=cancel_event)
    finally:
        if printer is not None:
            printer.close()

"""Download a repo id into the models folder, where ``resolve_model`` / ``from_pretrained`` look."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable


def model_download_dir(repo_id: str) -> Path:
    """``models_dir() / "owner--name"`` (one of ``registry.local_candidates``)."""
    from fastvideo.configs.registry import models_dir

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

"""Where the studio keeps its files.

``--data-dir DIR`` or ``FASTVIDEO_STUDIO_DATA`` puts everything (settings, job
database, thumbnails, default output folder) under one folder -- tests and
portable installs use it.  Otherwise the platform's user folders are used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "fastvideo-studio"
ENV_DATA_DIR = "FASTVIDEO_STUDIO_DATA"


@dataclass(frozen=True)
class StudioPaths:
    data_dir: Path
    config_dir: Path
    default_output_dir: Path

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def jobs_db(self) -> Path:
        return self.data_dir / "jobs.sqlite3"

    @property
    def thumbnails_dir(self) -> Path:
        return self.data_dir / "thumbnails"

    def ensure(self) -> StudioPaths:
        for p in (self.data_dir, self.config_dir, self.thumbnails_dir):
            p.mkdir(parents=True, exist_ok=True)
        return self


def resolve_paths(data_dir: str | os.PathLike | None = None) -> StudioPaths:
    chosen = data_dir or os.environ.get(ENV_DATA_DIR)
    if chosen:
        root = Path(chosen).expanduser().resolve()
        return StudioPaths(root, root, root / "outputs")
    return StudioPaths(
        Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_videos_dir()) / "FastVideo",
    )

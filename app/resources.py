"""Find the studio's bundled files (icon, stylesheet) in a checkout or an install."""

from __future__ import annotations

import sys
from pathlib import Path


def resource_path(name: str) -> Path | None:
    candidates = [Path(__file__).resolve().parent.parent / "resources" / name,
                  Path(sys.prefix) / "share" / "fastvideo-studio" / name]
    try:  # installed as a package-data folder named "resources"
        from importlib.resources import files

        candidates.append(Path(str(files("resources") / name)))
    except Exception:
        pass
    return next((p for p in candidates if p.is_file()), None)


def stylesheet() -> str:
    """The QSS theme, with ``{RES}`` replaced by the resources folder (for its icons)."""
    path = resource_path("studio.qss")
    if path is None:
        return ""
    return path.read_text(encoding="utf-8").replace("{RES}", path.parent.as_posix())

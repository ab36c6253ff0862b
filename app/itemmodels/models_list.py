"""Installed models under the models folder, and the table model the Models panel shows.

Scanned (torch-free; headers and JSON only): ``official_weights/*``, ``converted_weights/*``
and the downloaded repos directly under the models folder (``owner--name``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor

from app.itemmodels.table_base import ColumnTableModel
from app.services.catalogue import describe_local, has_model_index
from fastvideo.hub.download import human_bytes, read_manifest

EntryRole = Qt.ItemDataRole.UserRole + 1
SortRole = Qt.ItemDataRole.UserRole + 2


@dataclass
class ModelEntry:
    path: Path
    name: str
    where: str  # official_weights | converted_weights | downloaded | other
    layout: str  # Diffusers | official | incomplete | unknown
    family: str = ""
    task: str = ""
    size: int = 0
    components: list[str] = field(default_factory=list)
    loads: bool = False
    problem: str = ""
    repo_id: str | None = None
    download_complete: bool | None = None  # None: not a download

    @property
    def loads_text(self) -> str:
        if self.loads:
            return "yes"
        if self.layout == "official":
            return "convert first"
        if self.layout == "incomplete":
            return "download unfinished"
        return "no"


def folder_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def describe_entry(path: Path, where: str) -> ModelEntry:
    from fastvideo.configs.registry import describe_folder

    entry = ModelEntry(path, path.name, where, "unknown", size=folder_size(path))
    manifest = read_manifest(path)
    if manifest:
        entry.repo_id = manifest.get("repo_id")
        entry.download_complete = bool(manifest.get("complete"))
    local = describe_local(path)
    entry.components = list(local["components"])
    if local["layout"] == "Diffusers":
        entry.layout = "Diffusers"
        try:
            info = describe_folder(path, repo_id=entry.repo_id)
            entry.family, entry.task = info.family, "/".join(info.tasks)
            entry.components = list(info.components)
            missing = [c for c in info.weight_components() if not _has_weights(path / c)]
            if missing:
                entry.problem = f"no weight files in {', '.join(missing)}"
            else:
                entry.loads = True
        except Exception as exc:  # noqa: BLE001 - shown in the table
            entry.problem = str(exc)
    elif local["official"] is not None or local["config"] is not None:
        entry.problem = local["error"]
        official = local["official"]
        if official is not None:  # the engine's description: family, task, what the conversion writes
            entry.layout = "official"
            entry.family, entry.task = official["family"], official["task"]
            entry.components = sorted(p.name for p in path.iterdir() if (p.is_file() and
                                      p.suffix in (".safetensors", ".pth", ".bin")) or
                                      (p.is_dir() and p.name in ("high_noise_model", "low_noise_model")))
            entry.problem = "official layout: convert it to Diffusers to load it"
    if entry.download_complete is False:
        entry.layout = "incomplete"
        entry.loads = False
        entry.problem = (f"download of {entry.repo_id} unfinished ({len(manifest.get('files') or {})} files done); "
                         "Resume continues it")
    elif entry.layout == "unknown" and not entry.problem:
        entry.problem = "no model_index.json or config.json"
    return entry


def _has_weights(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix in (".safetensors", ".bin", ".pth") for p in folder.iterdir())


def scan_models(root: str | os.PathLike, extra: list[str] | None = None) -> list[ModelEntry]:
    """Every model folder under ``root`` (plus ``extra`` folders, e.g. recently used ones)."""
    root = Path(root)
    found: list[ModelEntry] = []
    seen: set[Path] = set()

    def add(path: Path, where: str) -> None:
        rp = path.resolve()
        if rp in seen or not path.is_dir():
            return
        seen.add(rp)
        found.append(describe_entry(path, where))

    if root.is_dir():
        for sub, where in (("official_weights", "official_weights"), ("converted_weights", "converted_weights")):
            d = root / sub
            if d.is_dir():
                for p in sorted(d.iterdir()):
                    if p.is_dir() and not p.name.startswith("."):
                        add(p, where)
        for p in sorted(root.iterdir()):
            if p.is_dir() and not p.name.startswith(".") and p.name not in ("official_weights", "converted_weights"):
                if has_model_index(p) or (p / ".fastvideo-download.json").is_file() \
                        or (p / "config.json").is_file():
                    add(p, "downloaded" if "--" in p.name or (p / ".fastvideo-download.json").is_file() else "other")
    for e in extra or []:
        p = Path(e).expanduser()
        if has_model_index(p):
            add(p, "other")
    return found


class ModelsTableModel(ColumnTableModel):
    COLUMNS = ("Name", "Family", "Task", "Layout", "Size", "Components", "Loads", "Location")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.entries: list[ModelEntry] = []

    def set_entries(self, entries: list[ModelEntry]) -> None:
        self.beginResetModel()
        self.entries = list(entries)
        self.endResetModel()

    def entry_at(self, row: int) -> ModelEntry | None:
        return self.entries[row] if 0 <= row < len(self.entries) else None

    def row_items(self):
        return self.entries

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self.entries)):
            return None
        e = self.entries[index.row()]
        col = index.column()
        if role == EntryRole:
            return e
        if role == SortRole:
            return e.size if col == 4 else str(self.data(index) or "").lower()
        if role == Qt.ItemDataRole.DisplayRole:
            return (e.name, e.family, e.task, e.layout, human_bytes(e.size), ", ".join(e.components),
                    e.loads_text, e.where)[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{e.path}\n{e.problem}" if e.problem else str(e.path)
        if role == Qt.ItemDataRole.ForegroundRole and col == 6:
            return QColor("#45c486") if e.loads else QColor("#d9a441")
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 4:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

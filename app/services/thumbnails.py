"""Thumbnails of finished videos: first frame, cached on disk by job id."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QImage, QPixmap

from app.services.background import run_in_background
from app.widgets.frame_view import frame_to_qimage

THUMB_W, THUMB_H = 176, 104


def _make(video: str, target: Path) -> QImage:
    from fastvideo.utils.media import read_video

    frames, _ = read_video(video, max_frames=1)
    image = frame_to_qimage(frames[0]).scaled(THUMB_W, THUMB_H, Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.SmoothTransformation)
    tmp = target.with_name(target.stem + ".tmp.png")
    if image.save(str(tmp), "PNG"):
        os.replace(tmp, target)
    return image


class Thumbnails(QObject):
    ready = Signal(int)  # job id whose thumbnail is now available

    def __init__(self, folder: str | Path, parent: QObject | None = None):
        super().__init__(parent)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._cache: dict[int, QPixmap] = {}
        self._pending: set[int] = set()
        self._failed: set[int] = set()

    def get(self, job_id: int, video_path: str | None) -> QPixmap | None:
        """The thumbnail if ready; otherwise starts making it and returns None."""
        pix = self._cache.get(job_id)
        if pix is not None:
            return pix
        target = self.folder / f"{job_id}.png"
        if target.is_file():
            pix = QPixmap(str(target))
            if not pix.isNull():
                self._cache[job_id] = pix
                return pix
        if (video_path and job_id not in self._pending and job_id not in self._failed
                and Path(video_path).is_file()):
            self._pending.add(job_id)
            run_in_background(lambda: _make(video_path, target), lambda img: self._done(job_id, img),
                              lambda exc: self._fail(job_id))
        return None

    def forget(self, job_id: int) -> None:
        self._cache.pop(job_id, None)
        (self.folder / f"{job_id}.png").unlink(missing_ok=True)

    def _done(self, job_id: int, image: QImage) -> None:
        self._pending.discard(job_id)
        self._cache[job_id] = QPixmap.fromImage(image)
        self.ready.emit(job_id)

    def _fail(self, job_id: int) -> None:
        self._pending.discard(job_id)
        self._failed.add(job_id)

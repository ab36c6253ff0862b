"""Exporting from a generated video, without Qt or torch: one frame as PNG, a clip (a frame range) as an
animated GIF or WebP, optionally scaled up by a whole factor with nearest-neighbour (crisp pixels for the
small videos the built-in model makes). Frames are decoded from the file at full size (ffmpeg, via
``fastvideo.utils.media``) and written with Pillow to a unique temporary file that is then renamed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

CLIP_FORMATS = {"gif": "GIF", "webp": "WEBP"}
MAX_SCALE = 16


class ExportError(ValueError):
    """An export that cannot be done; the message says what to change."""


def _frames(video_path: str, last: int) -> tuple[np.ndarray, float]:
    from fastvideo.utils.media import MediaError, read_video

    try:
        return read_video(video_path, max_frames=last + 1)
    except MediaError as exc:
        raise ExportError(str(exc)) from None


def _scaled(frame: np.ndarray, scale: int):
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(frame), "RGB")
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    return image


def _check_scale(scale: int) -> int:
    scale = int(scale)
    if not 1 <= scale <= MAX_SCALE:
        raise ExportError(f"scale must be a whole number from 1 to {MAX_SCALE}, got {scale}")
    return scale


def _write(out: str | Path, save) -> Path:
    """Run ``save(tmp_path)`` then rename the temp file to ``out`` (nothing half-written is left behind)."""
    out = Path(out).expanduser()
    if not out.parent.is_dir():
        raise ExportError(f"the folder {out.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    try:
        save(tmp)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def export_frame(video_path: str, index: int, out: str | Path, scale: int = 1) -> Path:
    """Frame ``index`` (0-based) of the video as a PNG (``scale``: nearest-neighbour, whole factor)."""
    scale = _check_scale(scale)
    frames, _fps = _frames(video_path, int(index))
    if not 0 <= int(index) < len(frames):
        raise ExportError(f"the video has {len(frames)} frames; there is no frame {int(index) + 1}")
    image = _scaled(frames[int(index)], scale)
    return _write(out, lambda tmp: image.save(tmp, "PNG"))


def export_clip(video_path: str, out: str | Path, start: int = 0, end: int | None = None, scale: int = 1,
                fps: float | None = None) -> Path:
    """Frames ``start``..``end`` (0-based, inclusive; None: to the last) as an animated GIF or WebP, chosen by
    ``out``'s suffix, looping, at the video's fps (or ``fps``)."""
    fmt = CLIP_FORMATS.get(Path(out).suffix.lower().lstrip("."))
    if fmt is None:
        raise ExportError(f"{Path(out).name}: a clip is exported as .gif or .webp")
    scale = _check_scale(scale)
    start = int(start)
    if start < 0 or (end is not None and int(end) < start):
        raise ExportError(f"the clip's frames {start}..{end} are not a range: the first must not come after the last")
    frames, video_fps = _frames(video_path, 10**9 if end is None else int(end))
    end = len(frames) - 1 if end is None else int(end)
    if end >= len(frames):
        raise ExportError(f"the video has {len(frames)} frames; the clip cannot end at frame {end + 1}")
    images = [_scaled(f, scale) for f in frames[start:end + 1]]
    rate = float(fps or video_fps or 16.0)
    duration = max(20, int(round(1000.0 / rate)))  # ms a frame (GIF counts in 10 ms steps)
    kwargs = {"save_all": True, "append_images": images[1:], "duration": duration, "loop": 0}
    if fmt == "WEBP":
        kwargs.update(lossless=True)
    return _write(out, lambda tmp: images[0].save(tmp, fmt, **kwargs))

"""Video files: write H.264 MP4 with settings embedded, read frames and settings back.

Pure Python + numpy + the ffmpeg binary shipped by imageio-ffmpeg (no torch), so
the studio can read a dropped MP4's settings without the inference runtime.

The generation settings are stored twice: as JSON in the MP4 ``comment`` tag
(prefixed with ``fastvideo:``) and in a sidecar ``<name>.json`` next to the file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

METADATA_PREFIX = "fastvideo:"


class MediaError(ValueError):
    """A video or image that cannot be read or written; the message names the file."""


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def unique_path(folder: str | os.PathLike, stem: str, suffix: str = ".mp4") -> Path:
    """``folder/stem.mp4``, or ``stem_1.mp4``, ``stem_2.mp4``... never an existing file."""
    folder = Path(folder)
    stem = safe_stem(stem)
    candidate = folder / f"{stem}{suffix}"
    i = 1
    while candidate.exists() or candidate.with_suffix(".json").exists():
        candidate = folder / f"{stem}_{i}{suffix}"
        i += 1
    return candidate


def safe_stem(text: str, max_len: int = 60) -> str:
    """A file-name-safe stem from a prompt."""
    stem = re.sub(r"[^\w\-]+", "_", text.strip(), flags=re.UNICODE).strip("_")
    return (stem[:max_len].rstrip("_") or "video")


def write_video(
    frames: np.ndarray,
    path: str | os.PathLike,
    fps: int = 16,
    metadata: dict[str, Any] | None = None,
    sidecar: bool = True,
    lossless: bool = False,
) -> Path:
    """Write uint8 frames ``[T, H, W, 3]`` as H.264 MP4 (yuv420p), atomically.

    Odd sizes are padded by one pixel (H.264 4:2:0 needs even sizes).  ``lossless``
    writes 4:4:4 at CRF 0 (exact up to colour conversion; for references and tests).  The file
    is written to ``path.tmp.mp4`` then renamed, so no half-written video is left.
    """
    import imageio_ffmpeg

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise MediaError(f"{path}: expected uint8 frames [T, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        h, w = frames.shape[1:3]
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    out_params = ["-movflags", "+faststart"]
    if metadata is not None:
        out_params += ["-metadata", "comment=" + METADATA_PREFIX + json.dumps(metadata, ensure_ascii=False)]
    writer = imageio_ffmpeg.write_frames(
        str(tmp), (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv444p" if lossless else "yuv420p", quality=None,
        bitrate=None, macro_block_size=1, ffmpeg_log_level="error",
        output_params=["-crf", "0" if lossless else "18", "-preset", "medium", *out_params],
    )
    try:
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
    except Exception:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    if sidecar and metadata is not None:
        write_json_atomic(path.with_suffix(".json"), metadata)
    return path


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    os.replace(tmp, path)


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Decode a video to uint8 ``[T, H, W, 3]`` and its fps."""
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: video file not found")
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = reader.__next__()
        w, h = meta["size"]
        frames = []
        for raw in reader:
            frames.append(np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3))
            if max_frames is not None and len(frames) >= max_frames:
                reader.close()
                break
    except (RuntimeError, OSError, StopIteration, KeyError) as exc:
        raise MediaError(f"{path}: cannot read video ({exc})") from None
    if not frames:
        raise MediaError(f"{path}: video has no frames")
    return np.stack(frames), float(meta.get("fps") or 0.0)


def read_metadata(path: str | os.PathLike) -> dict[str, Any] | None:
    """The generation settings embedded in an MP4 (or its JSON sidecar); None if absent."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: file not found")
    proc = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"],
        capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=30,
    )
    text = _join_continuations(proc.stdout)
    for line in text.splitlines():
        if line.startswith("comment=" + METADATA_PREFIX):
            raw = _unescape(line[len("comment=" + METADATA_PREFIX):])
            try:
                return json.loads(raw)
            except json.JSONDecodeError:
                break
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            return json.loads(sidecar.read_text())
        except json.JSONDecodeError:
            return None
    return None


def _join_continuations(text: str) -> str:
    # ffmetadata escapes newlines inside values with a trailing backslash.
    return re.sub(r"\\\n", "\n", text)


def _unescape(value: str) -> str:
    return re.sub(r"\\([=;#\\])", r"\1", value)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode a still image (PNG/JPEG/...) to uint8 ``[H, W, 3]`` through ffmpeg."""
    frames, _ = read_video(path, max_frames=1)
    return frames[0]

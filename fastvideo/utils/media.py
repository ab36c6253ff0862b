"""Video files: write H.264 MP4 with settings embedded, read frames and settings back.

Pure Python + numpy + the ffmpeg binary shipped by imageio-ffmpeg (no torch), so
the studio can read a dropped MP4's settings without the inference runtime.

The generation settings are stored twice: as JSON in the MP4 ``comment`` tag
(prefixed with ``fastvideo:``) and in a sidecar ``<name>.json`` next to the file.
"""

from __future__ import annotations

import errno
import fractions
import json
import os
import re
import subprocess
import tempfile
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
    """``folder/stem.mp4``, or ``stem_1.mp4``, ``stem_2.mp4``... never an existing file.

    Only a guess: another process may take the name before it is written.  To write a
    generation use :func:`write_generation`, which claims the name atomically.
    """
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


def output_target(output: str | os.PathLike) -> tuple[Path, bool]:
    """Where a generation goes: ``(path, is_file)``.

    A path ending in ``.mp4`` that is not an existing folder names the video file itself
    (its sidecar is the same name with ``.json``); anything else is a folder, in which the
    video is named after the prompt.
    """
    path = Path(output).expanduser()
    return path, path.suffix.lower() == ".mp4" and not path.is_dir()


def exists_message(path: Path) -> str:
    return (f"output file {path} already exists; choose another file name, or give a folder to get a new "
            f"numbered name (existing files are never replaced)")


def reserve_path(folder: str | os.PathLike, stem: str, suffix: str = ".mp4") -> Path:
    """Claim ``folder/stem.mp4`` (else ``stem_1.mp4``, ``stem_2.mp4``...) by creating it, empty, exclusively.

    The exclusive create (``O_EXCL``) is atomic, so runs in other threads and processes
    writing into the same folder each get their own name.  A name whose ``.json`` sidecar
    exists is skipped too.  The folder must exist; the caller replaces the placeholder with
    the finished video or removes it.
    """
    folder = Path(folder)
    stem = safe_stem(stem)
    i = 0
    while True:
        candidate = folder / (f"{stem}{suffix}" if i == 0 else f"{stem}_{i}{suffix}")
        i += 1
        if candidate.with_suffix(".json").exists():
            continue
        try:
            _create_exclusive(candidate)
        except FileExistsError:
            continue
        return candidate


def _create_exclusive(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def write_generation(
    frames: np.ndarray,
    output: str | os.PathLike,
    name: str,
    fps: int = 16,
    metadata: dict[str, Any] | None = None,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
) -> Path:
    """Write a generation's video and sidecar under ``output``, never replacing a file.

    ``audio`` (optional, any family): a float waveform ``[channels, samples]`` (or ``[samples]``) in [-1, 1]
    at ``sample_rate`` Hz, stored as an AAC track next to the video (see :func:`write_video`).

    ``output`` is a folder (the video is ``<folder>/<name>.mp4``, ``<name>_1.mp4``... with
    ``name`` made file-safe) or an ``.mp4`` path (written exactly there; an error if it or its
    sidecar exists: see :func:`output_target`).  The final name is claimed atomically before
    encoding, so concurrent runs never collide.  On any failure nothing is left behind: not
    the video, its temporary files, the sidecar, the claimed name, nor folders created here.
    """
    target, is_file = output_target(output)
    folder = target.parent if is_file else target
    created = _make_folders(folder, target)
    path: Path | None = None
    try:
        if is_file:
            if target.with_suffix(".json").exists():
                raise MediaError(exists_message(target.with_suffix(".json")))
            try:
                _create_exclusive(target)
            except FileExistsError:
                raise MediaError(exists_message(target)) from None
            path = target
        else:
            path = reserve_path(folder, name)
        return write_video(frames, path, fps=fps, metadata=metadata, audio=audio, sample_rate=sample_rate)
    except BaseException as exc:
        if path is not None:
            path.unlink(missing_ok=True)  # the placeholder we created (write_video removed its own files)
        _remove_folders(created)
        if isinstance(exc, OSError):
            raise _write_error(exc, target) from exc
        raise


def _make_folders(folder: Path, target: Path) -> list[Path]:
    """Create ``folder`` and missing parents; returns those created (deepest last)."""
    missing = []
    p = folder
    while not p.exists() and p.parent != p:
        missing.append(p)
        p = p.parent
    created = []
    try:
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:
                continue
            created.append(d)
    except OSError as exc:
        _remove_folders(created)
        raise _write_error(exc, target) from exc
    return created


def _remove_folders(created: list[Path]) -> None:
    for d in reversed(created):
        try:
            d.rmdir()  # only if still empty: another run may have written there meanwhile
        except OSError:
            break


def _write_error(exc: BaseException, path: Path) -> MediaError:
    if isinstance(exc, MediaError):
        return exc
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "no space left on device" if exc.errno == errno.ENOSPC else "disk quota exceeded"
        return MediaError(f"could not write the video: {what} ({path.parent}); free some space or choose "
                          f"another output folder")
    if isinstance(exc, OSError):
        return MediaError(f"could not write the video {path}: {exc.strerror or exc}")
    return MediaError(f"could not write the video {path}: {exc}")


def settings_json(metadata: Any, path: str | os.PathLike, indent: int | None = None) -> str:
    """``metadata`` as strict JSON (no NaN/Infinity); a clear :class:`MediaError` otherwise."""
    try:
        return json.dumps(metadata, indent=indent, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise MediaError(f"could not write the video {path}: its settings are not valid JSON ({exc}); "
                         f"nothing was written") from None


def write_video(
    frames: np.ndarray,
    path: str | os.PathLike,
    fps: int = 16,
    metadata: dict[str, Any] | None = None,
    sidecar: bool = True,
    lossless: bool = False,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
) -> Path:
    """Write uint8 frames ``[T, H, W, 3]`` as H.264 MP4 (yuv420p) to ``path``, atomically.

    With ``audio`` (a float waveform ``[channels, samples]`` or ``[samples]`` in [-1, 1], clipped) and its
    ``sample_rate``, the file also gets an AAC audio track (192 kb/s): the waveform goes to the encoder as
    16-bit PCM through a temporary WAV file next to the video.

    Odd sizes are padded by one pixel (H.264 4:2:0 needs even sizes).  ``lossless``
    writes 4:4:4 at CRF 0 (exact up to colour conversion; for references and tests).

    The video and its sidecar (``metadata`` as ``<path>.json``) are written to hidden temporary
    files unique to this call, checked (the encoder's exit status, then the frame count read
    back from the file) and only then renamed over ``path``: a failure (full disk, encoder
    error, truncated file) raises :class:`MediaError` and leaves ``path`` and its sidecar as
    they were.  An existing ``path`` is replaced; :func:`write_generation` never replaces.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise MediaError(f"{path}: expected uint8 frames [T, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    path = Path(path)
    comment = side = None
    if metadata is not None:  # before anything touches the disk
        comment = METADATA_PREFIX + settings_json(metadata, path)
        side = settings_json(metadata, path, indent=2) if sidecar else None
    pcm = None if audio is None else _pcm16(audio, sample_rate, path)
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    path.parent.mkdir(parents=True, exist_ok=True)
    json_path = path.with_suffix(".json")
    temps: list[Path] = []
    renamed: list[Path] = []
    try:
        tmp_video = _temp_file(path.parent, path.name)
        temps.append(tmp_video)
        tmp_wav = None
        if pcm is not None:
            tmp_wav = _temp_file(path.parent, path.stem + ".wav")
            temps.append(tmp_wav)
            _write_wav(tmp_wav, pcm, sample_rate)
        _encode(frames, tmp_video, fps, lossless, comment, tmp_wav)
        if tmp_wav is not None:
            tmp_wav.unlink(missing_ok=True)
        written = _count_frames(tmp_video, path)
        if written != t:
            raise MediaError(f"could not write the video {path}: the encoder wrote {written} of {t} frames")
        _sync(tmp_video)
        tmp_json = None
        if side is not None:
            tmp_json = _temp_file(path.parent, json_path.name)
            temps.append(tmp_json)
            tmp_json.write_text(side, encoding="utf-8")
            _sync(tmp_json)
        os.replace(tmp_video, path)
        renamed.append(path)
        if tmp_json is not None:
            os.replace(tmp_json, json_path)
            renamed.append(json_path)
        _sync(path.parent)
    except BaseException as exc:
        for p in temps + renamed:
            p.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _write_error(exc, path) from exc
        raise
    return path


def _temp_file(folder: Path, name: str) -> Path:
    """A new hidden file next to the final one, unique to this call, with the usual permissions."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    return Path(tmp)


def _umask() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _sync(path: Path) -> None:
    """Flush a file (or a folder's entries) to the disk, where the platform allows."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            raise
    finally:
        os.close(fd)


def _pipe_frames(stream, frames: np.ndarray) -> None:
    """Send raw RGB frames to the encoder."""
    for frame in frames:
        stream.write(memoryview(np.ascontiguousarray(frame)).cast("B"))


def _encode(frames: np.ndarray, out: Path, fps: int, lossless: bool, comment: str | None,
            wav: Path | None = None) -> None:
    """Encode ``frames`` to ``out`` with ffmpeg (libx264; ``wav``: plus an AAC track); a :class:`MediaError` if it
    fails."""
    _, h, w, _ = frames.shape
    cmd = [ffmpeg_exe(), "-y", "-v", "error", "-f", "rawvideo", "-vcodec", "rawvideo", "-s", f"{w}x{h}",
           "-pix_fmt", "rgb24", "-r", str(fractions.Fraction(fps).limit_denominator()), "-i", "-"]
    cmd += ["-an"] if wav is None else ["-i", str(wav), "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac",
                                        "-b:a", "192k"]
    cmd += ["-vcodec", "libx264", "-pix_fmt", "yuv444p" if lossless else "yuv420p",
           "-crf", "0" if lossless else "18", "-preset", "medium", "-movflags", "+faststart"]
    if comment is not None:
        cmd += ["-metadata", "comment=" + comment]
    cmd += ["-f", "mp4", str(out)]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        try:
            try:
                _pipe_frames(proc.stdin, frames)
                proc.stdin.close()
            except BrokenPipeError:
                pass  # the encoder stopped: its exit status and message say why
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass
        code = proc.wait()
        err.seek(0)
        message = err.read().decode("utf-8", "replace").strip()
    if code != 0:
        if "No space left on device" in message:
            raise OSError(errno.ENOSPC, "No space left on device")
        if "Disk quota exceeded" in message:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        last = message.splitlines()[-1] if message else "no message"
        raise MediaError(f"could not write the video {out}: the encoder (ffmpeg) failed with exit code {code}: "
                         f"{last}")


def _count_frames(video: Path, path: Path) -> int:
    """The number of frames the encoder stored in ``video`` (read from the container, not decoded).

    One ``framecrc`` line per packet of the stream copy: ffmpeg 7.0 (imageio-ffmpeg 0.6-0.7) leaves ``frame=`` out
    of ``-progress`` for a stream copy, so the packets are counted instead."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(video), "-map", "0:v:0", "-c", "copy", "-f", "framecrc",
         "-"],
        capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=300,
    )
    packets = sum(1 for ln in proc.stdout.splitlines() if ln.strip() and not ln.startswith("#"))
    if proc.returncode != 0 or not packets:
        lines = [re.sub(r"^\[[^\]]*\]\s*", "", ln) for ln in proc.stderr.strip().splitlines()]
        why = next((ln for ln in lines if "moov atom not found" in ln), lines[0] if lines else "no video stream")
        raise MediaError(f"could not write the video {path}: the encoded file is truncated or unreadable ({why})")
    return packets


def _pcm16(audio: np.ndarray, sample_rate: int | None, path: Path) -> np.ndarray:
    """A waveform as interleaved int16 ``[samples, channels]``; a :class:`MediaError` for a bad one."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[0] > 8 or a.shape[1] < 1:
        raise MediaError(f"could not write the video {path}: audio must be [channels, samples] (1 to 8 channels), "
                         f"got shape {list(np.shape(audio))}")
    if not isinstance(sample_rate, int) or not 1000 <= sample_rate <= 384000:
        raise MediaError(f"could not write the video {path}: audio needs a sample rate in Hz (1000..384000), got "
                         f"{sample_rate!r}")
    if not np.isfinite(a).all():
        raise MediaError(f"could not write the video {path}: the audio has NaN or infinite samples")
    return np.ascontiguousarray((np.clip(a, -1.0, 1.0) * 32767.0).round().astype("<i2").T)


def _write_wav(path: Path, pcm: np.ndarray, sample_rate: int) -> None:
    import wave

    with wave.open(str(path), "wb") as f:
        f.setnchannels(pcm.shape[1])
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(pcm.tobytes())


def audio_stream(path: str | os.PathLike) -> dict[str, Any] | None:
    """The first audio stream of a media file as ``{"codec", "sample_rate", "channels"}``; None without one."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: file not found")
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True,
                          text=True, encoding="utf-8", errors="replace", timeout=30)
    m = re.search(r"Stream #\S+.*?: Audio: (\w+)[^,\n]*, (\d+) Hz, ([^,\n]+)", proc.stderr)
    if m is None:
        return None
    layout = m.group(3).strip()
    channels = {"mono": 1, "stereo": 2}.get(layout) or int((re.match(r"(\d+)", layout) or [0, 0])[1] or 0)
    return {"codec": m.group(1), "sample_rate": int(m.group(2)), "channels": channels}


def h264_roundtrip(image: np.ndarray, crf: int) -> np.ndarray:
    """A uint8 ``[H, W, 3]`` image encoded as one H.264 frame (libx264, ``crf``, yuv420p) and decoded back, as
    models trained on compressed video expect their conditioning image (LTX-2's first frame)."""
    image = np.asarray(image, dtype=np.uint8)
    h, w = image.shape[:2]
    even = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "frame.mp4"
        cmd = [ffmpeg_exe(), "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
               f"{even.shape[1]}x{even.shape[0]}", "-r", "1", "-i", "-", "-an", "-vcodec", "libx264", "-crf",
               str(int(crf)), "-preset", "veryfast", "-pix_fmt", "yuv420p", "-f", "mp4", str(out)]
        proc = subprocess.run(cmd, input=even.tobytes(), capture_output=True, timeout=60)
        if proc.returncode != 0:
            raise MediaError(f"could not re-encode the conditioning image: "
                             f"{proc.stderr.decode('utf-8', 'replace').strip()[-300:]}")
        frames, _ = read_video(out, max_frames=1)
    return frames[0][:h, :w]


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON through a temporary file unique to this call (video sidecars use :func:`write_video`)."""
    path = Path(path)
    text = json.dumps(data, indent=2, ensure_ascii=False)
    tmp = _temp_file(path.parent, path.name)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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

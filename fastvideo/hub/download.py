"""Download a Hugging Face Hub repo into a folder: progress, cancel, resume, checks.

Built on ``huggingface_hub``'s own pieces so that endpoints (``endpoint=`` / ``HF_ENDPOINT``),
tokens (``token=`` / ``HF_TOKEN`` / ``hf auth login``), headers, redirects and error
classification stay the library's:

* the file list comes from ``HfApi.model_info(files_metadata=True)`` (sizes, git blob ids,
  LFS sha256), pinned to the commit it reports so every file comes from one commit;
* each file's location comes from ``get_hf_file_metadata`` (HEAD ``/resolve/``, following hub
  redirects, stopping at a CDN one) and is fetched with ``http_stream_backoff`` on the shared
  ``get_session()`` client, with ``Range`` requests to continue partial files.

``hf_hub_download`` itself is not used for the transfer: it deletes its temporary file on any
failure (no resume after an interruption or restart), and its only hook is a tqdm class
(no clean cancellation).

Layout of ``local_dir`` while and after downloading::

    local_dir/<repo files>                       complete files only (renamed into place)
    local_dir/.fastvideo-download.json           manifest: size + etag of every finished file
    local_dir/.fastvideo-partial/<file>.<etag>.part   partial data, continued by the next run

``model_index.json`` (what makes a folder a model for the registry) is fetched last, so a
half-downloaded folder is never mistaken for a model.  Qt-free; the progress callback is
called from the downloading thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from fastvideo.errors import FastVideoError

logger = logging.getLogger(__name__)

MANIFEST_NAME = ".fastvideo-download.json"
PARTIAL_DIR = ".fastvideo-partial"
MANIFEST_VERSION = 1
CHUNK_SIZE = 256 * 1024
DEFAULT_DISK_MARGIN = 100 * 1024 * 1024
LAST_FILES = ("model_index.json",)  # fetched last: their presence marks a complete model folder

__all__ = [
    "AuthenticationError", "DiskSpaceError", "DownloadCancelled", "DownloadError", "DownloadPlan",
    "DownloadProgress", "EntryNotFoundError", "GatedRepoError", "HubOfflineError", "IntegrityError",
    "RepoFile", "RepoNotFoundError", "RevisionNotFoundError", "TextProgress", "UnsafeFileNameError",
    "check_file_names", "download_repo", "format_progress", "plan_download", "read_manifest",
]


# ---------------------------------------------------------------------------- errors
class DownloadError(FastVideoError):
    """A download that cannot proceed; the message says why and what to do."""


class RepoNotFoundError(DownloadError):
    """Unknown repo id (or a private repo the token cannot see)."""


class RevisionNotFoundError(DownloadError):
    """The repo exists but not the branch/tag/commit asked for."""


class EntryNotFoundError(DownloadError):
    """A file listed by the repo metadata is missing on the server."""


class GatedRepoError(DownloadError):
    """The repo is gated and the token (if any) has no access."""


class AuthenticationError(DownloadError):
    """The token was rejected."""


class HubOfflineError(DownloadError):
    """The hub cannot be reached (no network, DNS, proxy, HF_HUB_OFFLINE); partial data is kept."""


class DiskSpaceError(DownloadError):
    """Not enough free space for the remaining bytes; raised before any transfer."""

    def __init__(self, message: str, needed: int, free: int):
        super().__init__(message)
        self.needed = needed
        self.free = free


class IntegrityError(DownloadError):
    """A finished file has the wrong size or sha256 (its partial data is removed)."""


class UnsafeFileNameError(DownloadError):
    """The repo listing has a file name that is not a plain relative path inside the folder
    (absolute, ``..``, backslash, drive letter, empty segment, NUL...); raised before anything is written."""

    def __init__(self, message: str, filename: str, reason: str):
        super().__init__(message)
        self.filename = filename
        self.reason = reason


class DownloadCancelled(FastVideoError):
    """``cancel_event`` was set; finished files and partial data are kept for resuming."""


# ---------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class RepoFile:
    path: str  # repo-relative, "/"-separated
    size: int
    etag: str  # what the hub sends as the file's ETag: LFS sha256, else the git blob id
    sha256: str | None = None  # LFS files only

    @property
    def lfs(self) -> bool:
        return self.sha256 is not None


@dataclass(frozen=True)
class DownloadPlan:
    repo_id: str
    revision: str  # as asked ("main" by default)
    commit: str  # the commit every file is fetched from
    endpoint: str
    files: tuple[RepoFile, ...]
    gated: bool = False

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def select(self, allow_patterns: str | Iterable[str] | None = None,
               ignore_patterns: str | Iterable[str] | None = None) -> DownloadPlan:
        """The plan restricted to files matching the patterns (``fnmatch``, as ``snapshot_download``)."""
        if allow_patterns is None and ignore_patterns is None:
            return self
        from huggingface_hub.utils import filter_repo_objects

        def norm(p):
            return [p] if isinstance(p, str) else (list(p) if p is not None else None)

        files = tuple(filter_repo_objects(self.files, allow_patterns=norm(allow_patterns),
                                          ignore_patterns=norm(ignore_patterns), key=lambda f: f.path))
        return replace(self, files=files)


_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_ETAG_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_RESERVED = (MANIFEST_NAME, PARTIAL_DIR)


def unsafe_name_reason(name: str) -> str | None:
    """Why ``name`` (a file name from a repo listing) must not be written under a folder, or None.

    Accepted: a non-empty ``/``-separated relative path whose segments are not empty, ``.`` or
    ``..``, with no backslash, NUL or control character, no drive letter (``C:``) and not one of
    the download's own bookkeeping names; joined onto any folder it stays inside that folder."""
    if not isinstance(name, str) or not name:
        return "empty name"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "NUL or control character"
    if "\\" in name:
        return "backslash (a Windows path separator)"
    if name.startswith("/"):
        return "absolute path"
    segments = name.split("/")
    if any(seg == ".." for seg in segments):
        return "'..' segment (leads outside the folder)"
    if any(seg in ("", ".") for seg in segments):
        return "empty or '.' segment"
    if any(_DRIVE_RE.match(seg) for seg in segments):
        return "drive letter (Windows absolute path)"
    if segments[0] in _RESERVED:
        return f"reserved for fastvideo's download bookkeeping ({segments[0]})"
    root = "/r"  # lexical containment, independent of the platform and of the disk
    joined = os.path.normpath(os.path.join(root, *segments))
    if os.path.commonpath([root, joined]) != root or joined == root:
        return "resolves outside the folder"
    return None


def _unsafe(repo_id: str, revision: str, name: str, reason: str, more: int = 0,
            where: str = "the repository lists an unsafe file name") -> UnsafeFileNameError:
    extra = f" (and {more} more)" if more else ""
    return UnsafeFileNameError(
        f"{repo_id}@{revision}: {where} {name!r}{extra}: {reason}. Nothing was downloaded. Repo file names "
        "must be relative paths inside the repo; do not use this repo/endpoint (or ask its owner to rename "
        "the file)", filename=name, reason=reason)


def check_file_names(plan: DownloadPlan, local_dir: str | os.PathLike | None = None) -> None:
    """Raise :class:`UnsafeFileNameError` if a file of ``plan`` (name or etag) could be written outside a
    folder; with ``local_dir`` also if one resolves outside it on disk (through an existing symlink)."""
    bad = [(f.path, r) for f in plan.files if (r := unsafe_name_reason(f.path))]
    bad += [(f.path, f"unusable etag {f.etag!r}") for f in plan.files
            if not bad and not _ETAG_RE.match(f.etag or "")]
    if bad:
        raise _unsafe(plan.repo_id, plan.revision, bad[0][0], bad[0][1], len(bad) - 1)
    if local_dir is None:
        return
    root = Path(os.path.realpath(Path(local_dir).expanduser()))
    for f in plan.files:  # the folders written into (a file itself is replaced by rename, not followed)
        for target in (root / f.path, root / PARTIAL_DIR / f.path):
            real = Path(os.path.realpath(target.parent))
            if real != root and root not in real.parents:
                raise _unsafe(plan.repo_id, plan.revision, f.path, f"its folder {target.parent} resolves to "
                              f"{real} (a symlink inside {root})", where="the file")


def _endpoint(endpoint: str | None) -> str:
    from huggingface_hub import constants

    # HF_ENDPOINT is read now (the library reads it once, at import)
    return (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def plan_download(repo_id: str, revision: str | None = None, endpoint: str | None = None,
                  token: str | bool | None = None, *, allow_patterns: str | Iterable[str] | None = None,
                  check_access: bool = True, timeout: float = 20.0) -> DownloadPlan:
    """List the files of ``repo_id`` at ``revision`` with sizes and etags.

    For a gated repo the access of ``token`` is checked with a HEAD request on one file
    (the metadata of gated repos is public, their files are not) unless ``check_access=False``.
    Raises :class:`RepoNotFoundError`, :class:`RevisionNotFoundError`, :class:`GatedRepoError`,
    :class:`AuthenticationError` or :class:`HubOfflineError` with a message saying what to do, and
    :class:`UnsafeFileNameError` when any listed file name (or etag) could lead outside a folder.
    """
    from huggingface_hub import HfApi

    endpoint = _endpoint(endpoint)
    rev = revision or "main"
    api = HfApi(endpoint=endpoint, token=token)
    try:
        info = api.model_info(repo_id, revision=revision, files_metadata=True, token=token, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - mapped or re-raised
        raise _map_error(exc, repo_id=repo_id, revision=rev, endpoint=endpoint) from None
    if not info.sha:
        raise DownloadError(f"{endpoint} returned no commit for {repo_id}@{rev}; is it a Hugging Face Hub endpoint?")
    files = []
    for s in info.siblings or []:
        if s.lfs is not None:
            files.append(RepoFile(s.rfilename, int(s.lfs.size), s.lfs.sha256, s.lfs.sha256))
        else:
            if s.size is None or s.blob_id is None:
                raise DownloadError(f"{endpoint} returned no file sizes for {repo_id}; is it a Hugging Face Hub "
                                    "endpoint (GET /api/models/{repo}/revision/{rev}?blobs=true)?")
            files.append(RepoFile(s.rfilename, int(s.size), s.blob_id))
    files.sort(key=lambda f: (f.path in LAST_FILES, f.path))
    plan = DownloadPlan(repo_id, rev, info.sha, endpoint, tuple(files), gated=bool(info.gated))
    check_file_names(plan)  # every listed name, before any pattern, request or write
    plan = plan.select(allow_patterns)
    if check_access and plan.gated and plan.files:
        _file_metadata(plan, plan.files[0], token)
    return plan


# ---------------------------------------------------------------------------- errors mapping
def _map_error(exc: BaseException, *, repo_id: str, revision: str, endpoint: str,
               filename: str | None = None) -> BaseException:
    import httpx2
    from huggingface_hub import errors as hf_errors
    from huggingface_hub.utils import OfflineModeIsEnabled

    page = f"{endpoint}/{repo_id}"
    if isinstance(exc, DownloadError):
        return exc
    if isinstance(exc, hf_errors.GatedRepoError):
        status = exc.response.status_code if exc.response is not None else None
        if status == 403:
            how = ("your token has no access yet: open the model page, accept the license with the account "
                   "the token belongs to (some repos need an approval), then retry")
        else:
            how = ("accept the license on the model page, then set HF_TOKEN to a read token of that account "
                   "(or run `hf auth login`) and retry")
        return GatedRepoError(f"{repo_id} is a gated model: {how}. Model page: {page}")
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        return RevisionNotFoundError(
            f"{repo_id} has no revision {revision!r}: use a branch, tag or commit hash listed on {page} "
            "(default: main)")
    if isinstance(exc, (hf_errors.RemoteEntryNotFoundError, hf_errors.EntryNotFoundError)):
        return EntryNotFoundError(f"{repo_id}@{revision}: file {filename!r} is listed but missing on the server; "
                                  "retry later or pick another revision")
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        return RepoNotFoundError(
            f"repo {repo_id!r} not found on {endpoint}: check the repo id (owner/name as in the model page URL, "
            "e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers). If it is private, set HF_TOKEN to a token with access.")
    if isinstance(exc, OfflineModeIsEnabled):
        return HubOfflineError("HF_HUB_OFFLINE is set, so nothing can be downloaded: unset it and retry; "
                               "finished files are kept and the download resumes where it stopped")
    if isinstance(exc, hf_errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            return AuthenticationError(f"{endpoint} rejected the token (HTTP 401): check HF_TOKEN "
                                       "(or `hf auth login`) and retry")
        if status == 403:
            return AuthenticationError(f"{endpoint} refused access to {repo_id} (HTTP 403): check that your "
                                       "token has read access to it")
        if status is not None and status >= 500:
            return DownloadError(f"the hub had an error (HTTP {status}) for {repo_id}: try again later; "
                                 "finished files are kept")
        return DownloadError(f"{repo_id}: {exc}")
    if isinstance(exc, (httpx2.TransportError, ConnectionError, TimeoutError)):
        return HubOfflineError(
            f"no network: cannot reach {endpoint} ({type(exc).__name__}: {exc}). Check your connection "
            "(and HF_ENDPOINT / proxy settings); the download resumes where it stopped when you are back online "
            "(run the same command again)")
    return exc


# ---------------------------------------------------------------------------- progress
@dataclass(frozen=True)
class DownloadProgress:
    """One progress report.  ``bytes_done`` counts bytes already on disk (from earlier runs) too;
    ``speed`` (bytes/s, moving average over the last seconds) and ``eta`` (s) cover this run."""

    kind: str  # "start" | "progress" | "file_done" | "retry" | "done"
    repo_id: str
    file: str | None
    file_bytes: int
    file_total: int
    bytes_done: int
    bytes_total: int
    files_done: int
    files_total: int
    speed: float
    eta: float | None
    elapsed: float
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.bytes_done / self.bytes_total if self.bytes_total else 1.0


class _Progress:
    def __init__(self, plan: DownloadPlan, callback, min_interval: float, window: float = 3.0):
        self.plan = plan
        self.callback = callback
        self.min_interval = min_interval
        self.window = window
        self.start = time.monotonic()
        self.last_emit = -1e9
        self.samples: deque[tuple[float, int]] = deque([(self.start, 0)])
        self.transferred = 0  # this run
        self.bytes_done = 0
        self.files_done = 0
        self.file: str | None = None
        self.file_bytes = 0
        self.file_total = 0
        self.speed = 0.0

    def add(self, n: int) -> None:
        self.transferred += n
        self.bytes_done += n
        self.file_bytes += n
        self.emit("progress")

    def _update_speed(self, now: float) -> None:
        self.samples.append((now, self.transferred))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()
        t0, b0 = self.samples[0]
        if now - t0 >= 0.05:
            self.speed = (self.transferred - b0) / (now - t0)

    def emit(self, kind: str, message: str = "", force: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if not force and now - self.last_emit < self.min_interval:
            return
        self.last_emit = now
        self._update_speed(now)
        remaining = max(self.plan.total_bytes - self.bytes_done, 0)
        eta = remaining / self.speed if self.speed > 0 else (0.0 if remaining == 0 else None)
        self.callback(DownloadProgress(
            kind, self.plan.repo_id, self.file, self.file_bytes, self.file_total, self.bytes_done,
            self.plan.total_bytes, self.files_done, len(self.plan.files), self.speed, eta, now - self.start, message))


# ---------------------------------------------------------------------------- manifest
def read_manifest(local_dir: str | os.PathLike) -> dict:
    """The manifest of ``local_dir`` (``{}`` when missing or unreadable)."""
    try:
        data = json.loads((Path(local_dir) / MANIFEST_NAME).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_manifest(local_dir: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=MANIFEST_NAME + ".", suffix=".tmp", dir=local_dir)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, local_dir / MANIFEST_NAME)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _partial_path(local_dir: Path, f: RepoFile) -> Path:
    return local_dir / PARTIAL_DIR / f"{f.path}.{f.etag[:16]}.part"


def _is_complete(local_dir: Path, f: RepoFile, entry: dict | None) -> bool:
    dest = local_dir / f.path
    if not (entry and entry.get("etag") == f.etag and entry.get("size") == f.size):
        return False
    try:
        return dest.stat().st_size == f.size
    except OSError:
        return False


# ---------------------------------------------------------------------------- download
def download_repo(repo_id: str, local_dir: str | os.PathLike, revision: str | None = None,
                  endpoint: str | None = None, token: str | bool | None = None,
                  progress: Callable[[DownloadProgress], None] | None = None,
                  cancel_event: threading.Event | None = None,
                  allow_patterns: str | Iterable[str] | None = None, *,
                  ignore_patterns: str | Iterable[str] | None = None, retries: int = 5, backoff: float = 1.0,
                  min_interval: float = 0.1, disk_margin: int = DEFAULT_DISK_MARGIN,
                  plan: DownloadPlan | None = None) -> Path:
    """Download ``repo_id`` (at ``revision``) into ``local_dir``; returns ``local_dir``.

    * Finished files recorded in the manifest with the same size + etag are skipped; partial
      files continue from their size with a ``Range`` request.
    * ``progress`` gets :class:`DownloadProgress` events, at most one per ``min_interval``
      seconds (plus one "start", one "done" and one per retry).
    * ``cancel_event`` is checked between chunks: :class:`DownloadCancelled`, data kept.
    * A dropped connection is retried ``retries`` times (waits ``backoff``, doubling, max 8 s;
      the count restarts once data flows again), continuing from the bytes received.
    * Free space for the remaining bytes + ``disk_margin`` is checked before any transfer.
    * Sizes (and sha256 of LFS files) are verified; files are renamed into place when complete.
    * Every file name is checked first (:func:`check_file_names`): one unsafe name raises
      :class:`UnsafeFileNameError` before anything is created.
    """
    local_dir = Path(local_dir).expanduser()
    if plan is None:
        plan = plan_download(repo_id, revision, endpoint, token)
    plan = plan.select(allow_patterns, ignore_patterns)
    if not plan.files:
        raise DownloadError(f"no file of {repo_id}@{plan.revision} matches {allow_patterns!r}")
    _check_cancel(cancel_event)
    check_file_names(plan, local_dir)  # also for a plan made elsewhere; before anything is created

    local_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(local_dir)
    if manifest.get("repo_id") not in (None, repo_id):
        raise DownloadError(f"{local_dir} already holds a download of {manifest['repo_id']} "
                            f"({MANIFEST_NAME}); choose another folder for {repo_id}")
    entries: dict = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
    manifest = {"version": MANIFEST_VERSION, "repo_id": repo_id, "revision": plan.revision, "commit": plan.commit,
                "endpoint": plan.endpoint, "complete": False, "files": entries}

    pending: list[RepoFile] = []
    done_bytes = 0
    partial_bytes = 0
    for f in plan.files:
        if _is_complete(local_dir, f, entries.get(f.path)):
            done_bytes += f.size
        else:
            pending.append(f)
            part = _partial_path(local_dir, f)
            if part.is_file():
                partial_bytes += min(part.stat().st_size, f.size)

    remaining = sum(f.size for f in pending) - partial_bytes
    _check_disk_space(local_dir, remaining, disk_margin)

    tracker = _Progress(plan, progress, min_interval)
    tracker.bytes_done = done_bytes + partial_bytes
    tracker.files_done = len(plan.files) - len(pending)
    tracker.emit("start", force=True)

    for f in pending:
        _check_cancel(cancel_event)
        tracker.file, tracker.file_total = f.path, f.size
        _download_file(plan, f, local_dir, token, tracker, cancel_event, retries, backoff)
        entries[f.path] = {"size": f.size, "etag": f.etag, **({"sha256": f.sha256} if f.sha256 else {})}
        _write_manifest(local_dir, manifest)
        tracker.files_done += 1
        tracker.emit("file_done")

    manifest["complete"] = all(f.path in entries for f in plan.files)
    _write_manifest(local_dir, manifest)
    partial_root = local_dir / PARTIAL_DIR
    if partial_root.is_dir():
        for f in plan.files:  # partial data of older versions of these files
            stem = Path(f.path).name
            for stale in (partial_root / f.path).parent.glob(f"{stem}.*.part"):
                if stale.name.count(".") == stem.count(".") + 2:
                    stale.unlink(missing_ok=True)
        if not any(p.is_file() for p in partial_root.rglob("*")):
            shutil.rmtree(partial_root, ignore_errors=True)
    tracker.file = None
    tracker.file_bytes = tracker.file_total = 0
    tracker.emit("done", force=True)
    return local_dir


def _check_cancel(cancel_event: threading.Event | None) -> None:
    if cancel_event is not None and cancel_event.is_set():
        raise DownloadCancelled("download cancelled; finished files and partial data are kept, "
                                "run it again to resume")


def _existing_parent(path: Path) -> Path:
    p = path
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def _check_disk_space(local_dir: Path, remaining: int, margin: int) -> None:
    if remaining <= 0:
        return
    free = shutil.disk_usage(_existing_parent(local_dir)).free
    needed = remaining + margin
    if free < needed:
        raise DiskSpaceError(
            f"not enough disk space in {local_dir}: the download needs {human_bytes(remaining)} more "
            f"(+ {human_bytes(margin)} margin = {human_bytes(needed)}) but only {human_bytes(free)} is free. "
            "Free some space or choose another folder (--local-dir / FASTVIDEO_MODELS_DIR).",
            needed=needed, free=free)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _file_metadata(plan: DownloadPlan, f: RepoFile, token, *, raw: bool = False):
    """HEAD /resolve/ through the library (hub redirects followed, CDN location returned)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(plan.repo_id, f.path, revision=plan.commit, endpoint=plan.endpoint)
    try:
        return get_hf_file_metadata(url, token=token, endpoint=plan.endpoint)
    except Exception as exc:  # noqa: BLE001
        if raw:
            raise
        raise _map_error(exc, repo_id=plan.repo_id, revision=plan.revision, endpoint=plan.endpoint,
                         filename=f.path) from None


def _origin(url: str) -> tuple[str, str, int | None]:
    p = urlsplit(url)
    return p.scheme, (p.hostname or "").lower(), p.port


def _reset(fh, tracker: _Progress, offset: int, f: RepoFile):
    fh.seek(0)
    fh.truncate()
    tracker.bytes_done -= offset
    tracker.file_bytes = 0
    return 0, (hashlib.sha256() if f.sha256 else None)


def _download_file(plan: DownloadPlan, f: RepoFile, local_dir: Path, token, tracker: _Progress,
                   cancel_event: threading.Event | None, retries: int, backoff: float) -> None:
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.errors import OfflineModeIsEnabled
    from huggingface_hub.utils import build_hf_headers, hf_raise_for_status, http_stream_backoff

    dest = local_dir / f.path
    part = _partial_path(local_dir, f)
    part.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.is_file() else 0
    if offset > f.size:  # not ours / corrupt
        part.unlink()
        tracker.bytes_done -= f.size
        offset = 0
    tracker.file_bytes = offset
    hasher = hashlib.sha256() if f.sha256 else None

    with open(part, "r+b" if part.exists() else "w+b") as fh:
        if hasher is not None and offset:  # continue the hash over the bytes kept
            for block in iter(lambda: fh.read(4 << 20), b""):
                hasher.update(block)
        fh.seek(offset)
        location: str | None = None
        headers: dict[str, str] = {}
        failures = 0
        while offset < f.size:
            _check_cancel(cancel_event)
            try:
                if location is None:
                    meta = _file_metadata(plan, f, token, raw=True)
                    if meta.etag and meta.etag != f.etag:
                        logger.warning("%s: etag %s differs from the listing's %s", f.path, meta.etag, f.etag)
                    if meta.size is not None and meta.size != f.size:
                        raise IntegrityError(f"{plan.repo_id}: {f.path} is {meta.size} bytes on the server but "
                                             f"{f.size} in the repo listing; retry later")
                    location = meta.location
                    headers = build_hf_headers(token=token)
                    if _origin(location) != _origin(plan.endpoint):  # CDN: no auth header (as the library)
                        headers.pop("authorization", None)
                    headers["Accept-Encoding"] = "identity"
                req_headers = dict(headers)
                if offset:
                    req_headers["Range"] = f"bytes={offset}-"
                with http_stream_backoff("GET", location, headers=req_headers,
                                         timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT, retry_on_exceptions=(),
                                         retry_on_status_codes=(408, 429, 500, 502, 503, 504),
                                         max_retries=retries, base_wait_time=backoff,
                                         max_wait_time=8.0) as response:
                    if response.status_code == 416 and offset:  # nothing past our offset: start over
                        offset, hasher = _reset(fh, tracker, offset, f)
                        continue
                    if response.status_code >= 400:
                        response.read()
                    hf_raise_for_status(response)
                    if offset and response.status_code != 206:  # range ignored: the body is the whole file
                        offset, hasher = _reset(fh, tracker, offset, f)
                    got = 0
                    for chunk in response.iter_bytes():  # as received: nothing is lost when the link drops
                        if not chunk:
                            continue
                        _check_cancel(cancel_event)
                        if offset + len(chunk) > f.size:
                            raise IntegrityError(f"{plan.repo_id}: the server sent more than the {f.size} bytes "
                                                 f"of {f.path}; run the download again")
                        fh.write(chunk)
                        if hasher is not None:
                            hasher.update(chunk)
                        offset += len(chunk)
                        got += len(chunk)
                        if got >= CHUNK_SIZE:
                            failures = 0  # data flows again
                        tracker.add(len(chunk))
                if offset < f.size:
                    raise httpx2.RemoteProtocolError("the response ended before the end of the file")
            except (httpx2.TransportError, ConnectionError, TimeoutError) as exc:
                if isinstance(exc, OfflineModeIsEnabled):
                    raise _map_error(exc, repo_id=plan.repo_id, revision=plan.revision,
                                     endpoint=plan.endpoint) from None
                fh.flush()
                failures += 1
                if failures > retries:
                    err = _map_error(exc, repo_id=plan.repo_id, revision=plan.revision, endpoint=plan.endpoint)
                    raise HubOfflineError(f"{err} [{human_bytes(offset)} of {f.path} kept]") from None
                wait = min(backoff * 2 ** (failures - 1), 8.0)
                logger.info("%s: %s; retrying in %.1f s from byte %d (%d/%d)", f.path, exc, wait, offset,
                               failures, retries)
                tracker.emit("retry", message=f"{f.path}: connection lost ({type(exc).__name__}); "
                                              f"retry {failures}/{retries} in {wait:.1f} s from byte {offset}",
                             force=True)
                if cancel_event is not None:
                    cancel_event.wait(wait)
                else:
                    time.sleep(wait)
                if isinstance(exc, (httpx2.ConnectError, httpx2.ConnectTimeout)):
                    location = None  # ask the hub again (the CDN url may have expired)
            except (DownloadError, DownloadCancelled):
                raise
            except Exception as exc:  # noqa: BLE001
                raise _map_error(exc, repo_id=plan.repo_id, revision=plan.revision, endpoint=plan.endpoint,
                                 filename=f.path) from None
        fh.flush()
        os.fsync(fh.fileno())

    size = part.stat().st_size
    if size != f.size:
        part.unlink(missing_ok=True)
        raise IntegrityError(f"{plan.repo_id}: {f.path} has {size} bytes, expected {f.size}; the partial data was "
                             "removed, run the download again")
    if hasher is not None and hasher.hexdigest() != f.sha256:
        part.unlink(missing_ok=True)
        raise IntegrityError(f"{plan.repo_id}: {f.path} sha256 {hasher.hexdigest()} does not match the hub's "
                             f"{f.sha256}; the data was removed, run the download again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, dest)


# ---------------------------------------------------------------------------- text progress
def format_progress(p: DownloadProgress) -> str:
    """One status line: ``[ 42.0%] 1.2 GB / 2.9 GB  files 3/12  24.1 MB/s  ETA 1:10  vae/...``."""
    eta = "--:--" if p.eta is None else _clock(p.eta)
    line = (f"[{100 * p.fraction:5.1f}%] {human_bytes(p.bytes_done)} / {human_bytes(p.bytes_total)}  "
            f"files {p.files_done}/{p.files_total}  {human_bytes(p.speed)}/s  ETA {eta}")
    if p.file:
        line += f"  {p.file}"
    return line


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class TextProgress:
    """A ``progress`` callback writing a status line to a stream: rewritten in place on a
    terminal, else one line per ``interval`` seconds (plus start/retry/done lines)."""

    def __init__(self, stream=None, interval: float = 2.0, width: int = 120):
        import sys

        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self.width = width
        self._last = -1e9
        self._open_line = False

    def __call__(self, p: DownloadProgress) -> None:
        if p.kind == "start":
            self._line(f"{p.repo_id}: {p.files_total} files, {human_bytes(p.bytes_total)}"
                       + (f" ({human_bytes(p.bytes_done)} already here)" if p.bytes_done else ""))
            return
        if p.kind == "retry":
            self._line(p.message)
            return
        text = format_progress(p)
        if p.kind == "done":
            self._line(text)
        elif self.tty:
            self.stream.write("\r" + text[: self.width].ljust(self.width))
            self.stream.flush()
            self._open_line = True
        elif p.elapsed - self._last >= self.interval:
            self._last = p.elapsed
            self._line(text)

    def _line(self, text: str) -> None:
        if self._open_line:
            self.stream.write("\n")
            self._open_line = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._open_line:
            self.stream.write("\n")
            self.stream.flush()
            self._open_line = False

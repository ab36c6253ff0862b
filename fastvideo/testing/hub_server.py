"""A small local Hugging Face Hub for tests: the endpoints ``huggingface_hub`` downloads through.

::

    with LocalHub(root) as hub:              # root/<org>/<name>/... are repos (revision "main")
        hub.add_repo("org/model", folder)    # or add them explicitly (also other revisions, gated, private)
        hub.fail_after("org/model", "vae/diffusion_pytorch_model.safetensors", 300_000)
        download_repo("org/model", out, endpoint=hub.url)
        hub.bytes_served("org/model", "vae/diffusion_pytorch_model.safetensors")

Served (what ``huggingface_hub`` 1.x/2.x calls for ``model_info`` and file downloads):

* ``GET /api/models/{repo_id}[/revision/{rev}]`` (``?blobs=true`` adds ``size``/``blobId``/``lfs``):
  the model-info JSON (``id``, ``sha``, ``gated``, ``private``, ``siblings``...).
* ``GET /api/models/{repo_id}/tree/{rev}[/{path}]`` (``?recursive=true``): the file listing
  ``snapshot_download`` uses (one page).
* ``HEAD``/``GET /{repo_id}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag`` (git blob id,
  or the sha256 for LFS files), ``Accept-Ranges``; ``Range: bytes=a-[b]`` gives 206 +
  ``Content-Range`` (416 past the end).  LFS files (binary suffixes or >= ``lfs_threshold``)
  answer ``302`` to a "CDN" URL on another origin (``localhost`` instead of ``127.0.0.1``)
  with ``X-Linked-Etag``/``X-Linked-Size``, as the real hub does; ``lfs_redirect=False`` serves
  them directly.
* Errors with the hub's status codes and ``X-Error-Code``: ``RepoNotFound`` (404; 401 for a
  private repo without a valid token), ``RevisionNotFound`` (404), ``EntryNotFound`` (404),
  ``GatedRepo`` (401 without a token, 403 with a token not on the repo's list).

Fault injection and accounting: :meth:`LocalHub.add_file` lists a file under any name (e.g. a
malicious ``../../x``); :meth:`LocalHub.fail_after` drops the connection after a
number of body bytes of a file's response (for the next ``times`` responses);
:meth:`LocalHub.set_rate` throttles bodies; :meth:`LocalHub.bytes_served` counts the body
bytes actually sent per file; :attr:`LocalHub.requests` logs every request.

The server binds 127.0.0.1 on an ephemeral port, runs in daemon threads, closes idle
keep-alive connections after ``idle_timeout`` seconds and stops by itself after
``max_lifetime`` seconds.  Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["LocalHub", "HubRequest"]

LFS_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt", ".gguf", ".model", ".onnx", ".msgpack", ".h5")
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class _File:
    path: str  # repo-relative, "/"-separated
    abs_path: Path
    size: int
    blob_id: str  # git sha1 of the blob (of the LFS pointer for LFS files)
    sha256: str
    lfs: bool
    pointer_size: int | None

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.blob_id


@dataclass
class _Revision:
    commit: str
    files: dict[str, _File]


@dataclass
class _Repo:
    repo_id: str
    revisions: dict[str, _Revision] = field(default_factory=dict)  # branch/tag name -> revision
    gated: bool = False
    private: bool = False
    tokens: frozenset[str] = frozenset()  # tokens with access (gated or private)

    def find(self, rev: str) -> _Revision | None:
        if rev in self.revisions:
            return self.revisions[rev]
        for r in self.revisions.values():
            if r.commit == rev:
                return r
        return None


@dataclass
class HubRequest:
    """One request as the server saw it (for assertions); logged before the response is sent."""

    method: str
    path: str
    range: str | None
    authorization: str | None
    status: int = 0


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _commit(repo_id: str, revision: str, files: dict[str, _File]) -> str:
    tree = "".join(f"{f.path}\0{f.blob_id}\n" for f in files.values())
    return hashlib.sha1(f"{repo_id}\0{revision}\0{tree}".encode()).hexdigest()


class LocalHub:
    """A local hub serving repos from folders; see the module docstring."""

    def __init__(self, root: str | os.PathLike | None = None, *, lfs_threshold: int = 1 << 20,
                 lfs_redirect: bool = True, chunk_size: int = 64 * 1024, idle_timeout: float = 5.0,
                 max_lifetime: float = 600.0):
        self.root = Path(root) if root is not None else None
        self.lfs_threshold = lfs_threshold
        self.lfs_redirect = lfs_redirect
        self.chunk_size = chunk_size
        self.idle_timeout = idle_timeout
        self.max_lifetime = max_lifetime
        self.requests: list[HubRequest] = []
        self._repos: dict[str, _Repo] = {}
        self._blobs: dict[str, tuple[str, _File]] = {}  # sha256 -> (repo_id, file)
        self._served: dict[tuple[str, str], int] = defaultdict(int)
        self._failures: dict[tuple[str, str], list[int]] = {}  # -> [nbytes, times left]
        self._rate: float | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        if self.root is not None:
            for org in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
                for repo in sorted(p for p in org.iterdir() if p.is_dir() and not p.name.startswith(".")):
                    self.add_repo(f"{org.name}/{repo.name}", repo)

    # ----------------------------------------------------------------- repos
    def add_repo(self, repo_id: str, folder: str | os.PathLike, *, revision: str = "main",
                 gated: bool | None = None, private: bool | None = None, tokens=None) -> str:
        """Serve ``folder`` as ``repo_id`` at ``revision`` (a branch name); returns its commit sha.

        Files are read when requested, so don't change the folder while it is served.
        ``gated``/``private``/``tokens`` (tokens with access) apply to the whole repo.
        """
        folder = Path(folder)
        files: dict[str, _File] = {}
        for p in sorted(folder.rglob("*")):
            if not p.is_file():
                continue
            rel = p.relative_to(folder).as_posix()
            if any(part.startswith(".") and part != ".gitattributes" for part in rel.split("/")):
                continue
            files[rel] = self._file(rel, p)
        commit = _commit(repo_id, revision, files)
        with self._lock:
            repo = self._repos.setdefault(repo_id, _Repo(repo_id))
            repo.revisions[revision] = _Revision(commit, files)
            if gated is not None:
                repo.gated = gated
            if private is not None:
                repo.private = private
            if tokens is not None:
                repo.tokens = frozenset(tokens)
            for f in files.values():
                if f.lfs:
                    self._blobs[f.sha256] = (repo_id, f)
        return commit

    def add_file(self, repo_id: str, name: str, source: str | os.PathLike, *, revision: str = "main") -> str:
        """List (and serve) the content of ``source`` as ``name`` in ``repo_id`` at ``revision``, taken
        verbatim: any string, e.g. a malicious ``../../x`` or ``/tmp/x`` (fault tests); returns the new commit."""
        f = self._file(name, Path(source))
        with self._lock:
            rev = self._repos[repo_id].revisions[revision]
            rev.files[name] = f
            rev.commit = _commit(repo_id, revision, rev.files)
            if f.lfs:
                self._blobs[f.sha256] = (repo_id, f)
            return rev.commit

    def _file(self, rel: str, p: Path) -> _File:
        data = p.read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        lfs = rel.endswith(LFS_SUFFIXES) or len(data) >= self.lfs_threshold
        pointer = None
        if lfs:
            pointer = (f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\n"
                       f"size {len(data)}\n").encode()
        blob_id = _git_blob_sha1(pointer if lfs else data)
        return _File(rel, p, len(data), blob_id, sha256, lfs, len(pointer) if pointer else None)

    def set_access(self, repo_id: str, *, gated: bool | None = None, private: bool | None = None,
                   tokens=None) -> None:
        with self._lock:
            repo = self._repos[repo_id]
            if gated is not None:
                repo.gated = gated
            if private is not None:
                repo.private = private
            if tokens is not None:
                repo.tokens = frozenset(tokens)

    def commit(self, repo_id: str, revision: str = "main") -> str:
        return self._repos[repo_id].revisions[revision].commit

    # ------------------------------------------------------ faults & counters
    def fail_after(self, repo_id: str, filename: str, nbytes: int, times: int = 1) -> None:
        """Drop the connection after ``nbytes`` body bytes of each of the next ``times`` GET
        responses for this file (counted from the start of each response, whatever its range)."""
        with self._lock:
            self._failures[(repo_id, filename)] = [int(nbytes), int(times)]

    def set_rate(self, bytes_per_second: float | None) -> None:
        """Throttle every response body to about this rate (None: unthrottled)."""
        self._rate = bytes_per_second

    def bytes_served(self, repo_id: str | None = None, filename: str | None = None) -> int:
        """Body bytes sent for one file, one repo, or everything."""
        with self._lock:
            return sum(n for (r, f), n in self._served.items()
                       if (repo_id is None or r == repo_id) and (filename is None or f == filename))

    def files_served(self, repo_id: str) -> dict[str, int]:
        with self._lock:
            return {f: n for (r, f), n in self._served.items() if r == repo_id and n}

    def reset_counters(self) -> None:
        with self._lock:
            self._served.clear()
            self.requests.clear()

    # ------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalHub is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> LocalHub:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler, hub=self)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="LocalHub", daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.max_lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (the port then refuses connections)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -------------------------------------------------------------- helpers
    def _take_failure(self, key: tuple[str, str]) -> int | None:
        with self._lock:
            f = self._failures.get(key)
            if not f or f[1] <= 0:
                return None
            f[1] -= 1
            return f[0]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, hub: LocalHub):
        self.hub = hub
        super().__init__(addr, handler)

    def process_request(self, request, client_address):
        with self.hub._lock:
            self.hub._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.hub._lock:
            self.hub._conns.discard(request)
        super().shutdown_request(request)


class _Dropped(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalHub/1.0"

    @property
    def hub(self) -> LocalHub:
        return self.server.hub  # type: ignore[attr-defined]

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.hub.idle_timeout)

    def log_message(self, format, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    # ------------------------------------------------------------ dispatch
    def send_response(self, code, message=None) -> None:
        self._log.status = code
        super().send_response(code, message)

    def _dispatch(self, head: bool) -> None:
        self._log = HubRequest(self.command, self.path, self.headers.get("Range"), self.headers.get("Authorization"))
        with self.hub._lock:
            self.hub.requests.append(self._log)
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        try:
            if self.hub._stopping.is_set():
                raise _Dropped
            if path.startswith("/api/models/"):
                self._model_info(path[len("/api/models/"):], query, head)
            elif path.startswith("/lfs-cdn/"):
                self._cdn(path[len("/lfs-cdn/"):], head)
            elif "/resolve/" in path:
                self._resolve(path.lstrip("/"), head)
            else:
                self._error(404, None, "Not Found", head)
        except _Dropped:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def _check_repo(self, repo_id: str, head: bool, files_access: bool) -> _Repo | None:
        repo = self.hub._repos.get(repo_id)
        token = self._token()
        if repo is None or (repo.private and token not in repo.tokens):
            status = 401 if repo is not None and token is None else 404
            self._error(status, "RepoNotFound", "Repository not found", head)
            return None
        if files_access and repo.gated and token not in repo.tokens:
            if token is None:
                self._error(401, "GatedRepo", f"Access to model {repo_id} is restricted. You must have access to it "
                                              "and be authenticated to access it. Please log in.", head)
            else:
                self._error(403, "GatedRepo", f"Access to model {repo_id} is restricted and you are not in the "
                                              "authorized list. Visit the model page to ask for access.", head)
            return None
        return repo

    # ------------------------------------------------------------ endpoints
    def _model_info(self, rest: str, query: dict, head: bool) -> None:
        if "/tree/" in rest:
            self._tree(rest, query, head)
            return
        if "/revision/" in rest:
            repo_id, rev = rest.split("/revision/", 1)
        else:
            repo_id, rev = rest.rstrip("/"), "main"
        repo = self._check_repo(repo_id, head, files_access=False)
        if repo is None:
            return
        revision = repo.find(rev)
        if revision is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
            return
        blobs = query.get("blobs", ["false"])[0].lower() in ("1", "true")
        siblings = []
        for f in revision.files.values():
            s: dict = {"rfilename": f.path}
            if blobs:
                s.update(size=f.size, blobId=f.blob_id)
                if f.lfs:
                    s["lfs"] = {"size": f.size, "sha256": f.sha256, "pointerSize": f.pointer_size}
            siblings.append(s)
        body = {
            "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24], "id": repo_id, "modelId": repo_id,
            "author": repo_id.split("/")[0] if "/" in repo_id else None, "sha": revision.commit,
            "lastModified": "2025-01-01T00:00:00.000Z", "createdAt": "2025-01-01T00:00:00.000Z",
            "private": repo.private, "disabled": False, "gated": "manual" if repo.gated else False,
            "downloads": 0, "likes": 0, "tags": ["diffusers"], "library_name": "diffusers",
            "siblings": siblings,
        }
        self._json(200, body, head)

    def _tree(self, rest: str, query: dict, head: bool) -> None:
        repo_id, after = rest.split("/tree/", 1)
        rev, _, sub = after.partition("/")
        repo = self._check_repo(repo_id, head, files_access=False)
        if repo is None:
            return
        revision = repo.find(rev)
        if revision is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
            return
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        prefix = sub.strip("/") + "/" if sub.strip("/") else ""
        entries: dict[str, dict] = {}
        for f in revision.files.values():
            if not f.path.startswith(prefix):
                continue
            rel = f.path[len(prefix):].split("/")
            for i in range(1, len(rel)):  # folders on the way
                if i > 1 and not recursive:
                    break
                d = prefix + "/".join(rel[:i])
                entries.setdefault(d, {"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(),
                                       "size": 0, "path": d})
            if len(rel) > 1 and not recursive:
                continue
            e: dict = {"type": "file", "oid": f.blob_id, "size": f.size, "path": f.path}
            if f.lfs:
                e["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": f.pointer_size}
            entries[f.path] = e
        if prefix and not entries:
            self._error(404, "EntryNotFound", f"{sub} does not exist on \"{rev}\"", head)
            return
        self._json(200, [entries[k] for k in sorted(entries)], head)

    def _resolve(self, path: str, head: bool) -> None:
        before, after = path.split("/resolve/", 1)
        repo_id = before
        if "/" not in after:
            self._error(404, "EntryNotFound", "Entry not found", head)
            return
        rev, filename = after.split("/", 1)
        repo = self._check_repo(repo_id, head, files_access=True)
        if repo is None:
            return
        revision = repo.find(rev)
        if revision is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
            return
        f = revision.files.get(filename)
        if f is None:
            self._error(404, "EntryNotFound", f"{filename} does not exist on \"{rev}\"", head,
                        extra={"X-Repo-Commit": revision.commit})
            return
        common = {"X-Repo-Commit": revision.commit}
        if f.lfs:
            common.update({"X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(f.size)})
        if f.lfs and self.hub.lfs_redirect:
            location = (f"http://localhost:{self.hub.port}/lfs-cdn/{f.sha256}"
                        f"?filename={quote(filename.split('/')[-1])}")
            body = b"Found. Redirecting to " + location.encode()
            self.send_response(302)
            for k, v in {**common, "ETag": f'"{f.blob_id}"', "Location": location}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return
        self._content(repo_id, f, head, {**common, "ETag": f'"{f.etag}"'})

    def _cdn(self, rest: str, head: bool) -> None:
        entry = self.hub._blobs.get(rest.split("?")[0].strip("/"))
        if entry is None:
            self._error(404, None, "NoSuchKey", head)
            return
        repo_id, f = entry
        self._content(repo_id, f, head, {"ETag": f'"{f.sha256}"'})

    # -------------------------------------------------------------- writing
    def _content(self, repo_id: str, f: _File, head: bool, headers: dict[str, str]) -> None:
        start, end = 0, f.size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng:
            m = _RANGE_RE.match(rng.strip())
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = min(int(m.group(2)), f.size - 1) if m.group(2) else f.size - 1
                else:  # suffix range
                    start = max(f.size - int(m.group(2)), 0)
                if start >= f.size or start > end:
                    self._error(416, None, "Range Not Satisfiable", head,
                                extra={"Content-Range": f"bytes */{f.size}"})
                    return
                status = 206
        length = end - start + 1 if f.size else 0
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{f.size}")
        self.end_headers()
        if head or length == 0:
            return
        key = (repo_id, f.path)
        drop_after = self.hub._take_failure(key)
        sent = 0
        with open(f.abs_path, "rb") as fh:
            fh.seek(start)
            while sent < length:
                if self.hub._stopping.is_set():
                    raise _Dropped
                n = min(self.hub.chunk_size, length - sent)
                if drop_after is not None:
                    n = min(n, drop_after - sent)
                    if n <= 0:
                        self.wfile.flush()
                        raise _Dropped
                chunk = fh.read(n)
                with self.hub._lock:  # counted before the client can see them
                    self.hub._served[key] += len(chunk)
                self.wfile.write(chunk)
                sent += len(chunk)
                rate = self.hub._rate
                if rate:
                    time.sleep(len(chunk) / rate)

    def _json(self, status: int, body, head: bool, extra: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _error(self, status: int, code: str | None, message: str, head: bool, extra: dict | None = None) -> None:
        headers = dict(extra or {})
        if code:
            headers["X-Error-Code"] = code
        headers["X-Error-Message"] = message
        self._json(status, {"error": message}, head, headers)

"""The inference process on another computer, over the user's own SSH (Qt-free, torch-free).

:class:`RemoteEngine` turns the Settings' "Engine: remote host" fields into the command the studio starts
instead of a local Python::

    ssh -T -e none -o BatchMode=yes -o ConnectTimeout=15 -o ServerAliveInterval=5 -o ServerAliveCountMax=3 \\
        -p PORT [options] USER@HOST -- '/path/to/python' -m fastvideo.serve --heartbeat 1 --nice 5

* the user's ssh, config and keys (or agent); ``BatchMode=yes``: ssh never prompts for a password or a
  passphrase, and the studio never reads one -- a host that needs one fails at once with ssh's message;
  an unknown host key fails the same way (connect once in a terminal to accept it);
* stdin/stdout carry the framed protocol as they do locally (``-T``: no terminal, ``-e none``: no escape
  character, so no byte sequence in the stream is ever interpreted by ssh);
* a dropped connection: ssh's keep-alives end it within ~15 s (exit 255), and the remote process sees its
  stdin close and shuts down.

:class:`FileReceiver` writes a finished video that the remote process streams back (``file_chunk`` /
``file_end`` events, docs/protocol.md) into the local outputs folder: a temp file, the checksum checked,
then renamed to a name of our own making (the remote name is only a hint: sanitised, never a path).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SSH_BASE_OPTIONS = ("-T", "-e", "none", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15",
                    "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3")
_HOST = re.compile(r"^[A-Za-z0-9_.:\-\[\]%]+$")
_USER = re.compile(r"^[A-Za-z0-9_.\-]+$")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.\- ]+")


@dataclass(frozen=True)
class RemoteEngine:
    host: str
    user: str = ""
    port: int = 22
    python: str = "python3"
    outputs: str = "~/fastvideo-outputs"  # on the remote host (the process expands ~)
    ssh_options: str = ""  # extra ssh options, split like a shell would: "-i ~/.ssh/gpu_key -J bastion"

    def problem(self) -> str | None:
        """What is wrong with these settings (None: usable), said so a user can fix it."""
        if not self.host:
            return "Enter the remote host (a name or an address)"
        if self.host.startswith("-") or not _HOST.match(self.host):
            return f"Not a host name or address: {self.host!r}"
        if self.user and (self.user.startswith("-") or not _USER.match(self.user)):
            return f"Not a user name: {self.user!r}"
        if not 1 <= int(self.port) <= 65535:
            return f"The SSH port must be 1-65535, got {self.port}"
        if not self.python.strip():
            return "Enter the remote Python (the one fastvideo is installed in), e.g. /opt/fastvideo/.venv/bin/python"
        if not self.outputs.strip():
            return "Enter the folder on the remote host where videos are written before they are copied back"
        try:
            shlex.split(self.ssh_options)
        except ValueError as exc:
            return f"SSH options: {exc}"
        return None

    @property
    def target(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def command(self, serve_args: list[str], ssh: str | None = None) -> tuple[str, list[str]]:
        """(program, arguments) that run ``python -m fastvideo.serve *serve_args`` on the host."""
        problem = self.problem()
        if problem:
            raise ValueError(problem)
        remote = shlex.join([self.python.strip(), "-m", "fastvideo.serve", *serve_args])
        args = [*SSH_BASE_OPTIONS, "-p", str(int(self.port)), *shlex.split(self.ssh_options), self.target, "--",
                remote]
        return ssh or shutil.which("ssh") or "ssh", args


class TransferError(RuntimeError):
    """A streamed file did not arrive whole (a gap, too many bytes, a bad checksum)."""


@dataclass
class _Incoming:
    tmp: Path
    fh: object
    name: str
    size: int
    received: int = 0
    digest: object = field(default_factory=hashlib.sha256)


class FileReceiver:
    """Receives streamed files, one per job, into local folders."""

    def __init__(self):
        self._incoming: dict[str, _Incoming] = {}

    def chunk(self, job_id: str, header: dict, payload: bytes, dest_dir: str | os.PathLike) -> None:
        inc = self._incoming.get(job_id)
        offset, size = int(header.get("offset", -1)), int(header.get("size", -1))
        if inc is None:
            if offset != 0:
                raise TransferError(f"the video's first piece starts at byte {offset}, not 0")
            dest = Path(dest_dir).expanduser()
            dest.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".incoming-", suffix=".part", dir=dest)
            inc = _Incoming(Path(tmp), os.fdopen(fd, "wb"), safe_video_name(str(header.get("name") or "")), size)
            self._incoming[job_id] = inc
        if offset != inc.received:
            self.abort(job_id)
            raise TransferError(f"the video arrived with a gap (a piece at byte {offset}, expected {inc.received})")
        if inc.received + len(payload) > inc.size:
            self.abort(job_id)
            raise TransferError(f"the video is larger than the {inc.size} bytes announced")
        inc.fh.write(payload)
        inc.digest.update(payload)
        inc.received += len(payload)

    def finish(self, job_id: str, header: dict) -> Path:
        """Check the size and sha256 of ``file_end`` and give the file its final name; returns its path."""
        inc = self._incoming.pop(job_id, None)
        if inc is None:
            raise TransferError("the video's end arrived without its contents")
        inc.fh.close()
        size, sha = int(header.get("size", -1)), str(header.get("sha256") or "")
        if inc.received != size or inc.digest.hexdigest() != sha:
            inc.tmp.unlink(missing_ok=True)
            raise TransferError(f"the video did not arrive intact ({inc.received} of {size} bytes, sha256 "
                                f"{inc.digest.hexdigest()[:12]} vs {sha[:12]})")
        return _claim(inc.tmp, inc.name)

    def abort(self, job_id: str) -> None:
        inc = self._incoming.pop(job_id, None)
        if inc is not None:
            try:
                inc.fh.close()
            finally:
                inc.tmp.unlink(missing_ok=True)

    def abort_all(self) -> None:
        for job_id in list(self._incoming):
            self.abort(job_id)

    def receiving(self, job_id: str) -> bool:
        return job_id in self._incoming


def safe_video_name(name: str) -> str:
    """A local file name from a remote one: its last component, only plain characters, ending in .mp4."""
    base = _SAFE_NAME.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")
    stem = base[:-4] if base.lower().endswith(".mp4") else base
    return (stem[:120] or "video") + ".mp4"


def _claim(tmp: Path, name: str) -> Path:
    """Rename ``tmp`` to ``name`` in its folder, or ``stem_1.mp4``... if taken (claimed with O_EXCL)."""
    stem = name[:-4]
    for i in range(10000):
        final = tmp.parent / (name if i == 0 else f"{stem}_{i}.mp4")
        try:
            os.close(os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            continue
        os.replace(tmp, final)
        return final
    tmp.unlink(missing_ok=True)
    raise TransferError(f"no free file name for {name} in {tmp.parent}")

"""Starts and owns the inference process (``python -m fastvideo.serve``).

A :class:`WorkerClient` runs the worker through ``QProcess`` (so everything is
driven by the GUI event loop: no threads, no locks), decodes the framed events
from its stdout, and emits Qt signals.  It notices a crash (the process exits
while it was expected to run) and a hang (no heartbeat for ``hang_timeout``
seconds, then the process is killed) and reports both with a reason.  The next
``ensure_started()`` starts a fresh worker.
"""

from __future__ import annotations

import collections
import itertools
import os
import signal
import sys
import time
from typing import Any

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from fastvideo.serve import protocol as P

_ERROR_MARKERS = ("Traceback", "Error", "error:", "Fatal", "Segmentation fault", "Aborted", "out of memory",
                  "Killed", "core dumped", "CUDA")


def crash_detail(lines: list[str], keep: int = 8) -> str:
    """The part of the worker's last output that explains a crash ('' if nothing does)."""
    lines = [line for line in lines if line.strip()]
    first = next((i for i, line in enumerate(lines) if any(m in line for m in _ERROR_MARKERS)), None)
    if first is None:
        return ""
    return "\n".join(lines[first:][-keep:])


class WorkerClient(QObject):
    """One inference process at a time; restartable after a crash."""

    #: every event except ``preview`` and ``heartbeat``: the header dict
    event = Signal(dict)
    #: job_id, frames (uint8 ndarray [T, h, w, 3]), step, total, fps
    preview = Signal(str, object, int, int, int)
    #: "stopped" | "starting" | "running" | "stopping"
    state_changed = Signal(str)
    #: the worker died or hung while it was supposed to run: the reason in words
    crashed = Signal(str)
    #: a log line of the worker: {"level", "source", "message", ...}
    log = Signal(dict)
    #: a piece of a finished video streamed from a remote engine: the ``file_chunk`` header, its bytes
    file_chunk = Signal(dict, bytes)

    def __init__(self, parent: QObject | None = None, *, python: str | None = None,
                 extra_args: list[str] | None = None, env: dict[str, str | None] | None = None,
                 heartbeat_interval: float = 1.0, hang_timeout: float = 60.0, start_timeout: float = 120.0,
                 nice: int = 5, remote=None):
        super().__init__(parent)
        #: an :class:`app.services.remote.RemoteEngine`: start the process on that host through ssh (None: here)
        self.remote = remote
        self.python = python or sys.executable
        self.extra_args = list(extra_args or [])
        self.extra_env = dict(env or {})
        self.heartbeat_interval = heartbeat_interval
        self.hang_timeout = hang_timeout
        self.start_timeout = start_timeout
        self.nice = nice  # the worker runs at a lower CPU priority so the window stays responsive
        self.proc: QProcess | None = None
        self.state = "stopped"
        self.hello: dict[str, Any] | None = None
        self.last_heartbeat: dict[str, Any] | None = None
        self.last_seen = 0.0
        self.started_at = 0.0
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=30)
        self.previews_dropped = 0
        self.starts = 0
        self._ids = itertools.count(1)
        self._decoder = P.FrameDecoder()
        self._stderr_buf = b""
        self._expect_exit = False
        self._failure: str | None = None
        self._pending_preview: tuple | None = None
        self._watchdog = QTimer(self)
        self._watchdog.setInterval(500)
        self._watchdog.timeout.connect(self._check_alive)

    # ------------------------------------------------------------------ lifecycle
    def is_running(self) -> bool:
        return self.proc is not None and self.state in ("starting", "running")

    def pid(self) -> int | None:
        if self.proc is None:
            return None
        pid = int(self.proc.processId())
        return pid or None

    def ensure_started(self) -> None:
        if not self.is_running():
            self.start()

    def start(self) -> None:
        if self.is_running():
            return
        self._discard_process()
        self._decoder = P.FrameDecoder()
        self._stderr_buf = b""
        self.stderr_tail.clear()
        self.hello = None
        self.last_heartbeat = None
        self._expect_exit = False
        self._failure = None
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        env.insert("PYTHONIOENCODING", "utf-8")
        for k, v in self.extra_env.items():
            if v is None:  # None: take the variable out (a frozen studio's library paths)
                env.remove(k)
            else:
                env.insert(k, v)
        proc.setProcessEnvironment(env)
        serve_args = ["--heartbeat", str(self.heartbeat_interval), "--nice", str(self.nice), *self.extra_args]
        if self.remote is not None:
            try:
                program, args = self.remote.command(serve_args)
            except ValueError as exc:
                proc.deleteLater()
                reason = f"the remote engine is not set up: {exc} (Settings → Engine)"
                # Reported once the caller has registered its request (send() returns its id first).
                QTimer.singleShot(0, lambda: self.crashed.emit(reason))
                return
        else:
            program, args = self.python, ["-m", "fastvideo.serve", *serve_args]
        proc.setProgram(program)
        proc.setArguments(args)
        proc.readyReadStandardOutput.connect(self._on_stdout)
        proc.readyReadStandardError.connect(self._on_stderr)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_error)
        self.proc = proc
        self.started_at = self.last_seen = time.monotonic()
        self.starts += 1
        self._set_state("starting")
        proc.start()
        self._watchdog.start()

    def send(self, type_: str, payload: bytes = b"", **fields: Any) -> str:
        """Send a request (``payload``: raw bytes, for ``put_file``); returns its id (events answering it
        carry ``reply_to``)."""
        self.ensure_started()
        rid = f"r{next(self._ids)}"
        if self.proc is None:
            return rid  # could not start: ``crashed`` says why and fails the request
        self.proc.write(P.request(type_, rid, payload, **fields))
        return rid

    def shutdown(self, timeout: float = 10.0) -> None:
        """Ask the worker to exit, wait up to ``timeout`` s, then kill it (blocking)."""
        self._watchdog.stop()
        proc = self.proc
        if proc is None or proc.state() == QProcess.ProcessState.NotRunning:
            self._discard_process()
            self._set_state("stopped")
            return
        self._expect_exit = True
        self._set_state("stopping")
        try:
            proc.write(P.request(P.REQ_SHUTDOWN, "shutdown"))
            proc.waitForBytesWritten(1000)
            proc.closeWriteChannel()
        except RuntimeError:
            pass
        if not proc.waitForFinished(int(timeout * 1000)):
            self._kill_process(proc)
            proc.waitForFinished(3000)
        self._discard_process()
        self._set_state("stopped")

    def kill(self, reason: str = "killed by the studio") -> None:
        """End the worker now (used for a hang); reported through ``crashed``."""
        if self.proc is None:
            return
        self._failure = reason
        self._kill_process(self.proc)

    # ------------------------------------------------------------------ internals
    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    def _kill_process(self, proc: QProcess) -> None:
        pid = int(proc.processId())
        if pid and os.name == "posix":
            try:  # the worker leads its own process group (GPU helpers included)
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
                    return
            except (ProcessLookupError, PermissionError, OSError):
                pass
        proc.kill()

    def _discard_process(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig in (proc.readyReadStandardOutput, proc.readyReadStandardError, proc.finished, proc.errorOccurred):
            try:
                sig.disconnect()
            except (RuntimeError, TypeError):
                pass
        if proc.state() != QProcess.ProcessState.NotRunning:
            self._kill_process(proc)
            proc.waitForFinished(3000)
        proc.deleteLater()

    def _on_stdout(self) -> None:
        proc = self.sender()
        if proc is not self.proc or proc is None:
            return
        data = bytes(proc.readAllStandardOutput())
        if not data:
            return
        self.last_seen = time.monotonic()
        messages = self._decoder.feed(data)
        while self._decoder.errors:
            self.log.emit({"level": "warning", "source": "studio",
                           "message": "worker channel: " + self._decoder.errors.pop(0)})
        for msg in messages:
            self._dispatch(msg)

    def _dispatch(self, msg: P.Message) -> None:
        t = msg.type
        if t == P.EV_HEARTBEAT:
            self.last_heartbeat = msg.header
            return
        if t == P.EV_FILE_CHUNK:
            self.file_chunk.emit(msg.header, msg.payload)
            return
        if t == P.EV_PREVIEW:
            try:
                frames = P.decode_preview(msg)
            except P.ProtocolError as exc:
                self.log.emit({"level": "warning", "source": "studio", "message": f"bad preview: {exc}"})
                return
            if self._pending_preview is not None:
                self.previews_dropped += 1  # the newest replaces the one not yet shown
            else:
                QTimer.singleShot(0, self._deliver_preview)
            self._pending_preview = (str(msg.get("job_id")), frames, int(msg.get("step") or 0),
                                     int(msg.get("total") or 0), int(msg.get("fps") or 0))
            return
        if t in (P.EV_RESULT, P.EV_CANCELLED, P.EV_ERROR, P.EV_STARTED):
            self._deliver_preview()  # a job's last preview is shown before the job ends (order kept)
        if t == P.EV_HELLO:
            self.hello = msg.header
            version = msg.get("protocol_version")
            if version != P.PROTOCOL_VERSION:
                self._failure = (f"the inference process speaks protocol version {version}, "
                                 f"the studio needs {P.PROTOCOL_VERSION}: reinstall fastvideo")
                self._kill_process(self.proc)
                return
            self._set_state("running")
        elif t == P.EV_LOG:
            self.log.emit(msg.header)
            return
        self.event.emit(msg.header)

    def _deliver_preview(self) -> None:
        item, self._pending_preview = self._pending_preview, None
        if item is not None:
            self.preview.emit(*item)

    def _on_stderr(self) -> None:
        proc = self.sender()
        if proc is None or proc is not self.proc:
            return
        self._stderr_buf += bytes(proc.readAllStandardError())
        *lines, self._stderr_buf = self._stderr_buf.split(b"\n")
        for raw in lines:
            text = raw.decode("utf-8", errors="replace").rstrip()
            if text:
                self.stderr_tail.append(text)

    def _check_alive(self) -> None:
        if self.proc is None or self._expect_exit:
            return
        now = time.monotonic()
        if self.state == "starting" and now - self.started_at > self.start_timeout:
            self.kill(f"the inference process did not start within {self.start_timeout:.0f} s")
        elif self.state == "running" and now - self.last_seen > self.hang_timeout:
            self.kill(f"the inference process stopped responding (no heartbeat for {now - self.last_seen:.0f} s) "
                      "and was stopped")

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            proc = self.proc
            what = f"ssh to {self.remote.target}" if self.remote is not None else self.python
            reason = f"could not start the inference process ({what}): " + (
                proc.errorString() if proc is not None else str(error))
            self._watchdog.stop()
            self._discard_process()
            self._set_state("stopped")
            self.crashed.emit(reason)

    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        proc = self.sender()
        if proc is not self.proc:
            return
        # Drain what is left (a last error event may explain the exit).
        self._on_stdout_from(proc)
        self._on_stderr()
        if self._stderr_buf.strip():
            self.stderr_tail.append(self._stderr_buf.decode("utf-8", errors="replace").rstrip())
            self._stderr_buf = b""
        self._watchdog.stop()
        expected = self._expect_exit
        self._discard_process()
        self._set_state("stopped")
        if expected:
            return
        if self._failure:
            reason = self._failure
        elif self.remote is not None and exit_status == QProcess.ExitStatus.NormalExit:
            target = self.remote.target
            if exit_code == 255:  # ssh's own failures: refused, unknown host key, no key accepted, dropped
                reason = f"the connection to {target} failed or was lost (ssh exit 255)"
            elif exit_code == 127:  # the remote shell did not find the program
                reason = (f"the remote Python {self.remote.python!r} was not found on {target} "
                          "(Settings → Engine → Remote Python)")
            else:
                reason = f"the inference process on {target} exited unexpectedly with code {exit_code}"
            tail = [line for line in self.stderr_tail if line.strip()][-3:]
            self.crashed.emit(reason + (":\n" + "\n".join(tail) if tail else ""))
            return
        elif exit_status == QProcess.ExitStatus.CrashExit:
            reason = "the inference process crashed"
        else:
            reason = f"the inference process exited unexpectedly with code {exit_code}"
        if not self._failure:
            detail = crash_detail(list(self.stderr_tail))
            if detail:
                reason += ":\n" + detail
        self.crashed.emit(reason)

    def _on_stdout_from(self, proc: QProcess) -> None:
        data = bytes(proc.readAllStandardOutput())
        if data:
            for msg in self._decoder.feed(data):
                self._dispatch(msg)
        self._deliver_preview()

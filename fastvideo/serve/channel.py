"""The inference process's channel to the studio: the real stdout, kept for framed events only.

* :func:`capture_stdio` takes the original stdin/stdout for the protocol and points fd 1 and fd 2 at a
  pipe, so whatever libraries print (Python, C, subprocesses) never corrupts the channel;
  :func:`pump_output` forwards those lines as ``log`` events (and to the real stderr);
* :class:`Outbox` is the only writer of the channel (a thread of its own; previews coalesce);
* :class:`LogHandler` turns ``logging`` records into ``log`` events;
* :class:`Heartbeat` says the process is alive every few seconds;
* :class:`RequestReader` decodes framed requests from stdin and hands them on;
* :func:`open_channel` sets all of this up for :func:`fastvideo.serve.host.main`.

The engine side (what the requests do) is :mod:`fastvideo.serve.host`.
"""

from __future__ import annotations

import collections
import faulthandler
import io
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastvideo.serve import protocol as P


class Outbox:
    """Serialises events onto the channel fd from a dedicated writer thread.

    ``send_preview`` replaces a preview that is still waiting to be written, so a
    slow reader always gets the newest preview and never a backlog.
    """

    def __init__(self, fd: int, on_broken: Callable[[], None]):
        self._fd = fd
        self._on_broken = on_broken
        self._items: collections.deque[list] = collections.deque()
        self._cond = threading.Condition()
        self._pending_preview: list | None = None
        self._closed = False
        self.previews_replaced = 0
        self._thread = threading.Thread(target=self._run, name="fv-writer", daemon=True)
        self._thread.start()

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        try:
            data = P.encode(header, payload)
        except (P.ProtocolError, TypeError, ValueError) as exc:
            data = P.encode({"type": P.EV_LOG, "level": "error", "source": "host",
                             "message": f"could not encode {header.get('type')!r} event: {exc}"})
        self._put(data, preview=False)

    def send_preview(self, frames, **fields: Any) -> None:
        self._put(P.encode_preview(frames, **fields), preview=True)

    def _put(self, data: bytes, preview: bool) -> None:
        with self._cond:
            if self._closed:
                return
            if preview and self._pending_preview is not None:
                self._pending_preview[0] = data  # newest replaces the one not yet written
                self.previews_replaced += 1
            else:
                item = [data, preview]
                self._items.append(item)
                if preview:
                    self._pending_preview = item
            self._cond.notify()

    def flush(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._items and time.monotonic() < deadline:
                self._cond.wait(0.05)
            return not self._items

    def close(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closed:
                    self._cond.wait()
                if not self._items:
                    return
                item = self._items.popleft()
                if item is self._pending_preview:
                    self._pending_preview = None
                self._cond.notify_all()
            view = memoryview(item[0])
            try:
                while view:
                    n = os.write(self._fd, view)
                    view = view[n:]
            except OSError:
                # The studio went away: nothing more can be said to anyone.
                self._on_broken()
                return


class LogHandler(logging.Handler):
    """Forwards log records as ``log`` events (and to the real stderr)."""

    def __init__(self, outbox: Outbox, tee: io.TextIOBase | None):
        super().__init__(logging.INFO)
        self.outbox = outbox
        self.tee = tee
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._local, "busy", False):
            return
        self._local.busy = True
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            self.outbox.send({"type": P.EV_LOG, "level": record.levelname.lower(), "source": "logging",
                              "logger": record.name, "message": message, "t": record.created})
            if self.tee is not None:
                try:
                    self.tee.write(self.format(record) + "\n")
                    self.tee.flush()
                except (OSError, ValueError):
                    pass
        except Exception:  # a log record must never break the worker
            pass
        finally:
            self._local.busy = False


def capture_stdio() -> tuple[int, int, io.TextIOBase, int]:
    """Take the channel fds and point fd 1 and fd 2 at a pipe we read ourselves.

    Returns ``(in_fd, out_fd, real_stderr, output_fd)``; ``output_fd`` is the read
    end of the pipe that fd 1 and fd 2 now write to.  After this, ``print()``, C-level
    writes to stdout/stderr and subprocesses inheriting them all land in the pipe
    (forwarded as ``log`` events by :func:`pump_output`), never in the channel.
    """
    out_fd = os.dup(1)
    in_fd = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    err_fd = os.dup(2)
    real_stderr = io.TextIOWrapper(io.FileIO(err_fd, "w", closefd=True), encoding="utf-8",
                                   errors="replace", line_buffering=True)
    r, w = os.pipe()
    os.dup2(w, 1)
    os.dup2(w, 2)
    os.close(w)
    for fd in (out_fd, in_fd):
        try:
            os.set_inheritable(fd, False)
        except OSError:
            pass
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="replace",
                                  line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="replace",
                                  line_buffering=True)
    return in_fd, out_fd, real_stderr, r


def pump_output(fd: int, outbox: Outbox, tee: io.TextIOBase | None) -> None:
    """Read printed output line by line and forward it as ``log`` events."""
    pending = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if len(pending) > 65536:  # a very long line without newline
            lines.append(pending)
            pending = b""
        for raw in lines:
            forward_line(raw, outbox, tee)
    if pending:
        forward_line(pending, outbox, tee)


def forward_line(raw: bytes, outbox: Outbox, tee: io.TextIOBase | None) -> None:
    text = raw.decode("utf-8", errors="replace").rstrip("\r")
    if not text.strip():
        return
    level = "warning" if ("warn" in text.lower() or "error" in text.lower() or text.startswith("Traceback")) else "info"
    outbox.send({"type": P.EV_LOG, "level": level, "source": "output", "message": text, "t": time.time()})
    if tee is not None:
        try:
            tee.write(text + "\n")
        except (OSError, ValueError):
            pass


class Heartbeat:
    """A ``heartbeat`` event every ``interval`` seconds until ``stop`` is set (none while ``muted``).

    ``status()`` gives the event's other fields (busy, job, stage, ...).
    """

    def __init__(self, outbox: Outbox, interval: float, stop: threading.Event, muted: threading.Event,
                 status: Callable[[], dict[str, Any]]):
        self.outbox = outbox
        self.interval = interval
        self.stop = stop
        self.muted = muted
        self.status = status
        self._thread = threading.Thread(target=self._run, name="fv-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        seq = 0
        while not self.stop.wait(self.interval):
            if self.muted.is_set():
                continue
            seq += 1
            self.outbox.send({"type": P.EV_HEARTBEAT, "seq": seq, "t": time.time(), **self.status()})


class RequestReader:
    """Reads framed requests from ``in_fd`` (a thread of its own) and passes each to ``handle``.

    Ends when stdin closes or ``stop`` is set; ``reason`` says why (``"stdin closed"``,
    ``"shutdown requested"``), ``done`` is set then.  A request ``handle`` raises on is answered
    with an ``error`` event (fields from ``error_fields(exc)``); undecodable bytes with a warning.
    """

    def __init__(self, in_fd: int, outbox: Outbox, handle: Callable[[P.Message], None], stop: threading.Event,
                 error_fields: Callable[[BaseException], dict[str, Any]]):
        self.in_fd = in_fd
        self.outbox = outbox
        self.handle = handle
        self.stop = stop
        self.error_fields = error_fields
        self.reason = "eof"
        self.done = threading.Event()
        self._decoder = P.FrameDecoder()

    def start(self) -> None:
        threading.Thread(target=self._run, name="fv-requests", daemon=True).start()

    def _run(self) -> None:
        decoder = self._decoder
        while not self.stop.is_set():
            try:
                data = os.read(self.in_fd, 65536)
            except OSError:
                data = b""
            if not data:
                self.reason = "stdin closed"
                break
            for msg in decoder.feed(data):
                try:
                    self.handle(msg)
                except Exception as exc:
                    self.outbox.send({"type": P.EV_ERROR, "reply_to": msg.get("id"), **self.error_fields(exc)})
                if msg.type == P.REQ_SHUTDOWN:
                    self.reason = "shutdown requested"
            while decoder.errors:
                self.outbox.send({"type": P.EV_LOG, "level": "warning", "source": "host",
                                  "message": "request stream: " + decoder.errors.pop(0)})
        self.done.set()


@dataclass
class Channel:
    """The set-up channel: requests come from ``in_fd``, events go through ``outbox``."""

    in_fd: int
    outbox: Outbox
    real_stderr: io.TextIOBase
    #: set when writing the channel failed: the studio went away
    dead: threading.Event


def open_channel() -> Channel:
    """Capture stdio, start the writer and the output pump, route ``logging`` into ``log`` events."""
    in_fd, out_fd, real_stderr, output_fd = capture_stdio()
    faulthandler.enable(file=real_stderr)
    dead = threading.Event()
    outbox = Outbox(out_fd, dead.set)
    threading.Thread(target=pump_output, args=(output_fd, outbox, real_stderr), name="fv-output",
                     daemon=True).start()
    root = logging.getLogger()
    root.handlers[:] = [LogHandler(outbox, real_stderr)]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    return Channel(in_fd, outbox, real_stderr, dead)


def hard_exit(code: int) -> None:
    """Leave now (flushing what can be flushed): threads may sit in native code (CUDA, a hung library)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)

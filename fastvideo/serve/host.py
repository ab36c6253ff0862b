"""The inference process: ``python -m fastvideo.serve``.

Owns one :class:`fastvideo.VideoGenerator`, keeps it loaded between jobs, and
speaks the framed protocol of :mod:`fastvideo.serve.protocol` (requests on
stdin, events on the original stdout).  See ``docs/protocol.md``.

Threads:

* main thread: reads requests, answers ``ping``/``cancel``/``shutdown`` at once,
  ``describe`` in a short-lived thread of its own, and queues the long ones
  (load, generate, parity, inspect);
* executor: runs the queued requests one at a time (the GPU work);
* heartbeat: a ``heartbeat`` event every ``--heartbeat`` seconds;
* writer: the only thread that writes the channel (previews coalesce there);
* output reader: turns whatever is printed to fd 1 / fd 2 into ``log`` events.
"""

from __future__ import annotations

import argparse
import collections
import faulthandler
import importlib
import io
import logging
import os
import queue
import sys
import threading
import time
import traceback
from typing import Any, Callable

from fastvideo.serve import protocol as P

log = logging.getLogger("fastvideo.serve")


# --------------------------------------------------------------------------- channel


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


class _LogHandler(logging.Handler):
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
    (forwarded as ``log`` events by :func:`_pump_output`), never in the channel.
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


def _pump_output(fd: int, outbox: Outbox, tee: io.TextIOBase | None) -> None:
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
            _forward_line(raw, outbox, tee)
    if pending:
        _forward_line(pending, outbox, tee)


def _forward_line(raw: bytes, outbox: Outbox, tee: io.TextIOBase | None) -> None:
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


# --------------------------------------------------------------------------- engine


class Engine:
    """The VideoGenerator API the host drives (``fastvideo`` or a test double)."""

    def __init__(self, module_name: str = "fastvideo"):
        self.module_name = module_name
        self._mod = None

    @property
    def mod(self):
        if self._mod is None:
            self._mod = importlib.import_module(self.module_name)
        return self._mod

    def attr(self, name: str):
        return getattr(self.mod, name)

    def gpu_count(self) -> int | None:
        """CUDA devices visible to this process (None: unknown)."""
        fn = getattr(self.mod, "gpu_count", None)
        if fn is not None:
            return fn()
        try:
            import torch

            return int(torch.cuda.device_count())
        except Exception:
            return None

    def model_tasks(self, model_path: str) -> list[str]:
        fn = getattr(self.mod, "model_tasks", None)
        if fn is not None:
            return list(fn(model_path))
        try:
            from fastvideo.configs.registry import resolve_model

            return list(resolve_model(model_path).tasks)
        except Exception:
            return []


def _error_fields(exc: BaseException) -> dict[str, Any]:
    fields: dict[str, Any] = {"error_type": type(exc).__name__, "message": str(exc) or type(exc).__name__}
    field = getattr(exc, "field", None)
    if field:
        fields["field"] = field
    return fields


class Host:
    def __init__(self, outbox: Outbox, engine: Engine, heartbeat: float = 1.0, test_hooks: bool = False):
        self.outbox = outbox
        self.engine = engine
        self.heartbeat_interval = heartbeat
        self.test_hooks = test_hooks
        self.generator = None
        self.loaded: dict[str, Any] | None = None  # model_path, num_gpus, options
        self.jobs: queue.Queue = queue.Queue()
        self.current: dict[str, Any] | None = None  # the request being executed
        self.cancel_event = threading.Event()
        self.cancelled_ids: set[str] = set()
        self.stage: str | None = None
        self.stop = threading.Event()
        self.hung = threading.Event()  # test hook: stop heartbeats
        self.started = time.time()
        self._lock = threading.Lock()
        self._executor = threading.Thread(target=self._execute_loop, name="fv-executor", daemon=True)
        self._heart = threading.Thread(target=self._heartbeat_loop, name="fv-heartbeat", daemon=True)

    # -- lifecycle
    def start(self) -> None:
        import platform

        self.outbox.send({
            "type": P.EV_HELLO, "protocol_version": P.PROTOCOL_VERSION, "pid": os.getpid(),
            "python": platform.python_version(), "platform": sys.platform,
            "fastvideo_version": _fastvideo_version(), "heartbeat_interval": self.heartbeat_interval,
            "engine": self.engine.module_name,
        })
        self._executor.start()
        self._heart.start()

    def _heartbeat_loop(self) -> None:
        seq = 0
        while not self.stop.wait(self.heartbeat_interval):
            if self.hung.is_set():
                continue
            seq += 1
            cur = self.current
            self.outbox.send({
                "type": P.EV_HEARTBEAT, "seq": seq, "t": time.time(), "uptime": time.time() - self.started,
                "busy": cur is not None, "job_id": cur.get("job_id") if cur else None,
                "request": cur.get("type") if cur else None, "stage": self.stage,
                "model_path": (self.loaded or {}).get("model_path"),
            })

    # -- request dispatch (main thread)
    def handle(self, msg: P.Message) -> None:
        t = msg.type
        rid = msg.get("id")
        if t == P.REQ_PING:
            self.outbox.send({"type": P.EV_PONG, "reply_to": rid, "t": time.time()})
        elif t == P.REQ_CANCEL:
            self._cancel(msg.get("job_id"))
        elif t == P.REQ_SHUTDOWN:
            self.stop.set()
        elif t == P.REQ_DEBUG and self.test_hooks:
            self._debug(msg)
        elif t == P.REQ_DESCRIBE:
            # Cheap (configs only, no weights): answered beside a running job, not after it.
            threading.Thread(target=self._describe_now, args=(msg,), name="fv-describe", daemon=True).start()
        elif t in (P.REQ_LOAD_MODEL, P.REQ_GENERATE, P.REQ_RUN_PARITY, P.REQ_INSPECT):
            if t == P.REQ_GENERATE and not msg.get("job_id"):
                self.outbox.send({"type": P.EV_ERROR, "reply_to": rid, "error_type": "ProtocolError",
                                  "message": "generate needs a job_id"})
                return
            self.jobs.put(msg)
        else:
            self.outbox.send({"type": P.EV_ERROR, "reply_to": rid, "error_type": "ProtocolError",
                              "message": f"unknown request type {t!r}; known: {sorted(P.REQUEST_TYPES - {P.REQ_DEBUG})}"})

    def _cancel(self, job_id: str | None) -> None:
        cur = self.current
        if cur is not None and cur.get("type") == P.REQ_GENERATE and (job_id is None or cur.get("job_id") == job_id):
            self.cancel_event.set()
        elif job_id:
            # Not started yet: it is skipped (and reported cancelled) when its turn comes.
            self.cancelled_ids.add(job_id)

    def _debug(self, msg: P.Message) -> None:
        action = msg.get("action")
        if action == "crash":
            os._exit(int(msg.get("code", 3)))
        elif action == "hang":
            self.hung.set()
        elif action == "print":
            text = msg.get("text", "stray output")
            print(text)
            sys.stdout.flush()
            os.write(1, (text + " (fd 1)\n").encode())
            os.write(2, (text + " (fd 2)\n").encode())
            os.write(1, P.MAGIC + b"\x00\x00\x00\x05")  # looks like a frame start: must not reach the channel

    # -- executor
    def _execute_loop(self) -> None:
        while not self.stop.is_set():
            try:
                msg = self.jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            if self.hung.is_set():
                while True:  # test hook: a hung worker never answers again
                    time.sleep(3600)
            job_id = msg.get("job_id")
            if job_id and job_id in self.cancelled_ids:
                self.cancelled_ids.discard(job_id)
                self.outbox.send({"type": P.EV_CANCELLED, "job_id": job_id, "reply_to": msg.get("id"), "step": 0})
                continue
            self.current = msg.header
            self.cancel_event.clear()
            try:
                getattr(self, "_do_" + msg.type)(msg)
            except BaseException as exc:  # every failure becomes an error event
                self.outbox.send({"type": P.EV_ERROR, "reply_to": msg.get("id"), "job_id": job_id,
                                  **_error_fields(exc), "traceback": traceback.format_exc()})
            finally:
                self.current = None
                self.stage = None

    def _model_spec(self, header: dict[str, Any]) -> dict[str, Any]:
        path = header.get("model_path")
        if not path or not isinstance(path, str):
            raise ValueError("model_path is required")
        num_gpus = int(header.get("num_gpus") or 1)
        if num_gpus < 1:
            raise ValueError(f"num_gpus must be at least 1, got {num_gpus}")
        options = dict(header.get("options") or {})
        return {"model_path": path, "num_gpus": num_gpus, "options": options}

    def _describe(self, model_path: str) -> dict[str, Any]:
        sp = self.engine.attr("SamplingParam").from_pretrained(model_path)
        defaults = _jsonable(sp.to_dict())
        defaults.pop("extra", None)
        return {"defaults": defaults, "tasks": self.engine.model_tasks(model_path),
                "gpu_count": self.engine.gpu_count()}

    def _ensure_loaded(self, spec: dict[str, Any], rid: str | None) -> None:
        if self.generator is not None and self.loaded == spec:
            return
        if self.generator is not None:
            self._unload()
        self.stage = "loading"
        self.outbox.send({"type": P.EV_LOADING, "reply_to": rid, **spec})
        t0 = time.time()
        cls = self.engine.attr("VideoGenerator")
        self.generator = cls.from_pretrained(spec["model_path"], num_gpus=spec["num_gpus"], **spec["options"])
        self.loaded = spec
        info = self._describe(spec["model_path"])
        log.info("loaded %s on %d GPU(s) in %.1f s", spec["model_path"], spec["num_gpus"], time.time() - t0)
        self.outbox.send({"type": P.EV_READY, "reply_to": rid, **spec, "load_time": time.time() - t0, **info})

    def _unload(self) -> None:
        gen, self.generator, self.loaded = self.generator, None, None
        if gen is not None:
            try:
                gen.shutdown()
            except Exception as exc:
                log.warning("shutting down the previous generator failed: %s", exc)

    def _do_load_model(self, msg: P.Message) -> None:
        spec = self._model_spec(msg.header)
        if self.generator is not None and self.loaded == spec:
            self.outbox.send({"type": P.EV_READY, "reply_to": msg.get("id"), **spec, "load_time": 0.0,
                              "cached": True, **self._describe(spec["model_path"])})
            return
        self._ensure_loaded(spec, msg.get("id"))

    def _describe_now(self, msg: P.Message) -> None:
        try:
            self._do_describe(msg)
        except BaseException as exc:
            self.outbox.send({"type": P.EV_ERROR, "reply_to": msg.get("id"), **_error_fields(exc)})

    def _do_describe(self, msg: P.Message) -> None:
        path = msg.get("model_path")
        if not path:
            raise ValueError("model_path is required")
        self.outbox.send({"type": P.EV_DESCRIBED, "reply_to": msg.get("id"), "model_path": path,
                          **self._describe(path)})

    def _do_generate(self, msg: P.Message) -> None:
        job_id = msg["job_id"]
        rid = msg.get("id")
        if msg.get("model_path"):
            self._ensure_loaded(self._model_spec(msg.header), rid)
        if self.generator is None:
            raise RuntimeError("no model is loaded: send load_model first (or give model_path with generate)")
        params = dict(msg.get("params") or {})
        SamplingParam = self.engine.attr("SamplingParam")
        InvalidRequest = self.engine.attr("InvalidRequest")
        Cancelled = self.engine.attr("GenerationCancelled")
        sp = SamplingParam.from_pretrained(self.loaded["model_path"])
        prompt = params.pop("prompt", None)
        try:
            sp.update(**params)
        except TypeError as exc:
            raise InvalidRequest(str(exc)) from None
        self.outbox.send({"type": P.EV_STARTED, "job_id": job_id, "reply_to": rid, "t": time.time()})
        last_step = [0]

        def callback(event: dict[str, Any]) -> None:
            kind = event.get("type")
            if kind == "stage":
                self.stage = event.get("name")
                self.outbox.send({"type": P.EV_STAGE, "job_id": job_id, "name": event.get("name")})
            elif kind == "progress":
                last_step[0] = int(event.get("step", 0))
                self.outbox.send({"type": P.EV_PROGRESS, "job_id": job_id,
                                  **{k: _jsonable(v) for k, v in event.items() if k != "type"}})
            elif kind == "preview":
                frames = event.get("frames")
                if frames is not None:
                    self.outbox.send_preview(frames, job_id=job_id, step=event.get("step"),
                                             total=event.get("total"), fps=sp.fps)

        try:
            result = self.generator.generate_video(prompt, sampling_param=sp, callback=callback,
                                                   cancel_event=self.cancel_event)
        except Cancelled:
            self.outbox.send({"type": P.EV_CANCELLED, "job_id": job_id, "reply_to": rid, "step": last_step[0]})
            return
        except InvalidRequest as exc:
            self.outbox.send({"type": P.EV_ERROR, "job_id": job_id, "reply_to": rid, **_error_fields(exc),
                              "error_type": "InvalidRequest"})
            return
        result = dict(result or {})
        frames = result.pop("frames", None)
        header = {"type": P.EV_RESULT, "job_id": job_id, "reply_to": rid,
                  **{k: _jsonable(v) for k, v in result.items()}}
        payload = b""
        if frames is not None and not result.get("video_path"):
            import numpy as np

            arr = np.ascontiguousarray(frames)
            if arr.dtype == np.uint8 and arr.ndim == 4:
                header.update(shape=list(arr.shape), dtype="uint8")
                payload = arr.tobytes()
        self.outbox.send(header, payload)

    def _do_run_parity(self, msg: P.Message) -> None:
        try:
            from fastvideo.parity import run_parity
        except ImportError as exc:
            raise RuntimeError(f"run_parity is not available in this fastvideo build ({exc})") from None
        args = dict(msg.get("args") or {})
        rid = msg.get("id")
        if msg.get("progress") and "progress" not in args:
            # Progress as ``stage`` events tied to the request (``request_id``, no ``job_id``, no
            # ``reply_to``: the answer is still the one parity_result/error event).
            def progress(event: dict[str, Any]) -> None:
                self.stage = f"parity:{event.get('stage')}"
                self.outbox.send({"type": P.EV_STAGE, "request_id": rid, "name": self.stage,
                                  **{k: _jsonable(v) for k, v in event.items() if k != "stage"}})

            args["progress"] = progress
        self.outbox.send({"type": P.EV_PARITY_RESULT, "reply_to": rid, "result": _jsonable(run_parity(**args))})

    def _do_inspect(self, msg: P.Message) -> None:
        try:
            from fastvideo.models.loader.inspect import inspect_mapping
        except ImportError as exc:
            raise RuntimeError(f"inspect is not available in this fastvideo build ({exc})") from None
        rules = msg.get("rules")
        if rules is not None:  # ordered [[pattern, replacement], ...] (a dict is accepted too); merge lists -> tuples
            from fastvideo.mapping.rules import rules_list

            rules = rules_list(rules)
        reply: dict[str, Any] = {"type": P.EV_INSPECT_RESULT, "reply_to": msg.get("id")}
        if msg.get("include_inputs"):
            # What the studio needs to re-run the mapping engine itself on every rule edit:
            # checkpoint headers, our parameter shapes (+ tied aliases) and the arch config's rules.
            from fastvideo.models.loader.inspect import mapping_inputs
            from fastvideo.mapping.rules import build_report

            source, target, default_rules = mapping_inputs(msg.get("model_path"), msg.get("component"))
            result = build_report(source, target, default_rules if rules is None else rules, msg.get("component"))
            reply["inputs"] = {
                "source": {k: {"shape": list(v.shape), "dtype": v.dtype} for k, v in source.items()},
                "target": {k: {"shape": list(getattr(v, "shape", v)), "aliases": list(getattr(v, "aliases", ()))}
                           for k, v in target.items()},
                "rules": [[k, list(v) if isinstance(v, tuple) else v] for k, v in (
                    default_rules.items() if isinstance(default_rules, dict) else default_rules)],
            }
        else:
            result = inspect_mapping(msg.get("model_path"), msg.get("component"), rules=rules)
        report = result.to_json() if hasattr(result, "to_json") else result  # a MappingReport
        reply["result"] = _jsonable(report)
        self.outbox.send(reply)

    # -- shutdown
    def shutdown(self, reason: str, grace: float = 10.0) -> None:
        self.stop.set()
        self.cancel_event.set()
        self._executor.join(grace)
        if not self._executor.is_alive():
            self._unload()
        self.outbox.send({"type": P.EV_BYE, "reason": reason})
        self.outbox.close(timeout=2.0)


def _jsonable(value: Any) -> Any:
    """Settings and results as JSON-safe values (numpy scalars, paths, tuples)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "__fspath__"):
        return os.fspath(value)
    if hasattr(value, "tolist") and getattr(value, "size", 1000) <= 64:
        return value.tolist()
    return repr(value)


def _fastvideo_version() -> str:
    try:
        import fastvideo

        return getattr(fastvideo, "__version__", "unknown")
    except Exception:
        return "unknown"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m fastvideo.serve",
        description="FastVideo inference process: framed requests on stdin, events on stdout (docs/protocol.md).",
    )
    p.add_argument("--heartbeat", type=float, default=1.0, help="seconds between heartbeat events (default 1)")
    p.add_argument("--model", help="load this model at start (as a load_model request)")
    p.add_argument("--num-gpus", type=int, default=1, help="GPUs for --model")
    p.add_argument("--nice", type=int, default=0,
                   help="lower this process's CPU priority by N (the studio passes 5 to keep its window responsive)")
    p.add_argument("--engine", default="fastvideo", help=argparse.SUPPRESS)  # module with the VideoGenerator API
    p.add_argument("--test-hooks", action="store_true", help=argparse.SUPPRESS)  # honour _debug requests
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    in_fd, out_fd, real_stderr, output_fd = capture_stdio()
    faulthandler.enable(file=real_stderr)
    dead = threading.Event()

    def on_broken() -> None:
        dead.set()

    outbox = Outbox(out_fd, on_broken)
    threading.Thread(target=_pump_output, args=(output_fd, outbox, real_stderr), name="fv-output",
                     daemon=True).start()
    root = logging.getLogger()
    root.handlers[:] = [_LogHandler(outbox, real_stderr)]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)

    if args.nice and hasattr(os, "nice"):
        try:
            os.nice(args.nice)
        except OSError:
            pass
    if os.name == "posix":
        try:  # own process group, so the studio can end GPU helper processes with us
            os.setpgrp()
        except OSError:
            pass

    host = Host(outbox, Engine(args.engine), heartbeat=args.heartbeat, test_hooks=args.test_hooks)
    host.start()
    if args.model:
        host.handle(P.Message({"type": P.REQ_LOAD_MODEL, "id": "cli", "model_path": args.model,
                               "num_gpus": args.num_gpus}))

    decoder = P.FrameDecoder()
    reason = "eof"
    reader_done = threading.Event()

    def read_requests() -> None:
        nonlocal reason
        while not host.stop.is_set():
            try:
                data = os.read(in_fd, 65536)
            except OSError:
                data = b""
            if not data:
                reason = "stdin closed"
                break
            for msg in decoder.feed(data):
                try:
                    host.handle(msg)
                except Exception as exc:
                    outbox.send({"type": P.EV_ERROR, "reply_to": msg.get("id"), **_error_fields(exc)})
                if msg.type == P.REQ_SHUTDOWN:
                    reason = "shutdown requested"
            while decoder.errors:
                outbox.send({"type": P.EV_LOG, "level": "warning", "source": "host",
                             "message": "request stream: " + decoder.errors.pop(0)})
        reader_done.set()

    threading.Thread(target=read_requests, name="fv-requests", daemon=True).start()
    while not (reader_done.is_set() or host.stop.is_set() or dead.is_set()):
        reader_done.wait(0.2)
    if dead.is_set():
        _hard_exit(1)
    host.shutdown(reason, grace=10.0 if reason == "shutdown requested" else 5.0)
    try:
        real_stderr.flush()
    except (OSError, ValueError):
        pass
    if host._executor.is_alive() and os.name == "posix" and os.getpgrp() == os.getpid():
        # Stuck in native code: take any helper processes of ours down with us.
        import signal

        os.killpg(os.getpgrp(), signal.SIGKILL)
    # Threads may sit in native code (CUDA, a hung library): leave without waiting.
    _hard_exit(0)
    return 0


def _hard_exit(code: int) -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)

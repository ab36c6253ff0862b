"""The inference process: ``python -m fastvideo.serve``.

Owns one :class:`fastvideo.VideoGenerator`, keeps it loaded between jobs, and
speaks the framed protocol of :mod:`fastvideo.serve.protocol` (requests on
stdin, events on the original stdout).  See ``docs/protocol.md``.

Threads:

* request reader: reads requests, answers ``ping``/``cancel``/``shutdown`` at once,
  ``describe`` in a short-lived thread of its own, and queues the long ones
  (load, generate, parity, inspect);
* executor: runs the queued requests one at a time (the GPU work);
* heartbeat: a ``heartbeat`` event every ``--heartbeat`` seconds;
* writer: the only thread that writes the channel (previews coalesce there);
* output reader: turns whatever is printed to fd 1 / fd 2 into ``log`` events.

The channel itself (stdio capture, framing onto the real stdout, the writer, heartbeats,
reading requests) is :mod:`fastvideo.serve.channel`; what the process knows of its engine and machine
is :mod:`fastvideo.serve.engine`; a remote client's input files are :mod:`fastvideo.serve.uploads`.
This module is the engine host: loading the generator, running jobs, ``describe``, parity and
inspect requests, and :func:`main`.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import sys
import threading
import time
import traceback
from typing import Any

from fastvideo.serve import protocol as P
from fastvideo.serve.channel import (  # noqa: F401  (Outbox, capture_stdio: imported from here before the split)
    Heartbeat,
    LogHandler,
    Outbox,
    RequestReader,
    capture_stdio,
    forward_line,
    hard_exit,
    open_channel,
    pump_output,
)
from fastvideo.serve.engine import (  # noqa: F401  (REFERENCE_PACKAGES: imported from here before the split)
    REFERENCE_PACKAGES,
    Engine,
    cpu_info,
    error_fields,
    fastvideo_version,
    jsonable,
    reference_versions,
)
from fastvideo.serve.uploads import Uploads

# The channel's names as this module had them before the split.
_LogHandler, _pump_output, _forward_line, _hard_exit = LogHandler, pump_output, forward_line, hard_exit

log = logging.getLogger("fastvideo.serve")


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
        self._heart = Heartbeat(outbox, heartbeat, self.stop, self.hung, self._status)
        self.uploads = Uploads(outbox)  # input files sent by a client on another host (put_file)

    # -- lifecycle
    def start(self) -> None:
        import platform

        self.outbox.send({
            "type": P.EV_HELLO, "protocol_version": P.PROTOCOL_VERSION, "pid": os.getpid(),
            "python": platform.python_version(), "platform": sys.platform,
            "fastvideo_version": fastvideo_version(), "heartbeat_interval": self.heartbeat_interval,
            "engine": self.engine.module_name, "references": reference_versions(),
        })
        self._executor.start()
        self._heart.start()

    def _status(self) -> dict[str, Any]:
        """What each heartbeat says besides its number and time."""
        cur = self.current
        return {"uptime": time.time() - self.started, "busy": cur is not None,
                "job_id": cur.get("job_id") if cur else None, "request": cur.get("type") if cur else None,
                "stage": self.stage, "model_path": (self.loaded or {}).get("model_path")}

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
        elif t == P.REQ_PUT_FILE:
            # Written here, in arrival order, so a generate sent after the pieces finds the file stored.
            self.uploads.put(msg)
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
            known = sorted(P.REQUEST_TYPES - {P.REQ_DEBUG})
            self.outbox.send({"type": P.EV_ERROR, "reply_to": rid, "error_type": "ProtocolError",
                              "message": f"unknown request type {t!r}; known: {known}"})

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
                                  **error_fields(exc), "traceback": traceback.format_exc()})
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
        defaults = jsonable(sp.to_dict())
        defaults.pop("extra", None)
        return {"defaults": defaults, "tasks": self.engine.model_tasks(model_path),
                "experts": self.engine.model_experts(model_path),
                "geometry": self.engine.model_geometry(model_path),
                "gpu_count": self.engine.gpu_count(), "devices": self.engine.devices(), "cpu": cpu_info()}

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
        where = (f"{spec['num_gpus']} GPU(s)" if info.get("gpu_count") else
                 "the CPU" + (f" ({spec['num_gpus']} processes)" if spec["num_gpus"] > 1 else ""))
        log.info("loaded %s on %s in %.1f s", spec["model_path"], where, time.time() - t0)
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
            self.outbox.send({"type": P.EV_ERROR, "reply_to": msg.get("id"), **error_fields(exc)})

    def _do_describe(self, msg: P.Message) -> None:
        path = msg.get("model_path")
        if not path:
            raise ValueError("model_path is required")
        self.outbox.send({"type": P.EV_DESCRIBED, "reply_to": msg.get("id"), "model_path": path,
                          **self._describe(path)})

    def _do_generate(self, msg: P.Message) -> None:
        job_id = msg["job_id"]
        rid = msg.get("id")
        uploaded = {}  # input files sent with put_file, named by token (checked before any loading)
        for name, token in dict(msg.get("uploads") or {}).items():
            if name not in ("image_path", "video_path"):
                raise ValueError(f"uploads: {name!r} is not an input file field (image_path, video_path)")
            uploaded[name] = self.uploads.path(token)
        if msg.get("model_path"):
            self._ensure_loaded(self._model_spec(msg.header), rid)
        if self.generator is None:
            raise RuntimeError("no model is loaded: send load_model first (or give model_path with generate)")
        params = {**dict(msg.get("params") or {}), **uploaded}
        SamplingParam = self.engine.attr("SamplingParam")
        InvalidRequest = self.engine.attr("InvalidRequest")
        Cancelled = self.engine.attr("GenerationCancelled")
        sp = SamplingParam.from_pretrained(self.loaded["model_path"])
        prompt = params.pop("prompt", None)
        if isinstance(params.get("output_path"), str):  # "~/outputs" from a remote studio: this host's home
            params["output_path"] = os.path.expanduser(params["output_path"])
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
                                  **{k: jsonable(v) for k, v in event.items() if k != "type"}})
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
            self.outbox.send({"type": P.EV_ERROR, "job_id": job_id, "reply_to": rid, **error_fields(exc),
                              "error_type": "InvalidRequest"})
            return
        result = dict(result or {})
        frames = result.pop("frames", None)
        header = {"type": P.EV_RESULT, "job_id": job_id, "reply_to": rid,
                  **{k: jsonable(v) for k, v in result.items()}}
        if msg.get("stream_video") and result.get("video_path"):
            header.update(self._stream_file(job_id, str(result["video_path"])))
        payload = b""
        if frames is not None and not result.get("video_path"):
            import numpy as np

            arr = np.ascontiguousarray(frames)
            if arr.dtype == np.uint8 and arr.ndim == 4:
                header.update(shape=list(arr.shape), dtype="uint8")
                payload = arr.tobytes()
        self.outbox.send(header, payload)

    def _stream_file(self, job_id: str, path: str) -> dict[str, Any]:
        """Send the finished video as ``file_chunk`` events and a ``file_end`` (size, sha256), before the
        ``result``, for a client on another host (``generate`` with ``stream_video: true``).  One chunk is
        written out before the next is read, so a slow link never queues the whole file in memory."""
        import hashlib

        digest = hashlib.sha256()
        name = os.path.basename(path)
        size = os.path.getsize(path)
        offset = 0
        with open(path, "rb") as fh:
            while True:
                chunk = fh.read(P.FILE_CHUNK_BYTES)
                if not chunk:
                    break
                digest.update(chunk)
                self.outbox.send({"type": P.EV_FILE_CHUNK, "job_id": job_id, "name": name, "offset": offset,
                                  "size": size}, chunk)
                offset += len(chunk)
                self.outbox.flush(timeout=60.0)
        self.outbox.send({"type": P.EV_FILE_END, "job_id": job_id, "name": name, "size": offset,
                          "sha256": digest.hexdigest()})
        return {"video_size": offset, "video_sha256": digest.hexdigest()}

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
                                  **{k: jsonable(v) for k, v in event.items() if k != "stage"}})

            args["progress"] = progress
        self.outbox.send({"type": P.EV_PARITY_RESULT, "reply_to": rid, "result": jsonable(run_parity(**args))})

    def _do_inspect(self, msg: P.Message) -> None:
        try:
            # an official Wan2.1 folder: a preview of what `fastvideo convert` will do (conversion.preview)
            from fastvideo.conversion.preview import inspect_mapping
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
            from fastvideo.conversion.preview import mapping_inputs
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
        reply["result"] = jsonable(report)
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
        self.uploads.cleanup()


#: the parity references this process can run (``fastvideo parity --reference``) and the package each needs
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
    p.add_argument("--ray-address", help="the Ray cluster for distributed_executor_backend='ray' (sets RAY_ADDRESS; "
                                         "default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--engine", default="fastvideo", help=argparse.SUPPRESS)  # module with the VideoGenerator API
    p.add_argument("--test-hooks", action="store_true", help=argparse.SUPPRESS)  # honour _debug requests
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.ray_address:
        os.environ["RAY_ADDRESS"] = args.ray_address
    channel = open_channel()
    outbox = channel.outbox

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

    reader = RequestReader(channel.in_fd, outbox, host.handle, host.stop, error_fields)
    reader.start()
    while not (reader.done.is_set() or host.stop.is_set() or channel.dead.is_set()):
        reader.done.wait(0.2)
    if channel.dead.is_set():
        host.uploads.cleanup()
        hard_exit(1)
    reason = reader.reason
    host.shutdown(reason, grace=10.0 if reason == "shutdown requested" else 5.0)
    try:
        channel.real_stderr.flush()
    except (OSError, ValueError):
        pass
    if host._executor.is_alive() and os.name == "posix" and os.getpgrp() == os.getpid():
        # Stuck in native code: take any helper processes of ours down with us.
        import signal

        os.killpg(os.getpgrp(), signal.SIGKILL)
    # Threads may sit in native code (CUDA, a hung library): leave without waiting.
    hard_exit(0)
    return 0

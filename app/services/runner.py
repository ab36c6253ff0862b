"""Runs the job queue on the inference process.

The :class:`JobRunner` takes the next queued job from the database when the
worker is free and the queue is not paused, sends it (with its model, so the
worker loads or keeps the right one), turns the worker's events into database
state changes and Qt signals, and marks the job failed with the reason when the
worker crashes or hangs.  The next job then starts a fresh worker.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from app.services.jobs_db import Job, JobsDB
from app.services.loras import summarize_reports
from app.services.remote import FileReceiver, TransferError
from app.services.worker_client import WorkerClient
from fastvideo.serve import protocol as P

MAX_CONSECUTIVE_CRASHES = 3


class JobRunner(QObject):
    #: the queue or a job's state changed (models refresh)
    jobs_changed = Signal()
    #: job_id, state: a job started ("running") or ended (done/failed/cancelled)
    job_state = Signal(int, str)
    #: job_id, stage name
    job_stage = Signal(int, str)
    #: a request's own progress (``stage`` events of ``run_parity`` and the like: ``request_id``, ``name``, no job)
    request_stage = Signal(dict)
    #: job_id, step, total, elapsed, remaining
    job_progress = Signal(int, int, int, float, float)
    #: job_id, expert index, expert count, expert name: which denoiser runs the step (sent before job_progress,
    #: only for models with several experts, e.g. Wan2.2 A14B's transformer / transformer_2)
    job_expert = Signal(int, int, int, str)
    #: job_id, frames, step, total, fps
    job_preview = Signal(int, object, int, int, int)
    #: a short line for the status bar about the worker ("Loading model…", "Model ready")
    worker_status = Signal(str)
    #: message, level ("info" | "warning" | "error"): tell the user
    notify = Signal(str, str)
    #: model_path, info {"defaults": {...}, "tasks": [...], "gpu_count": n | None, "devices": [...] | None,
    #: "cpu": {...}} (see :func:`model_info`)
    model_described = Signal(str, dict)
    #: model_path, error message
    describe_failed = Signal(str, str)
    #: a log line (dict with level/source/message)
    log = Signal(dict)
    #: paused flag changed
    paused_changed = Signal(bool)

    def _remember_devices(self, h: dict[str, Any]) -> None:
        if _gpu_count(h) is not None:
            self.gpu_count = _gpu_count(h)

    def __init__(self, db: JobsDB, client: WorkerClient, parent: QObject | None = None):
        super().__init__(parent)
        self.db = db
        self.client = client
        self.current: int | None = None
        self.cancelling: set[int] = set()
        self.consecutive_crashes = 0
        self.closed = False
        #: the GPUs the inference process last said it sees (None: not told yet)
        self.gpu_count: int | None = None
        self._describe_requests: dict[str, str] = {}
        self._calls: dict[str, Callable[[dict[str, Any]], None]] = {}
        self._last_progress: dict[int, tuple[int, int, float, float]] = {}
        # Remote engine: finished videos stream back into the job's local output folder.
        self.receiver = FileReceiver()
        self._local_outputs: dict[int, str] = {}  # job -> local folder its streamed video goes to
        self._received: dict[int, str] = {}  # job -> local path of its video, once it arrived whole
        self._transfer_errors: dict[int, str] = {}
        client.event.connect(self._on_event)
        client.file_chunk.connect(self._on_file_chunk)
        client.preview.connect(self._on_preview)
        client.crashed.connect(self._on_crashed)
        client.log.connect(self.log)
        client.state_changed.connect(self._on_client_state)
        self._kick = QTimer(self)
        self._kick.setSingleShot(True)
        self._kick.setInterval(0)
        self._kick.timeout.connect(self._schedule)

    # ------------------------------------------------------------------ public
    @property
    def paused(self) -> bool:
        return self.db.paused

    def set_paused(self, paused: bool) -> None:
        if paused == self.db.paused:
            return
        self.db.paused = paused
        self.paused_changed.emit(paused)
        if not paused:
            self.consecutive_crashes = 0
        self.schedule()

    def submit(self, *, prompt: str, model_path: str, params: dict[str, Any], task: str = "t2v",
               num_gpus: int = 1, pipeline_options: dict[str, Any] | None = None) -> int:
        job_id = self.db.add(prompt=prompt, model_path=model_path, params=params, task=task,
                             num_gpus=num_gpus, pipeline_options=pipeline_options)
        self.jobs_changed.emit()
        self.schedule()
        return job_id

    def cancel(self, job_id: int) -> None:
        """Stop a running job (within one step) or cancel a queued one."""
        if job_id == self.current:
            if job_id not in self.cancelling:
                self.cancelling.add(job_id)
                self.client.send(P.REQ_CANCEL, job_id=str(job_id))
                self.worker_status.emit("Cancelling…")
        elif self.db.finish_cancelled(job_id, "Cancelled before it started."):
            self.jobs_changed.emit()
            self.job_state.emit(job_id, "cancelled")

    def remove(self, job_id: int) -> bool:
        if job_id == self.current:
            return False
        ok = self.db.remove(job_id)
        if ok:
            self.jobs_changed.emit()
        return ok

    def move(self, job_id: int, new_index: int) -> None:
        if self.db.move(job_id, new_index):
            self.jobs_changed.emit()

    def describe(self, model_path: str) -> None:
        """Ask the worker for a model's defaults (answered by ``model_described``)."""
        rid = self.client.send(P.REQ_DESCRIBE, model_path=model_path)
        self._describe_requests[rid] = model_path

    def call(self, type_: str, on_reply: Callable[[dict[str, Any]], None], **fields: Any) -> str:
        """Send any request (``run_parity``, ``inspect``, ``describe``...) and get its answer.

        ``on_reply(header)`` is called on the GUI thread with the event that answers
        it (``parity_result``, ``inspect_result``, ... or ``error``), or with an
        ``error`` header if the inference process dies first.  Requests run one at a
        time in the worker, after the job in progress.
        """
        rid = self.client.send(type_, **fields)
        self._calls[rid] = on_reply
        return rid

    def last_progress(self, job_id: int) -> tuple[int, int, float, float] | None:
        return self._last_progress.get(job_id)

    def schedule(self) -> None:
        self._kick.start()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the worker (the running job is marked cancelled: the studio closed)."""
        self.closed = True
        self._kick.stop()
        if self.current is not None:
            self.db.finish_cancelled(self.current, "The studio was closed while this job ran.")
            self.current = None
        self.client.shutdown(timeout)

    # ------------------------------------------------------------------ internals
    def _schedule(self) -> None:
        if self.closed or self.current is not None or self.db.paused:
            return
        job = self.db.next_queued()
        if job is None:
            return
        if not self.db.start(job.id):
            self.schedule()
            return
        self.current = job.id
        self.jobs_changed.emit()
        self.job_state.emit(job.id, "running")
        self._send_job(job)

    def _send_job(self, job: Job) -> None:
        params = dict(job.params)
        params["prompt"] = job.prompt
        extra: dict[str, Any] = {}
        remote = getattr(self.client, "remote", None)
        if remote is not None and params.get("save_video", True):
            # The video is written on the remote host, then streamed back into the job's own output folder.
            local = str(params.get("output_path") or "")
            self._local_outputs[job.id] = local[:-4].rsplit("/", 1)[0] if local.lower().endswith(".mp4") else local
            params["output_path"] = remote.outputs
            extra["stream_video"] = True
        if remote is not None:
            # Input image / video: sent to the remote host first (put_file), then named by their tokens.
            uploads = {}
            for name in ("image_path", "video_path"):
                path = params.get(name)
                if isinstance(path, str) and path and os.path.isfile(os.path.expanduser(path)):
                    try:
                        uploads[name] = self._upload(os.path.expanduser(path))
                    except OSError as exc:
                        self._fail_current(f"could not read {path} to send it to {remote.target}: {exc}")
                        return
            if uploads:
                extra["uploads"] = uploads
        try:
            self.client.send(P.REQ_GENERATE, job_id=str(job.id), model_path=job.model_path,
                             num_gpus=job.num_gpus, options=job.pipeline_options, params=params, **extra)
        except Exception as exc:  # could not even write to the process
            self._fail_current(f"could not send the job to the inference process: {exc}")

    def _upload(self, path: str) -> str:
        """Send a local file to the remote engine in pieces (``put_file``); returns its token."""
        import hashlib
        import secrets

        token = secrets.token_hex(16)
        size = os.path.getsize(path)
        digest = hashlib.sha256()
        offset = 0
        with open(path, "rb") as fh:
            while True:
                piece = fh.read(P.FILE_CHUNK_BYTES)
                digest.update(piece)
                last = offset + len(piece) >= size or not piece
                fields: dict[str, Any] = {"token": token, "name": os.path.basename(path), "offset": offset,
                                          "size": size, "last": last}
                if last:
                    fields["sha256"] = digest.hexdigest()
                self.client.send(P.REQ_PUT_FILE, payload=piece, **fields)
                offset += len(piece)
                if last:
                    return token

    def _job_of(self, header: dict[str, Any]) -> int | None:
        raw = header.get("job_id")
        try:
            return int(raw) if raw is not None else None
        except (TypeError, ValueError):
            return None

    def _on_client_state(self, state: str) -> None:
        if state == "starting":
            self.worker_status.emit("Starting the inference process…")
        elif state == "running":
            self.worker_status.emit("Inference process ready")

    def _on_event(self, h: dict[str, Any]) -> None:
        if self.closed:
            return
        t = h.get("type")
        job_id = self._job_of(h)
        callback = self._calls.pop(h.get("reply_to"), None) if t not in (P.EV_LOADING,) else None
        if callback is not None and job_id is None:
            callback(h)
            return
        if t == P.EV_DESCRIBED:
            path = self._describe_requests.pop(h.get("reply_to"), h.get("model_path", ""))
            self._remember_devices(h)
            self.model_described.emit(path, model_info(h))
        elif t == P.EV_LOADING:
            self.worker_status.emit(f"Loading model {h.get('model_path')}…")
        elif t == P.EV_READY:
            self.worker_status.emit(f"Model loaded in {float(h.get('load_time') or 0):.1f} s")
            if h.get("model_path"):
                self._remember_devices(h)
                self.model_described.emit(h["model_path"], model_info(h))
        elif t == P.EV_STARTED:
            self.worker_status.emit("Generating…")
        elif t == P.EV_STAGE and job_id is not None:
            self.job_stage.emit(job_id, str(h.get("name")))
        elif t == P.EV_STAGE and h.get("request_id") is not None:
            self.request_stage.emit(h)
        elif t == P.EV_PROGRESS and job_id is not None:
            values = (int(h.get("step") or 0), int(h.get("total") or 0), float(h.get("elapsed") or 0.0),
                      float(h.get("remaining") or 0.0))
            self._last_progress[job_id] = values
            if int(h.get("experts") or 1) > 1:
                self.job_expert.emit(job_id, int(h.get("expert_index") or 0), int(h["experts"]),
                                     str(h.get("expert") or ""))
            self.job_progress.emit(job_id, *values)
        elif t == P.EV_FILE_END and job_id is not None:
            if job_id not in self._transfer_errors:
                try:
                    self._received[job_id] = str(self.receiver.finish(str(job_id), h))
                except TransferError as exc:
                    self._transfer_errors[job_id] = str(exc)
        elif t == P.EV_RESULT and job_id is not None:
            if job_id in self._local_outputs and h.get("video_path"):
                local = self._received.get(job_id)
                if local is None:
                    why = self._transfer_errors.get(job_id, "the video was not sent back (is fastvideo on the "
                                                            "remote host older than the studio's? update it there)")
                    self._finish(job_id, "failed", error=f"The video was made on {self.client.remote.target} "
                                 f"({h.get('video_path')}) but could not be copied back: {why}")
                    return
                h = {**h, "remote_video_path": h.get("video_path"), "video_path": local}
            self._finish(job_id, "done", result=h)
        elif t == P.EV_CANCELLED and job_id is not None:
            self._finish(job_id, "cancelled", note=f"Cancelled at step {h.get('step', 0)}.")
        elif t == P.EV_ERROR:
            message = str(h.get("message") or "unknown error")
            if job_id is not None:
                self._finish(job_id, "failed", error=message, field=h.get("field"))
            elif h.get("reply_to") in self._describe_requests:
                path = self._describe_requests.pop(h["reply_to"])
                self.describe_failed.emit(path, message)
            else:
                self.notify.emit(f"Inference process: {message}", "error")

    def _on_file_chunk(self, header: dict[str, Any], payload: bytes) -> None:
        job_id = self._job_of(header)
        if job_id is None or job_id not in self._local_outputs or job_id in self._transfer_errors:
            return
        try:
            self.receiver.chunk(str(job_id), header, payload, self._local_outputs[job_id] or ".")
        except (TransferError, OSError) as exc:
            self.receiver.abort(str(job_id))
            self._transfer_errors[job_id] = str(exc)

    def _forget_transfer(self, job_id: int) -> None:
        self.receiver.abort(str(job_id))
        for d in (self._local_outputs, self._received, self._transfer_errors):
            d.pop(job_id, None)

    def _on_preview(self, job: str, frames: object, step: int, total: int, fps: int) -> None:
        try:
            job_id = int(job)
        except ValueError:
            return
        if job_id == self.current:
            self.job_preview.emit(job_id, frames, step, total, fps)

    def _finish(self, job_id: int, state: str, *, result: dict | None = None, error: str | None = None,
                field: str | None = None, note: str | None = None) -> None:
        if state == "done":
            ok = self.db.finish_done(job_id, summarize_reports({k: v for k, v in (result or {}).items()
                                                                if k not in ("type", "reply_to", "job_id")}))
            self.worker_status.emit(f"Done in {float((result or {}).get('generation_time') or 0):.1f} s")
        elif state == "cancelled":
            ok = self.db.finish_cancelled(job_id, note)
            self.worker_status.emit("Cancelled")
        else:
            ok = self.db.finish_failed(job_id, error or "failed", field)
            self.worker_status.emit("Failed")
        self.consecutive_crashes = 0
        self.cancelling.discard(job_id)
        self._last_progress.pop(job_id, None)
        self._forget_transfer(job_id)
        if job_id == self.current:
            self.current = None
        if ok:
            self.jobs_changed.emit()
            self.job_state.emit(job_id, state)
        self.schedule()

    def _fail_current(self, reason: str) -> None:
        job_id, self.current = self.current, None
        if job_id is not None:
            self.cancelling.discard(job_id)
            self._last_progress.pop(job_id, None)
            self._forget_transfer(job_id)
            if self.db.finish_failed(job_id, reason):
                self.jobs_changed.emit()
                self.job_state.emit(job_id, "failed")
        self.schedule()

    def _on_crashed(self, reason: str) -> None:
        if self.closed:
            return
        for path in list(self._describe_requests.values()):
            self.describe_failed.emit(path, reason)
        self._describe_requests.clear()
        calls, self._calls = self._calls, {}
        for rid, callback in calls.items():
            callback({"type": P.EV_ERROR, "reply_to": rid, "error_type": "WorkerError", "message": reason})
        had_job = self.current is not None
        self.worker_status.emit("Inference process stopped")
        if had_job:
            self.consecutive_crashes += 1
            self.notify.emit(f"The job failed: {reason}. A fresh inference process starts with the next job.",
                             "error")
            if self.consecutive_crashes >= MAX_CONSECUTIVE_CRASHES and not self.db.paused:
                self.db.paused = True
                self.paused_changed.emit(True)
                self.notify.emit(f"The inference process failed {self.consecutive_crashes} times in a row; "
                                 "the queue is paused. Check the settings, then resume the queue.", "error")
        else:
            self.notify.emit(f"Inference process: {reason}", "warning")
        self._fail_current(reason[:1].upper() + reason[1:])


def _gpu_count(h: dict[str, Any]) -> int | None:
    n = h.get("gpu_count")
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else None


def model_info(h: dict[str, Any]) -> dict[str, Any]:
    """What a ``described`` / ``ready`` event says about a model and the machine it runs on: its sampling
    defaults and tasks, the GPUs the inference process sees (``gpu_count``: 0 = CPU only, None = unknown;
    ``devices``: name and memory of each) and its CPU side (``cpu``: cores, memory)."""
    info = {k: v for k, v in h.items() if k not in _NOT_MODEL_INFO}  # (and whatever a newer engine adds)
    info.update(defaults=h.get("defaults") or {}, tasks=h.get("tasks") or [], gpu_count=h.get("gpu_count"),
                devices=h.get("devices"), cpu=h.get("cpu"))
    return info


#: the fields of ``described`` / ``ready`` that are about the request, not the model
_NOT_MODEL_INFO = {"type", "reply_to", "model_path", "num_gpus", "options", "load_time", "cached", "job_id"}


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"

"""MultiprocExecutor: one spawned worker process per GPU, driven over pipes.

``VideoGenerator.from_pretrained(path, num_gpus=N)`` with N > 1 builds one.  The
executor picks the parallel layout (how many ranks split the token sequence,
whether the conditional and unconditional CFG branches run on different ranks),
starts N workers (``fastvideo.worker.worker.worker_main``; never fork: each in a
fresh interpreter that imports only fastvideo, see ``fastvideo.worker.launch``, so
the caller's ``__main__`` is never re-run and needs no ``if __name__`` guard),
waits for all of them to load, and then serves ``generate`` calls:

* the request goes to every rank; rank 0's progress / preview events are passed
  to the caller's callback as they arrive, and rank 0's result is returned;
* ``cancel_event`` is polled while waiting and forwarded to every rank; ranks
  stop at the same step boundary and the call raises ``GenerationCancelled``
  (the executor stays usable);
* a worker that dies (its process sentinel fires) or raises an error that the
  other ranks do not share tears the group down and raises ``WorkerError`` with
  the exit reason or the traceback -- never a hang: the parent only ever waits
  on pipes *and* process sentinels with a timeout.

``shutdown()`` is idempotent and registered with ``atexit``; workers also exit
on their own when the parent process disappears.

Layouts (``world = cfg_degree x sp_size``), defaults and overrides:

=========  ===========================  ========================================
num_gpus   default                      overrides (PipelineConfig)
=========  ===========================  ========================================
2          CFG parallel (2 x 1); a      ``cfg_parallel=False`` -> SP 2;
           request without guidance     ``sp_size=2`` -> SP 2
           runs SP over both ranks
4          2 CFG x 2 SP                 ``cfg_parallel=False`` / ``sp_size=4`` -> SP 4
even N     2 CFG x N/2 SP               same
odd N      SP N                         ``cfg_parallel=True`` is an error
=========  ===========================  ========================================
"""

from __future__ import annotations

import atexit
import itertools
import logging
import multiprocessing as mp
import os
import signal
import socket
import threading
import time
import weakref
from multiprocessing.connection import wait
from typing import Any

from fastvideo.errors import GenerationCancelled, InvalidRequest, WorkerError
from fastvideo.worker.layout import check_fsdp_config, dit_num_heads, resolve_layout

logger = logging.getLogger("fastvideo")

ENV_READY_TIMEOUT = "FASTVIDEO_WORKER_READY_TIMEOUT"  # seconds to load the model in every worker
ENV_REQUEST_TIMEOUT = "FASTVIDEO_REQUEST_TIMEOUT"  # seconds for one generate() (unset: none)
POLL_S = 0.05
ERROR_GRACE_S = 3.0  # after one rank raises, how long the others get to report the same error
STOP_GRACE_S = 5.0
CONN_LOST_GRACE_S = 2.0  # a rank whose connection closed but whose process is not yet known dead: failed after this


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _exit_reason(proc) -> str:
    reason = getattr(proc, "exit_reason", None)  # a Ray rank says it in its own words
    if reason is not None:
        return reason
    code = proc.exitcode
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class MultiprocExecutor:
    #: what the log and errors call a rank's process
    rank_kind = "worker"

    def __init__(self, info, config, num_gpus: int, *, ready_timeout: float | None = None,
                 request_timeout: float | None = None):
        self.info = info
        self.num_gpus = num_gpus
        check_fsdp_config(config)  # before any rank starts
        heads = dit_num_heads(info)
        sp_size, cfg_degree = resolve_layout(num_gpus, config.sp_size, config.cfg_parallel, heads)
        self.sp_size, self.cfg_degree = sp_size, cfg_degree
        self.config = config.update(sp_size=sp_size, cfg_parallel=cfg_degree == 2)
        self.full_sp = cfg_degree > 1 and (heads is None or heads % num_gpus == 0)
        self.use_cuda = self._check_devices(num_gpus)
        self.ready_timeout = ready_timeout or float(os.environ.get(ENV_READY_TIMEOUT, 1800))
        env_req = os.environ.get(ENV_REQUEST_TIMEOUT)
        self.request_timeout = request_timeout or (float(env_req) if env_req else None)
        self._closed = False
        self._broken: str | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.procs: list = []
        self.conns: list = []
        self._eof_at: dict[int, float] = {}  # rank -> when its connection reached EOF
        logger.info("starting %d %s ranks: %d CFG x %d SP (%s)%s", num_gpus, self.rank_kind, cfg_degree, sp_size,
                    "nccl" if self.use_cuda else "gloo, CPU",
                    ", DiT weights sharded (FSDP)" if self.config.use_fsdp_inference else "")
        self._atexit = weakref.WeakMethod(self.shutdown)
        atexit.register(_atexit_shutdown, self._atexit)
        try:
            self._start_ranks()
            self._wait_ready()
        except BaseException:
            self._stop_workers()
            self._closed = True
            raise

    def _check_devices(self, num_gpus: int) -> bool:
        """Whether the ranks use CUDA (ValueError when too few GPUs are visible)."""
        import torch

        if torch.cuda.is_available() and torch.cuda.device_count() < num_gpus:
            raise ValueError(f"num_gpus={num_gpus} but only {torch.cuda.device_count()} CUDA device(s) are visible")
        return torch.cuda.is_available()

    def _spec(self, rank: int, init_method: str, parent_pid: int | None):
        from fastvideo.worker.worker import WorkerSpec

        return WorkerSpec(rank=rank, world_size=self.num_gpus, init_method=init_method, sp_size=self.sp_size,
                          cfg_degree=self.cfg_degree, full_sp_for_no_cfg=self.full_sp, parent_pid=parent_pid)

    def _start_ranks(self) -> None:
        """Start every rank: fill ``self.procs`` (process-like objects) and ``self.conns`` (their connections)."""
        ctx = mp.get_context("spawn")
        init_method = f"tcp://127.0.0.1:{_free_port()}"
        from fastvideo.worker.launch import RankProcess
        from fastvideo.worker.worker import worker_main

        for rank in range(self.num_gpus):
            spec = self._spec(rank, init_method, os.getpid())
            if os.name == "posix":
                # A fresh interpreter that imports only fastvideo: the caller's __main__ is never
                # re-run, so a script without an ``if __name__ == "__main__":`` guard works too.
                proc = RankProcess((spec, self.info, self.config), name=f"fastvideo-worker-{rank}")
                parent_conn = proc.conn
            else:
                parent_conn, child_conn = ctx.Pipe(duplex=True)
                proc = ctx.Process(target=worker_main, args=(spec, self.info, self.config, child_conn),
                                   name=f"fastvideo-worker-{rank}", daemon=True)
                proc.start()
                child_conn.close()
            self.procs.append(proc)
            self.conns.append(parent_conn)

    # -- public ---------------------------------------------------------------------------

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def generate(self, sp, callback=None, cancel_event=None) -> dict[str, Any]:
        with self._lock:
            self._check_usable()
            req_id = next(self._ids)
            for rank in range(len(self.conns)):
                self._send(rank, ("generate", req_id, sp))
            return self._collect(req_id, callback, cancel_event)

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        for conn in self.conns:
            try:
                conn.send(("cancel", None))  # a request still running stops at its next step
                conn.send(("shutdown",))
            except (OSError, BrokenPipeError, ValueError):
                pass
        self._stop_workers(grace=STOP_GRACE_S)

    # -- internals ------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise WorkerError("this generator has been shut down" if not self._broken else
                              f"the workers are gone ({self._broken}); create a new VideoGenerator")

    def _send(self, rank: int, msg: tuple) -> None:
        try:
            self.conns[rank].send(msg)
        except (OSError, BrokenPipeError) as exc:
            self._fail(f"worker rank {rank} (pid {self.procs[rank].pid}) is unreachable ({exc}; "
                       f"{_exit_reason(self.procs[rank])})")

    def _fail(self, reason: str) -> None:
        """Tear the group down and raise WorkerError(reason)."""
        self._broken = reason
        self._closed = True
        self._stop_workers()
        raise WorkerError(reason)

    def _wait_any(self, timeout: float):
        """Wait for messages; raise WorkerError at once when a worker process has exited."""
        live = [c for r, c in enumerate(self.conns) if r not in self._eof_at]
        ready = wait(live + [p.sentinel for p in self.procs], timeout)
        messages = []
        for obj in ready:
            if obj in self.conns:
                rank = self.conns.index(obj)
                try:
                    messages.append((rank, obj.recv()))
                except (EOFError, OSError):
                    self._eof_at.setdefault(rank, time.monotonic())  # the sentinel (checked below) says why
        if not messages:
            for rank, proc in enumerate(self.procs):
                if proc.sentinel in ready or not proc.is_alive():
                    proc.join(0.5)
                    self._fail(f"{self.rank_kind} rank {rank} ({self._where(rank)}) died: {_exit_reason(proc)}")
            for rank, since in self._eof_at.items():
                if time.monotonic() - since > CONN_LOST_GRACE_S:
                    self._fail(f"{self.rank_kind} rank {rank} ({self._where(rank)}) lost its connection to this "
                               f"process ({_exit_reason(self.procs[rank])})")
        return messages

    def _where(self, rank: int) -> str:
        return f"pid {self.procs[rank].pid}"

    def _wait_ready(self) -> None:
        pending = set(range(self.num_gpus))
        deadline = time.monotonic() + self.ready_timeout
        while pending:
            if time.monotonic() > deadline:
                self._fail(f"workers {sorted(pending)} did not finish loading within {self.ready_timeout:.0f} s")
            for rank, msg in self._wait_any(0.5):
                if msg[0] == "ready":
                    pending.discard(rank)
                elif msg[0] == "log":
                    logger.info("[rank %d] %s", msg[1], msg[2])
                elif msg[0] == "error":
                    self._fail(f"worker rank {rank} failed to start: {msg[3]}: {msg[4]}\n{msg[5]}")

    def _collect(self, req_id: int, callback, cancel_event) -> dict[str, Any]:
        results: dict[int, Any] = {}
        errors: dict[int, tuple] = {}
        cancel_sent = False
        callback_exc: BaseException | None = None
        first_error_at: float | None = None
        deadline = time.monotonic() + self.request_timeout if self.request_timeout else None
        while len(results) + len(errors) < self.num_gpus:
            now = time.monotonic()
            if not cancel_sent and ((cancel_event is not None and cancel_event.is_set()) or callback_exc):
                for rank in range(self.num_gpus):
                    self._send(rank, ("cancel", req_id))
                cancel_sent = True
            if first_error_at is not None and now - first_error_at > ERROR_GRACE_S:
                rank, err = next(iter(errors.items()))
                self._fail(self._error_text(rank, err) + f"\n(ranks {sorted(set(range(self.num_gpus)) - set(errors))}"
                           f" did not stop; the worker group was shut down)")
            if deadline is not None and now > deadline:
                self._fail(f"request {req_id} did not finish within {self.request_timeout:.0f} s "
                           f"({ENV_REQUEST_TIMEOUT}); the worker group was shut down")
            for rank, msg in self._wait_any(POLL_S):
                kind = msg[0]
                if len(msg) > 1 and kind != "log" and msg[1] != req_id:
                    continue  # stale message of an earlier request
                if kind == "event":
                    if callback is not None and callback_exc is None:
                        try:
                            callback(msg[2])
                        except BaseException as exc:  # noqa: BLE001 - re-raised after the ranks stop
                            callback_exc = exc
                elif kind == "result":
                    results[rank] = msg[2]
                elif kind == "error":
                    errors[rank] = msg
                    first_error_at = first_error_at or time.monotonic()
                elif kind == "log":
                    logger.info("[rank %d] %s", msg[1], msg[2])
        if not errors:
            if callback_exc is not None:
                raise callback_exc
            return results[0]
        # Every rank reported.  The same error everywhere means the ranks stopped at the same
        # point (cancellation, a bad input): the group is intact and stays usable.
        kinds = {err[3] for err in errors.values()}
        if len(errors) < self.num_gpus or len(kinds) > 1:
            rank = min(r for r, e in errors.items() if e[3] != "GenerationCancelled") if kinds - {
                "GenerationCancelled"} else min(errors)
            self._fail(self._error_text(rank, errors[rank]) + "\n(the ranks disagreed; the worker group was shut down)")
        rank0 = errors[min(errors)]
        if callback_exc is not None:
            raise callback_exc
        if rank0[3] == "GenerationCancelled":
            raise GenerationCancelled(rank0[4])
        if rank0[3] == "InvalidRequest":
            raise InvalidRequest(rank0[4], rank0[6])
        raise WorkerError(self._error_text(min(errors), rank0))

    def _error_text(self, rank: int, err: tuple) -> str:
        return f"worker rank {rank} raised {err[3]}: {err[4]}\n--- worker traceback ---\n{err[5]}"

    def _stop_workers(self, grace: float = 0.0) -> None:
        deadline = time.monotonic() + grace
        for proc in self.procs:
            proc.join(max(0.0, deadline - time.monotonic()))
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
        for proc in self.procs:
            proc.join(2.0)
            if proc.is_alive():
                proc.kill()
                proc.join(2.0)
        for conn in self.conns:
            try:
                conn.close()
            except OSError:
                pass
        for proc in self.procs:
            if getattr(proc, "sentinel", None) is not None and hasattr(proc, "conn") and not proc.is_alive():
                proc.close()  # a RankProcess: frees its sentinel


def _atexit_shutdown(ref) -> None:
    method = ref()
    if method is not None:
        try:
            method()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

"""One worker process per GPU (or CPU rank): the receiving end of the executor's RPCs.

:func:`worker_main` is the spawn target.  It joins ``torch.distributed`` (NCCL on
``cuda:<local rank>`` when CUDA is available, else gloo on the CPU), creates the
SP / CFG groups, loads the pipeline (:class:`~fastvideo.worker.runner.PipelineRunner`)
and serves requests read from its pipe to the parent.

Messages (tuples) on the pipe::

    parent -> worker   ("generate", req_id, sampling_param)   run one request
                       ("cancel", req_id)                     stop at the next step boundary (None: any)
                       ("shutdown",)                          leave the loop, destroy the group, exit
    worker -> parent   ("ready", rank, pid)                   after loading
                       ("log", rank, text)                    loading progress (rank 0)
                       ("event", req_id, event)               progress / preview (rank 0, as they happen)
                       ("result", req_id, result)             rank 0's result; other ranks send None
                       ("error", req_id, rank, kind, message, traceback_text, field)

A reader thread owns the receiving side: ``cancel`` sets the running request's
event while the main thread computes (ranks then agree on it with an all_reduce
at each step, see ``DenoisingStage``).  The worker exits by itself when the
parent goes away: the pipe reaches EOF, or the parent pid changes (checked twice
a second), so no orphan outlives a killed parent.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

PARENT_POLL_S = 0.5
# SamplingParam.extra key: the rank given raises before generating (tests of error handling).
FAULT_KEY = "fastvideo_test_fault_rank"


@dataclass
class WorkerSpec:
    """What a worker needs to start (pickled into the spawned process)."""

    rank: int
    world_size: int
    init_method: str
    sp_size: int
    cfg_degree: int
    full_sp_for_no_cfg: bool
    parent_pid: int | None
    dist_timeout_s: float = 600.0
    local_rank: int | None = None  # GPU index on this host (default: rank % visible GPUs)


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent_pid:
            os._exit(3)


def _error_message(req_id, rank: int, exc: BaseException) -> tuple:
    return ("error", req_id, rank, type(exc).__name__, str(exc), traceback.format_exc(),
            getattr(exc, "field", None))


def worker_main(spec: WorkerSpec, info, config, conn) -> None:
    """Spawn target: set up the rank, load the pipeline, serve requests until shutdown."""
    # Ctrl-C reaches the whole process group; the parent decides (it shuts the workers down).
    if threading.current_thread() is threading.main_thread():  # (a Ray actor may run this on another thread)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if spec.parent_pid is not None:
        threading.Thread(target=_watch_parent, args=(spec.parent_pid,), daemon=True, name="parent-watch").start()
    send_lock = threading.Lock()

    def send(msg: tuple) -> None:
        with send_lock:
            conn.send(msg)

    if config.attention_backend:
        os.environ["FASTVIDEO_ATTENTION_BACKEND"] = config.attention_backend
    try:
        runner = _setup(spec, info, config, send)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, then exit
        try:
            send(_error_message(None, spec.rank, exc))
        finally:
            os._exit(1)
    send(("ready", spec.rank, os.getpid()))

    requests: queue.Queue = queue.Queue()
    current: dict[str, Any] = {"id": None, "event": None}
    lock = threading.Lock()

    def reader() -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                os._exit(3)  # the parent is gone: never linger as an orphan
            if msg[0] == "cancel":
                with lock:
                    if current["event"] is not None and msg[1] in (None, current["id"]):  # None: whatever runs
                        current["event"].set()
                    else:
                        current.setdefault("early_cancel", set()).add(msg[1])
            else:
                requests.put(msg)
                if msg[0] == "shutdown":
                    return

    threading.Thread(target=reader, daemon=True, name="rpc-reader").start()
    while True:
        msg = requests.get()
        if msg[0] == "shutdown":
            break
        if msg[0] != "generate":
            continue
        _, req_id, sp = msg
        event = threading.Event()
        with lock:
            current["id"], current["event"] = req_id, event
            if req_id in current.get("early_cancel", set()):
                event.set()
        callback = (lambda e, _id=req_id: send(("event", _id, e))) if spec.rank == 0 else None
        try:
            if (getattr(sp, "extra", None) or {}).get(FAULT_KEY) == spec.rank:  # fault injection for tests
                raise RuntimeError(f"injected fault on rank {spec.rank} ({FAULT_KEY})")
            result = runner.generate(sp, callback=callback, cancel_event=event)
            send(("result", req_id, result if spec.rank == 0 else None))
        except BaseException as exc:  # noqa: BLE001 - sent to the parent
            send(_error_message(req_id, spec.rank, exc))
        finally:
            with lock:
                current["id"], current["event"] = None, None
                current.get("early_cancel", set()).discard(req_id)
    _teardown()
    conn.close()


def _setup(spec: WorkerSpec, info, config, send):
    from datetime import timedelta

    from fastvideo.attention.backends import get_attn_backend

    get_attn_backend(config.attention_backend)  # an unknown / unavailable backend fails before any loading

    import torch
    import torch.distributed as dist

    from fastvideo.attention.layer import set_attention_backend
    from fastvideo.distributed import parallel_state as ps
    from fastvideo.worker.runner import PipelineRunner

    if torch.cuda.is_available():
        local = spec.local_rank if spec.local_rank is not None else spec.rank % torch.cuda.device_count()
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // spec.world_size))
    kwargs = dict(init_method=spec.init_method, rank=spec.rank, world_size=spec.world_size,
                  timeout=timedelta(seconds=spec.dist_timeout_s))
    try:  # device_id (torch >= 2.3) binds the NCCL communicator to this rank's GPU up front
        dist.init_process_group(backend, **kwargs, **({"device_id": device} if device.type == "cuda" else {}))
    except TypeError:
        dist.init_process_group(backend, **kwargs)
    ps.init_parallel_groups(spec.sp_size, spec.cfg_degree, spec.full_sp_for_no_cfg)
    log = (lambda text: send(("log", spec.rank, text))) if spec.rank == 0 else None
    runner = PipelineRunner(info, config, device=device, rank=spec.rank, log=log)
    transformer = runner.loaded.get("transformer")
    if transformer is not None:
        set_attention_backend(transformer, config.attention_backend)
    return runner


def _teardown() -> None:
    try:
        import torch.distributed as dist

        from fastvideo.distributed import parallel_state as ps

        ps.destroy_parallel_groups()
        if dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # noqa: BLE001 - best effort on the way out
        pass


# ----------------------------------------------------------------------------- torchrun (SPMD) entry


def spmd_main(argv=None) -> int:
    """Run one request on every rank of a ``torchrun`` launch (one or several hosts).

    ``torchrun --nnodes 2 --nproc-per-node 4 --rdzv-endpoint HOST:PORT -m fastvideo.worker.worker
    --model PATH --prompt "..."``: the same layout, groups, DiT sequence split and
    CFG predictor as ``VideoGenerator(num_gpus=N)``; ranks join through ``env://``
    (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK set by torchrun) and
    rank 0 writes the video.  No executor, no RPC: the process launcher owns the ranks.
    """
    import argparse
    import json

    import torch

    from fastvideo.configs.registry import resolve_model
    from fastvideo.worker.layout import dit_num_heads, resolve_layout
    from fastvideo.worker.runner import cpu_precision_defaults, scheduler_shift

    p = argparse.ArgumentParser(prog="python -m fastvideo.worker.worker", description=spmd_main.__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--prompt", required=True)
    p.add_argument("--output", default="outputs/")
    p.add_argument("--sampling", default="{}", help="JSON object of SamplingParam fields")
    p.add_argument("--pipeline", default="{}", help="JSON object of PipelineConfig fields (sp_size, cfg_parallel...)")
    args = p.parse_args(argv)
    env = os.environ
    if "RANK" not in env or "WORLD_SIZE" not in env:
        raise SystemExit("run this under torchrun (it needs RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)")
    rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
    info = resolve_model(args.model, download=False)  # download first (one host): no rank races on the cache
    overrides = json.loads(args.pipeline)
    config = info.pipeline_config_cls()
    shift = scheduler_shift(info)
    if shift is not None:
        config = config.update(flow_shift=shift)
    config = config.update(**overrides)
    if not torch.cuda.is_available():
        config = cpu_precision_defaults(config, set(overrides))
    heads = dit_num_heads(info)
    sp_size, cfg_degree = resolve_layout(world, config.sp_size, config.cfg_parallel, heads)
    config = config.update(sp_size=sp_size, cfg_parallel=cfg_degree == 2)
    if config.attention_backend:
        os.environ["FASTVIDEO_ATTENTION_BACKEND"] = config.attention_backend
    spec = WorkerSpec(rank=rank, world_size=world, init_method="env://", sp_size=sp_size, cfg_degree=cfg_degree,
                      full_sp_for_no_cfg=heads is None or heads % world == 0, parent_pid=None,
                      local_rank=int(env.get("LOCAL_RANK", rank)))
    runner = _setup(spec, info, config, lambda msg: None)
    sp = info.sampling_param_cls()
    sp.update(**json.loads(args.sampling))
    sp.prompt, sp.output_path = args.prompt, args.output
    try:
        result = runner.generate(sp)
        if rank == 0:
            print(json.dumps({"video_path": result["video_path"], "layout": f"{cfg_degree}x{sp_size}",
                              "generation_time": result["generation_time"]}))
    finally:
        _teardown()
    return 0


if __name__ == "__main__":
    raise SystemExit(spmd_main())

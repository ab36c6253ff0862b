"""RayExecutor: the ranks as Ray actors, on one host or many (``distributed_executor_backend="ray"``).

``VideoGenerator.from_pretrained(path, num_gpus=N, distributed_executor_backend="ray")`` attaches to the
Ray cluster that ``RAY_ADDRESS`` names (``ray start --head`` on one host, ``ray start --address=HEAD:6379``
on the others), or starts a local one when it is unset, and then:

* reserves one bundle per rank in a placement group (``{"GPU": 1, "CPU": 1}`` when the cluster has at
  least N GPUs, else ``{"CPU": 1}``: CPU ranks on gloo), packed onto as few hosts as fit
  (``FASTVIDEO_RAY_PLACEMENT=SPREAD`` spreads them); a cluster without room is an error after
  ``FASTVIDEO_RAY_PLACEMENT_TIMEOUT`` seconds (default 60), never a silent wait;
* starts one actor per bundle; each opens a listening socket on its host and reports its address;
* connects to every actor (a ``multiprocessing.connection`` with a random auth key) and starts the
  rank there: :func:`fastvideo.worker.worker.worker_main`, the very code the local executor's worker
  processes run.  Ranks join ``torch.distributed`` through ``tcp://<rank 0's host>:<port>`` (NCCL on
  GPUs, gloo on CPUs) and form the same SP / CFG groups and, with ``use_fsdp_inference``, the same
  sharded DiT.

Everything after that is :class:`~fastvideo.worker.executor.MultiprocExecutor`'s: requests, rank 0's
progress and previews, cancel, errors with the rank's traceback, the same guarantees:

* a lost rank (its process killed, its host gone) is reported within seconds as ``WorkerError``: its
  connection closes (checked every poll), TCP keep-alives find a silent host gone (~11 s) or Ray reports
  the actor dead, and the rest of the group is stopped;
* no orphans: a rank exits as soon as its connection to this process closes, and Ray ends a job's
  actors when the driver exits;
* videos are written by this process (rank 0 sends the frames back), so ``output_path`` means the same
  as with the local executor, whichever host rank 0 runs on;
* ``shutdown()`` ends the ranks, kills the actors, removes the placement group and, if this executor
  started Ray, shuts it down.

Every host needs fastvideo (the same version) importable by Ray's workers and the model folder at the
same path; docs/multigpu.md walks through two hosts.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import threading
import weakref
from typing import Any

from fastvideo.errors import WorkerError
from fastvideo.worker.executor import MultiprocExecutor, _free_port

logger = logging.getLogger("fastvideo")

ENV_PLACEMENT = "FASTVIDEO_RAY_PLACEMENT"  # PACK (default), SPREAD, STRICT_PACK, STRICT_SPREAD
ENV_PLACEMENT_TIMEOUT = "FASTVIDEO_RAY_PLACEMENT_TIMEOUT"  # seconds to wait for the cluster to have room
# Executors not shut down yet.  Without this a script that drops its generator (FastVideo's examples never
# call shutdown()) would leave the ranks' watcher threads inside ray.get when Ray's exit handler shuts Ray
# down, and Ray then ends the process with status 1.
_LIVE: set = set()


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError("distributed_executor_backend='ray' needs Ray: pip install 'ray>=2.40' (on every host "
                          "of the cluster, in the same environment as fastvideo)") from None
    return ray


KEEPALIVE = (5, 2, 3)  # TCP keep-alive: idle seconds, probe interval, probes -> a silent peer is gone in ~11 s


def keepalive(conn) -> None:
    """TCP keep-alives on a connection's socket: a host that vanishes without closing it (power, network)
    makes the next read fail within ~11 s instead of never (both ends: no hang, no orphan)."""
    import socket

    sock = socket.socket(fileno=os.dup(conn.fileno()))
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in zip(("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT"), KEEPALIVE):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    finally:
        sock.close()


class _RankActor:
    """One rank (wrapped with ``ray.remote`` at run time; Ray imports this module on the rank's host)."""

    def __init__(self, authkey: bytes):
        from multiprocessing.connection import Listener

        self._listener = Listener(("0.0.0.0", 0), authkey=authkey)

    def where(self) -> dict[str, Any]:
        import ray

        ctx = ray.get_runtime_context()
        return {"ip": ray.util.get_node_ip_address(), "port": self._listener.address[1], "pid": os.getpid(),
                "node_id": ctx.get_node_id(), "rendezvous_port": _free_port(), "gpu_ids": ray.get_gpu_ids()}

    def serve(self, spec, info, config) -> int:
        conn = self._listener.accept()  # the executor connects right after starting this call
        self._listener.close()
        keepalive(conn)
        from fastvideo.worker.worker import worker_main

        worker_main(spec, info, config, conn)
        return 0


class RayRank:
    """What the executor needs of a rank's process (like :class:`~fastvideo.worker.launch.RankProcess`).

    ``sentinel`` is a pipe's read end that becomes readable when the rank's ``serve`` call ends: returned
    (a clean shutdown) or failed because the actor died (Ray's report is kept for ``exit_reason``).
    """

    def __init__(self, ray, actor, serve_ref, conn, where: dict[str, Any], name: str):
        self._ray = ray
        self.actor = actor
        self.conn = conn
        self.name = name
        self.pid = where["pid"]
        self.node_id = where["node_id"]
        self.node_ip = where["ip"]
        self._error: str | None = None
        self._returned = False
        read_end, self._write_end = os.pipe()
        self.sentinel = read_end
        self._watcher = threading.Thread(target=self._watch, args=(serve_ref,), daemon=True,
                                         name=f"ray-watch-{name}")
        self._watcher.start()

    def _watch(self, ref) -> None:
        try:
            self._ray.get(ref)
            self._returned = True
        except BaseException as exc:  # noqa: BLE001 - ActorDiedError, a lost node, ray shut down...
            text = str(exc).strip().splitlines()
            self._error = f"{type(exc).__name__}: {text[0] if text else ''}".strip(": ")
        finally:
            os.close(self._write_end)

    @property
    def exitcode(self) -> int | None:
        if self._watcher.is_alive():
            return None
        return 0 if self._returned else 1

    @property
    def exit_reason(self) -> str:
        if self._watcher.is_alive():
            return f"its process on {self.node_ip} is not known to have exited yet"
        if self._returned:
            return "exited"
        return f"the Ray actor on {self.node_ip} died ({self._error})"

    def is_alive(self) -> bool:
        return self._watcher.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._watcher.join(timeout)

    def terminate(self) -> None:
        self.kill()

    def kill(self) -> None:
        try:
            self._ray.kill(self.actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone, or Ray shut down
            pass

    def close(self) -> None:
        if self.sentinel is not None:
            os.close(self.sentinel)
            self.sentinel = None


class RayExecutor(MultiprocExecutor):
    rank_kind = "Ray"

    def __init__(self, info, config, num_gpus: int, *, explicit: set[str] | frozenset[str] = frozenset(),
                 ready_timeout: float | None = None, request_timeout: float | None = None):
        self._ray = _import_ray()
        self._owns_ray = False
        self._pg = None
        self._actors: list = []
        self._explicit = set(explicit)
        self._at_exit = False  # at interpreter exit Ray's own atexit handler shuts Ray down
        self.address: str | None = None
        self._init_ray()
        try:
            if not self._check_devices(num_gpus):
                from fastvideo.worker.runner import cpu_precision_defaults

                config = cpu_precision_defaults(config, self._explicit)  # CPU ranks: fp32 unless asked otherwise
            super().__init__(info, config, num_gpus, ready_timeout=ready_timeout, request_timeout=request_timeout)
        except BaseException:
            if self._owns_ray:  # a bad layout or option: nothing of ours is left running
                self._owns_ray = False
                self._ray.shutdown()
            raise
        # Registered after the base class's (and Ray's own) handler, so it runs first at exit: the ranks are
        # stopped while Ray still works, and Ray's own exit handler then disconnects it.
        atexit.register(_exit_shutdown, weakref.ref(self))
        _LIVE.add(self)  # kept until shutdown: a generator dropped without shutdown() is still shut down at exit

    def generate(self, sp, callback=None, cancel_event=None) -> dict[str, Any]:
        """As the local executor's, but the video is written *here* (the caller's host and working folder):
        rank 0 may run on another host, so it sends the frames back and this process saves them."""
        import copy

        from fastvideo.utils.media import write_generation

        remote = copy.copy(sp)
        remote.save_video, remote.return_frames = False, bool(sp.save_video or sp.return_frames)
        result = super().generate(remote, callback=callback, cancel_event=cancel_event)
        if sp.save_video:
            result["video_path"] = str(write_generation(result["frames"], sp.output_path, sp.prompt, fps=sp.fps,
                                                        metadata=result["settings"]))
        if not sp.return_frames:
            result["frames"] = None
        return result

    # -- set-up -----------------------------------------------------------------------------

    def _init_ray(self) -> None:
        ray = self._ray
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS") or None
            # log_to_driver off: the ranks report through their connections (errors with tracebacks); Ray's
            # log forwarding thread, racing the interpreter's exit, could end the caller with status 1.
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            self._owns_ray = True
        ctx = ray.get_runtime_context()
        self.address = getattr(ctx, "gcs_address", None)

    def _cluster_gpus(self) -> int:
        return int(self._ray.cluster_resources().get("GPU", 0))

    def _check_devices(self, num_gpus: int) -> bool:
        """GPU ranks when the cluster has the GPUs; CPU ranks when it has none; an error in between."""
        gpus = self._cluster_gpus()
        if 0 < gpus < num_gpus:
            raise ValueError(f"num_gpus={num_gpus} but the Ray cluster ({self.address or 'local'}) has {gpus} GPU(s); "
                             "add nodes or lower num_gpus")
        return gpus >= num_gpus

    @property
    def nodes(self) -> list[str]:
        """Ray node id of each rank."""
        return [p.node_id for p in self.procs]

    def _where(self, rank: int) -> str:
        proc = self.procs[rank]
        return f"pid {proc.pid} on {proc.node_ip}"

    def _start_ranks(self) -> None:
        import time
        from multiprocessing.connection import Client

        ray = self._ray
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        bundle = {"GPU": 1, "CPU": 1} if self.use_cuda else {"CPU": 1}
        strategy = os.environ.get(ENV_PLACEMENT, "PACK").upper()
        timeout = float(os.environ.get(ENV_PLACEMENT_TIMEOUT, 60))
        self._pg = placement_group([dict(bundle) for _ in range(self.num_gpus)], strategy=strategy)
        ready, _ = ray.wait([self._pg.ready()], timeout=timeout)
        if not ready:
            have = ray.available_resources()
            remove_placement_group(self._pg)
            self._pg = None
            raise WorkerError(
                f"the Ray cluster ({self.address or 'local'}) has no room for {self.num_gpus} rank(s) of {bundle} "
                f"within {timeout:.0f} s (available: {have.get('CPU', 0):g} CPU, {have.get('GPU', 0):g} GPU); "
                f"add nodes, lower num_gpus, or raise {ENV_PLACEMENT_TIMEOUT}")
        authkey = secrets.token_bytes(32)
        actor_cls = ray.remote(_RankActor)
        env = {k: os.environ[k] for k in ("FASTVIDEO_ATTENTION_BACKEND",) if k in os.environ}
        for rank in range(self.num_gpus):
            options: dict[str, Any] = dict(
                num_cpus=1, num_gpus=1 if self.use_cuda else 0, max_restarts=0, name=None,
                scheduling_strategy=PlacementGroupSchedulingStrategy(placement_group=self._pg,
                                                                     placement_group_bundle_index=rank))
            if env:
                options["runtime_env"] = {"env_vars": env}
            self._actors.append(actor_cls.options(**options).remote(authkey))
        deadline = time.monotonic() + self.ready_timeout
        try:
            wheres = ray.get([a.where.remote() for a in self._actors], timeout=max(1.0, deadline - time.monotonic()))
        except Exception as exc:  # noqa: BLE001 - GetTimeoutError, an actor that could not start
            raise WorkerError(f"the Ray actors for the ranks did not start: {type(exc).__name__}: {exc}") from None
        init_method = f"tcp://{wheres[0]['ip']}:{wheres[0]['rendezvous_port']}"
        hosts = sorted({w["ip"] for w in wheres})
        logger.info("Ray ranks on %d node(s) %s; rendezvous %s", len({w['node_id'] for w in wheres}),
                    ", ".join(hosts), init_method)
        for rank, (actor, where) in enumerate(zip(self._actors, wheres)):
            spec = self._spec(rank, init_method, None)
            if self.use_cuda:
                spec.local_rank = 0  # Ray sets CUDA_VISIBLE_DEVICES to the rank's own GPU
            ref = actor.serve.remote(spec, self.info, self.config)
            try:
                conn = Client((where["ip"], where["port"]), authkey=authkey)
            except (OSError, EOFError) as exc:
                raise WorkerError(f"could not connect to Ray rank {rank} on {where['ip']}:{where['port']} ({exc}); "
                                  "the hosts must reach each other on any TCP port") from None
            keepalive(conn)
            self.procs.append(RayRank(ray, actor, ref, conn, where, name=f"fastvideo-ray-rank-{rank}"))
            self.conns.append(conn)

    def _stop_workers(self, grace: float = 0.0) -> None:
        super()._stop_workers(grace)
        for proc in self.procs:
            proc.kill()  # the actor outlives a clean return of its serve call: free its bundle
        for actor in self._actors[len(self.procs):]:
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        if self._pg is not None:
            try:
                from ray.util.placement_group import remove_placement_group

                remove_placement_group(self._pg)
            except Exception:  # noqa: BLE001 - Ray already shut down
                pass
            self._pg = None
        _LIVE.discard(self)
        if self._owns_ray and not self._at_exit:
            self._owns_ray = False
            try:
                self._ray.shutdown()
            except Exception:  # noqa: BLE001
                pass


def _exit_shutdown(ref) -> None:
    executor = ref()
    if executor is not None:
        executor._at_exit = True
        try:
            executor.shutdown()
        except Exception:  # noqa: BLE001 - interpreter exit
            pass

"""distributed_executor_backend="ray" on a local multi-node Ray cluster (CPU ranks on gloo).

The cluster is a head node and a worker node, each its own set of processes (``ray.cluster_utils.Cluster``:
a GCS and a raylet per node) with one CPU each, so the two ranks must land on different nodes.  A driver
process attaches through ``RAY_ADDRESS`` (as a user's script or the studio's inference process does) and:

* generates with 2 ranks (SP over both, DiT weights sharded with FSDP): the frames equal the 1-rank video;
* kills the worker node's rank mid-run: ``WorkerError`` names the rank within seconds, the other rank is
  stopped too;
* a second driver is SIGKILLed: its ranks exit on their own (no orphans).

At the end the cluster is shut down and no process of it is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install ray; the test extra installs it)")

pytestmark = pytest.mark.timeout(180)
REPO = Path(__file__).resolve().parents[2]
KW = dict(height=48, width=48, num_frames=9, num_inference_steps=2, guidance_scale=5.0)

DRIVER = textwrap.dedent("""
    import json, os, signal, sys, time
    import numpy as np
    from fastvideo import VideoGenerator
    from fastvideo.errors import WorkerError

    model, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    kw = json.loads(sys.argv[4])
    gen = VideoGenerator.from_pretrained(model, num_gpus=2, cfg_parallel=False, use_fsdp_inference=True,
                                         distributed_executor_backend="ray")
    ex = gen.executor
    info = {"nodes": ex.nodes, "pids": ex.pids, "ips": [p.node_ip for p in ex.procs]}
    print("FVJSON", json.dumps(info), flush=True)
    if mode == "wait":
        time.sleep(300)
    result = gen.generate_video("a red fox in the snow", **kw, return_frames=True, save_video=False)
    np.save(out, result["frames"])
    info["fsdp"] = result["fsdp"]
    killed = []

    def kill_rank1(event):
        if event["type"] == "progress" and not killed:
            os.kill(ex.pids[1], signal.SIGKILL)
            killed.append(time.monotonic())

    try:
        gen.generate_video("a boat", **dict(kw, num_inference_steps=60), callback=kill_rank1, save_video=False)
        info["error"] = None
    except WorkerError as exc:
        info["error"] = str(exc)
        info["latency"] = time.monotonic() - killed[0]
    gen.shutdown()
    print("FVJSON", json.dumps(info), flush=True)
""")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pids, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < end:
        time.sleep(0.1)
    return not any(_alive(p) for p in pids)


def _descendants() -> set[int]:
    psutil = pytest.importorskip("psutil")
    return {c.pid for c in psutil.Process().children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE}


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    before = _descendants()
    small = {"object_store_memory": 128 * 2**20}  # the test moves kilobytes; keeps /dev/shm use small
    c = Cluster(initialize_head=True, connect=False,
                head_node_args={"num_cpus": 1, "resources": {"fv_head": 1}, **small})
    try:
        c.add_node(num_cpus=1, resources={"fv_worker": 1}, **small)
        yield c
    finally:
        c.shutdown()
    assert _wait_gone(_descendants() - before, 20), "processes of the Ray cluster were left behind"


def _driver(cluster, tiny_t2v, tmp_path, mode: str) -> subprocess.Popen:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "RAY_ADDRESS": cluster.address, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, str(script), str(tiny_t2v), str(tmp_path / "frames.npy"), mode,
                             json.dumps(KW)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_ranks_on_two_nodes_match_one_rank_and_a_killed_rank_is_reported(cluster, tiny_t2v, t2v_generator,
                                                                             tmp_path):
    proc = _driver(cluster, tiny_t2v, tmp_path, "run")
    try:
        out, err = proc.communicate(timeout=150)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-4000:]
    placed, info = (json.loads(line[7:]) for line in out.splitlines() if line.startswith("FVJSON "))
    assert len(set(placed["nodes"])) == 2, f"both ranks on one node: {placed}"
    frames = np.load(tmp_path / "frames.npy")
    want = t2v_generator.generate_video("a red fox in the snow", **KW, return_frames=True, save_video=False)
    assert np.array_equal(frames, want["frames"])  # 2 ranks on 2 nodes == the 1-rank video
    assert sum(info["fsdp"]["param_bytes_per_rank"]) == info["fsdp"]["full_param_bytes"]
    assert info["error"] and "Ray rank 1" in info["error"] and "died" in info["error"], info["error"]
    print(f"killed rank reported after {info['latency']:.2f} s: {info['error'].splitlines()[0]}")
    assert info["latency"] < 10
    assert _wait_gone(placed["pids"], 10), "a rank outlived its group"


def test_ranks_exit_when_the_driver_is_killed(cluster, tiny_t2v, tmp_path):
    proc = _driver(cluster, tiny_t2v, tmp_path, "wait")
    try:
        line = proc.stdout.readline()
        while line and not line.startswith("FVJSON "):
            line = proc.stdout.readline()
        assert line, proc.stderr.read()[-4000:]
        pids = json.loads(line[7:])["pids"]
        assert all(_alive(p) for p in pids)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        killed = time.monotonic()
        assert _wait_gone(pids, 15), "Ray ranks outlived their driver"
        print(f"ranks gone {time.monotonic() - killed:.2f} s after the driver was killed")
    finally:
        proc.kill()
        proc.wait()


def test_fastvideo_basic_ray_example_on_the_cluster(cluster, tiny_t2v, tmp_path, monkeypatch):
    """FastVideo's examples/inference/basic/basic_ray.py verbatim (num_gpus=2, use_fsdp_inference=True,
    distributed_executor_backend="ray"), only the model id replaced, attached to the cluster via RAY_ADDRESS."""
    import shutil

    from tests.compat.test_fastvideo_examples import run_example, videos

    model = shutil.copytree(tiny_t2v, tmp_path / "models" / "tiny-wan-t2v")  # the registry's tiny defaults
    monkeypatch.setenv("RAY_ADDRESS", cluster.address)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    proc = run_example("basic_ray.py", model, tmp_path, timeout=150)
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-2000:], proc.stderr[-4000:])
    assert len(videos(tmp_path / "video_samples")) == 2


def test_inference_process_attaches_with_ray_address_and_streams_the_video(cluster, tiny_t2v, tmp_path):
    """``python -m fastvideo.serve --ray-address ADDR`` (what the studio runs, locally or over SSH): a job with
    ``distributed_executor_backend: "ray"`` runs on the cluster's two nodes, and with ``stream_video`` the video
    comes back as file_chunk / file_end events whose bytes and SHA-256 match the file."""
    import hashlib

    from fastvideo.serve import protocol as P

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen([sys.executable, "-m", "fastvideo.serve", "--heartbeat", "0.5", "--ray-address",
                             cluster.address], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)
    try:
        proc.stdin.write(P.request("generate", "r1", job_id="1", model_path=str(tiny_t2v), num_gpus=2,
                                   options={"distributed_executor_backend": "ray", "cfg_parallel": False},
                                   stream_video=True,
                                   params={**KW, "prompt": "a red fox", "output_path": str(tmp_path / "out")}))
        proc.stdin.flush()
        decoder, events, data = P.FrameDecoder(), [], bytearray()
        deadline = time.monotonic() + 120
        while not any(e.type in ("result", "error") for e in events):
            assert time.monotonic() < deadline, [e.type for e in events]
            chunk = os.read(proc.stdout.fileno(), 1 << 16)
            assert chunk, "the inference process exited"
            for msg in decoder.feed(chunk):
                events.append(msg)
                if msg.type == "file_chunk":
                    assert msg["offset"] == len(data)
                    data += msg.payload
        result = events[-1]
        assert result.type == "result", result.header
        end = next(e for e in events if e.type == "file_end")
        assert [e.type for e in events].index("file_end") < [e.type for e in events].index("result")
        video = Path(result["video_path"])
        assert video.parent == tmp_path / "out" and bytes(data) == video.read_bytes()
        assert end["sha256"] == result["video_sha256"] == hashlib.sha256(data).hexdigest() and end["size"] == len(data)
        assert result["settings"]["pipeline_config"]["sp_size"] == 2
    finally:
        proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

"""VideoGenerator(num_gpus=N) on CPU ranks (gloo): layouts, parity, events, cancel, failures, cleanup.

References: the same tiny model in this process, batched CFG (the default, what
SP-only ranks compute) or ``batch_cfg=False`` (cond and uncond as two batch-1
passes, what CFG-parallel ranks compute).  Against the matching reference the
decoded frames are *identical*; across batchings they may differ by one 8-bit
level (batch-2 vs batch-1 matmuls round differently).  The fp32 1e-5 checks on
the DiT output itself are in test_sp_dit.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from fastvideo import GenerationCancelled, VideoGenerator
from fastvideo.errors import WorkerError
from fastvideo.worker.layout import resolve_layout
from fastvideo.worker.worker import FAULT_KEY

pytestmark = pytest.mark.timeout(240)

# 48x48, 9 frames -> latent 3 x 6 x 6 -> 27 tokens: does not divide by 2 (padding path on).
ODD = dict(height=48, width=48, num_frames=9, num_inference_steps=2, guidance_scale=5.0, return_frames=True,
           save_video=False)
# 64x64, 5 frames -> latent 2 x 8 x 8 -> 32 tokens: divides by 2 and 4.
EVEN = dict(ODD, height=64, width=64, num_frames=5)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def reference(tiny_t2v):
    gen = VideoGenerator.from_pretrained(str(tiny_t2v), num_gpus=1, batch_cfg=False)
    yield gen
    gen.shutdown()


@pytest.fixture(scope="module")
def sp2(tiny_t2v):
    gen = VideoGenerator.from_pretrained(str(tiny_t2v), num_gpus=2, cfg_parallel=False)
    pids = gen.executor.pids
    yield gen
    gen.shutdown()
    assert not any(_alive(p) for p in pids)


@pytest.fixture(scope="module")
def cfg2(tiny_t2v):
    gen = VideoGenerator.from_pretrained(str(tiny_t2v), num_gpus=2)  # default for 2: CFG parallel
    yield gen
    gen.shutdown()


def _max_diff(a, b) -> int:
    assert a.shape == b.shape
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


# -- layouts ------------------------------------------------------------------------------


def test_layout_defaults_and_overrides():
    assert resolve_layout(2) == (1, 2)  # CFG parallel
    assert resolve_layout(2, cfg_parallel=False) == (2, 1)
    assert resolve_layout(2, sp_size=2) == (2, 1)
    assert resolve_layout(4) == (2, 2)
    assert resolve_layout(4, sp_size=4) == (4, 1)
    assert resolve_layout(4, sp_size=2) == (2, 2)
    assert resolve_layout(3) == (3, 1)
    with pytest.raises(ValueError, match="even number"):
        resolve_layout(3, cfg_parallel=True)
    with pytest.raises(ValueError, match="does not fit"):
        resolve_layout(4, sp_size=3)
    with pytest.raises(ValueError, match="uses 8 GPUs"):
        resolve_layout(4, sp_size=4, cfg_parallel=True)
    with pytest.raises(ValueError, match="12 attention heads"):
        resolve_layout(8, cfg_parallel=False, num_heads=12)


def test_heads_not_divisible_fails_before_any_worker_starts(tiny_t2v):
    start = time.monotonic()
    with pytest.raises(ValueError, match="2 attention heads.*sp_size=3"):
        VideoGenerator.from_pretrained(str(tiny_t2v), num_gpus=3)  # odd count -> SP 3; the tiny DiT has 2 heads
    assert time.monotonic() - start < 5


def test_attention_backend_reaches_the_workers(tiny_t2v):
    """FLASH_ATTN is unavailable on a CPU: the workers (not the parent) must refuse it."""
    start = time.monotonic()
    with pytest.raises(WorkerError, match="rank \\d failed to start: ValueError: attention backend FLASH_ATTN"):
        VideoGenerator.from_pretrained(str(tiny_t2v), num_gpus=2, attention_backend="FLASH_ATTN")
    assert time.monotonic() - start < 30


# -- parity ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["odd_tokens", "even_tokens"])
def test_sp2_matches_single_process(sp2, t2v_generator, shape):
    """SP ranks batch cond + uncond like the default single-process run: identical frames."""
    kw = ODD if shape == "odd_tokens" else EVEN
    assert (sp2.executor.sp_size, sp2.executor.cfg_degree) == (2, 1)
    got = sp2.generate_video("a red fox in the snow", **kw)["frames"]
    want = t2v_generator.generate_video("a red fox in the snow", **kw)["frames"]
    assert _max_diff(got, want) == 0


def test_cfg_parallel_matches_single_process(cfg2, reference, t2v_generator):
    assert (cfg2.executor.sp_size, cfg2.executor.cfg_degree) == (1, 2)
    got = cfg2.generate_video("a red fox in the snow", **ODD)["frames"]
    assert _max_diff(got, reference.generate_video("a red fox in the snow", **ODD)["frames"]) == 0
    assert _max_diff(got, t2v_generator.generate_video("a red fox in the snow", **ODD)["frames"]) <= 1
    # Without guidance the two CFG ranks run SP over both ranks instead.
    kw = dict(ODD, guidance_scale=1.0)
    got = cfg2.generate_video("a red fox in the snow", **kw)["frames"]
    assert _max_diff(got, reference.generate_video("a red fox in the snow", **kw)["frames"]) == 0


def test_2cfg_x_2sp_on_four_ranks(tiny_t2v, reference):
    gen = VideoGenerator.from_pretrained(str(tiny_t2v), num_gpus=4)
    try:
        assert (gen.executor.sp_size, gen.executor.cfg_degree) == (2, 2)
        got = gen.generate_video("a red fox in the snow", **ODD)["frames"]
        assert _max_diff(got, reference.generate_video("a red fox in the snow", **ODD)["frames"]) == 0
    finally:
        pids = gen.executor.pids
        gen.shutdown()
    assert not any(_alive(p) for p in pids)


# -- events and cancel --------------------------------------------------------------------------


def test_progress_and_preview_events_stream_from_rank0(sp2):
    events, arrival = [], []
    result = sp2.generate_video("a boat", **dict(ODD, num_inference_steps=3),
                                callback=lambda e: (events.append(e), arrival.append(time.monotonic())))
    progress = [e for e in events if e["type"] == "progress"]
    previews = [e for e in events if e["type"] == "preview"]
    assert [e["step"] for e in progress] == [1, 2, 3] and all(e["total"] == 3 for e in progress)
    assert len(previews) == 3 and previews[0]["frames"].dtype == np.uint8
    assert result["frames"].shape == (9, 48, 48, 3) and result["video_path"] is None


def test_cancel_reaches_every_rank_and_generator_stays_usable(sp2):
    cancel = threading.Event()

    def on_event(e):
        if e["type"] == "progress" and e["step"] == 1:
            cancel.set()

    # The cancel travels parent -> workers while rank 0 computes on: it lands at step 2 or a little later.
    with pytest.raises(GenerationCancelled, match=r"before step \d+ of 12"):
        sp2.generate_video("a boat", **dict(ODD, num_inference_steps=12), callback=on_event, cancel_event=cancel)
    assert sp2.generate_video("a boat", **ODD)["frames"].shape == (9, 48, 48, 3)


# -- failures (these break the shared generators, so they run last) ----------------------------


def test_workers_exit_when_the_parent_is_killed(tiny_t2v, tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        from fastvideo import VideoGenerator
        if __name__ == "__main__":
            gen = VideoGenerator.from_pretrained({str(tiny_t2v)!r}, num_gpus=2, cfg_parallel=False)
            print(" ".join(map(str, gen.executor.pids)), flush=True)
            time.sleep(120)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        pids = [int(p) for p in line.split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        proc.kill()
        proc.wait()
        killed = time.monotonic()
        while any(_alive(p) for p in pids) and time.monotonic() < killed + 10:
            time.sleep(0.05)
        assert not any(_alive(p) for p in pids), "orphaned workers"
        print(f"workers gone {time.monotonic() - killed:.2f} s after the parent was killed")
    finally:
        proc.kill()


def test_worker_exception_carries_its_traceback(cfg2):
    pids = cfg2.executor.pids
    start = time.monotonic()
    with pytest.raises(WorkerError) as info:
        cfg2.generate_video("a boat", **ODD, extra={FAULT_KEY: 1})
    assert time.monotonic() - start < 10
    msg = str(info.value)
    assert "rank 1 raised RuntimeError: injected fault" in msg and "worker traceback" in msg and "worker.py" in msg
    assert not any(_alive(p) for p in pids)  # rank 0 was stuck in a collective: stopped


def test_worker_killed_mid_run_raises_within_seconds(sp2):
    pids = sp2.executor.pids
    killed_at = []

    def kill_rank1(e):
        if e["type"] == "progress" and not killed_at:
            os.kill(pids[1], signal.SIGKILL)
            killed_at.append(time.monotonic())

    with pytest.raises(WorkerError, match="rank 1 .*died: killed by signal SIGKILL"):
        sp2.generate_video("a boat", **dict(ODD, num_inference_steps=50), callback=kill_rank1)
    latency = time.monotonic() - killed_at[0]
    print(f"kill detected after {latency:.3f} s")
    assert latency < 10
    assert not any(_alive(p) for p in pids)  # the surviving rank was stopped too
    with pytest.raises(WorkerError, match="create a new VideoGenerator"):
        sp2.generate_video("a boat", **ODD)
    sp2.shutdown()
    sp2.shutdown()  # idempotent


def test_no_worker_processes_left():
    """Every worker this module started is gone (the shared generators broke above)."""
    try:
        import psutil
    except ImportError:
        pytest.skip("psutil not installed")
    leftovers = [c for c in psutil.Process().children(recursive=True)
                 if c.status() != psutil.STATUS_ZOMBIE and "multiprocessing.spawn" in " ".join(c.cmdline())]
    assert leftovers == []

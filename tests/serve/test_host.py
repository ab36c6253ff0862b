"""The inference process over its real pipes: the torch-free fake engine for the protocol's corners, the
real engine on tiny models (I2V, two ranks)."""

from __future__ import annotations

import os
import shutil
import threading
import time

import numpy as np

from fastvideo.serve import protocol as P
from fastvideo.serve.host import Outbox
from fastvideo.utils.media import read_metadata

FAKE = ("--engine", "fake_engine", "--test-hooks", "--heartbeat", "0.2")


def test_hello_heartbeat_and_generate(host_factory, fake_model, tmp_path):
    h = host_factory(*FAKE)
    hello = h.wait_type(P.EV_HELLO)
    assert hello["protocol_version"] == P.PROTOCOL_VERSION and hello["pid"] == h.proc.pid
    rid = h.send(P.REQ_LOAD_MODEL, model_path=str(fake_model), num_gpus=1, options={"vae_tiling": True})
    ready = h.wait_type(P.EV_READY, P.EV_ERROR)
    assert ready.type == P.EV_READY and ready["reply_to"] == rid
    assert ready["defaults"]["num_inference_steps"] == 6 and "t2v" in ready["tasks"]
    h.send(P.REQ_GENERATE, job_id="1", params={"prompt": "a red fox", "output_path": str(tmp_path / "out"),
                                               "num_inference_steps": 4})
    result = h.wait_type(P.EV_RESULT, P.EV_ERROR)
    assert result.type == P.EV_RESULT, result.header
    kinds = [m.type for m in h.all]
    assert kinds.count(P.EV_PROGRESS) == 4 and P.EV_PREVIEW in kinds and P.EV_STARTED in kinds
    assert any(m.type == P.EV_HEARTBEAT for m in h.all)
    stages = [m["name"] for m in h.all if m.type == P.EV_STAGE]
    assert stages[:2] == ["text_encoding", "denoising"]
    preview = next(m for m in h.all if m.type == P.EV_PREVIEW)
    assert P.decode_preview(preview).shape == (9, 8, 12, 3)
    assert os.path.isfile(result["video_path"])
    assert read_metadata(result["video_path"])["prompt"] == "a red fox"
    # The model stays loaded: a second load is answered from the cache.
    h.send(P.REQ_LOAD_MODEL, model_path=str(fake_model), num_gpus=1, options={"vae_tiling": True})
    assert h.wait_type(P.EV_READY)["cached"] is True
    assert h.decoder.skipped_bytes == 0


def test_stray_prints_do_not_corrupt_the_channel(host_factory):
    h = host_factory(*FAKE)
    h.wait_type(P.EV_HELLO)
    h.send(P.REQ_DEBUG, action="print", text="NOISE-FROM-A-LIBRARY")
    logs = []
    deadline = time.monotonic() + 10
    while len(logs) < 3 and time.monotonic() < deadline:
        m = h.wait_type(P.EV_LOG, timeout=10)
        if "NOISE-FROM-A-LIBRARY" in m["message"]:
            logs.append(m)
    assert len(logs) == 3 and all(m["source"] == "output" for m in logs)
    rid = h.send(P.REQ_PING)
    assert h.wait_type(P.EV_PONG)["reply_to"] == rid
    assert h.decoder.skipped_bytes == 0 and not h.decoder.errors


def test_cancel_stops_within_a_step(host_factory, fake_model, tmp_path):
    h = host_factory(*FAKE, env={"FAKE_ENGINE_STEP_DELAY": "0.2"})
    h.send(P.REQ_GENERATE, job_id="9", model_path=str(fake_model),
           params={"prompt": "slow", "num_inference_steps": 30, "output_path": str(tmp_path)})
    h.wait_for(lambda m: m.type == P.EV_PROGRESS and m["step"] == 2)
    t0 = time.monotonic()
    h.send(P.REQ_CANCEL, job_id="9")
    done = h.wait_type(P.EV_CANCELLED, P.EV_RESULT, P.EV_ERROR)
    assert done.type == P.EV_CANCELLED and done["job_id"] == "9"
    assert time.monotonic() - t0 < 1.0  # one step is 0.2 s
    assert done["step"] < 30
    # The generator stays usable.
    h.send(P.REQ_GENERATE, job_id="10", params={"prompt": "again", "num_inference_steps": 2,
                                                 "output_path": str(tmp_path)})
    assert h.wait_type(P.EV_RESULT, P.EV_ERROR).type == P.EV_RESULT


def test_errors_are_events_not_crashes(host_factory, fake_model, tmp_path):
    h = host_factory(*FAKE)
    h.send(P.REQ_GENERATE, job_id="1", model_path=str(fake_model),
           params={"prompt": "  ", "output_path": str(tmp_path)})
    err = h.wait_type(P.EV_ERROR, P.EV_RESULT)
    assert err.type == P.EV_ERROR and err["error_type"] == "InvalidRequest" and err["field"] == "prompt"
    h.send(P.REQ_GENERATE, job_id="2", params={"prompt": "x", "not_a_field": 1})
    err = h.wait_type(P.EV_ERROR)
    assert err["job_id"] == "2" and "not_a_field" in err["message"]
    h.send(P.REQ_LOAD_MODEL, model_path=str(tmp_path / "missing"))
    err = h.wait_type(P.EV_ERROR)
    assert "missing" in err["message"]
    rid = h.send(P.REQ_RUN_PARITY, args={"nope": 1})
    reply = h.wait_for(lambda m: m.get("reply_to") == rid)
    assert reply.type in (P.EV_ERROR, P.EV_PARITY_RESULT)
    rid = h.send(P.REQ_INSPECT, model_path=str(fake_model), component="transformer")
    reply = h.wait_for(lambda m: m.get("reply_to") == rid)
    assert reply.type in (P.EV_ERROR, P.EV_INSPECT_RESULT)
    h.proc.stdin.write(P.encode({"type": "frobnicate", "id": "x"}))
    h.proc.stdin.flush()
    err = h.wait_for(lambda m: m.get("reply_to") == "x")
    assert "unknown request type" in err["message"]
    assert h.proc.poll() is None


def test_shutdown_and_stdin_eof_end_the_process(host_factory, fake_model):
    h = host_factory(*FAKE)
    h.wait_type(P.EV_HELLO)
    h.send(P.REQ_SHUTDOWN)
    assert h.wait_type(P.EV_BYE)["reason"] == "shutdown requested"
    assert h.proc.wait(10) == 0
    # The studio dying (stdin closed) ends the worker too: no orphans.
    h2 = host_factory(*FAKE)
    h2.wait_type(P.EV_HELLO)
    h2.proc.stdin.close()
    assert h2.proc.wait(10) == 0


def test_outbox_newest_preview_replaces_unsent():
    r, w = os.pipe()
    out = Outbox(w, on_broken=lambda: None)
    big = np.zeros((4, 64, 128, 3), np.uint8)  # 98 KB: more than a pipe buffer, so the writer blocks
    for step in range(1, 21):
        out.send_preview(big + step, job_id="1", step=step, total=20)
    out.send({"type": "result", "job_id": "1"})
    dec = P.FrameDecoder()
    msgs: list[P.Message] = []
    done = threading.Event()

    def drain():
        while not any(m.type == "result" for m in msgs):
            msgs.extend(dec.feed(os.read(r, 1 << 20)))
        done.set()

    threading.Thread(target=drain, daemon=True).start()
    assert done.wait(10)
    previews = [m for m in msgs if m.type == "preview"]
    assert len(previews) < 20 and out.previews_replaced > 0
    assert previews[-1]["step"] == 20 and P.decode_preview(previews[-1])[0, 0, 0, 0] == 20
    assert msgs[-1].type == "result"  # order kept: the result comes after the last preview
    out.close()
    os.close(r)


def test_real_engine_image_to_video_on_tiny_model(host_factory, tmp_path):
    """The real VideoGenerator behind the protocol, on a tiny random-weight I2V model."""
    from fastvideo.testing.tiny import make_tiny_model

    model = make_tiny_model(tmp_path / "tiny-i2v", task="i2v", seed=0)
    frame = np.random.default_rng(0).integers(0, 255, (1, 48, 64, 3), dtype=np.uint8)
    image = tmp_path / "in.png"
    import subprocess

    from fastvideo.utils.media import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "64x48", "-i", "-",
                    str(image)], input=frame.tobytes(), check=True)
    h = host_factory("--heartbeat", "0.5")
    h.send(P.REQ_DESCRIBE, model_path=str(model))
    described = h.wait_type(P.EV_DESCRIBED, P.EV_ERROR, timeout=60)
    assert described.type == P.EV_DESCRIBED and described["tasks"] == ["i2v"]
    h.send(P.REQ_GENERATE, job_id="1", model_path=str(model), params={
        "prompt": "a cat", "image_path": str(image), "output_path": str(tmp_path / "out"), "width": 64,
        "height": 48, "num_frames": 5, "num_inference_steps": 3})
    result = h.wait_type(P.EV_RESULT, P.EV_ERROR, timeout=120)
    assert result.type == P.EV_RESULT, result.header
    assert os.path.isfile(result["video_path"]) and result["num_frames"] == 5
    assert any(m.type == P.EV_PREVIEW for m in h.all)


def test_real_engine_on_two_ranks_cancel_and_no_orphans(host_factory, tiny_t2v, tmp_path):
    """num_gpus=2 through the protocol (ranks are CPU processes over gloo without GPUs): a job, a cancel,
    the ranks' output kept off the channel, and no rank outliving a killed inference process."""
    import signal
    import subprocess

    h = host_factory("--heartbeat", "0.5")
    h.send(P.REQ_LOAD_MODEL, model_path=str(tiny_t2v), num_gpus=2)
    ready = h.wait_type(P.EV_READY, P.EV_ERROR, timeout=180)
    assert ready.type == P.EV_READY and ready["num_gpus"] == 2, ready.header
    params = {"prompt": "a cat", "output_path": str(tmp_path), "width": 64, "height": 48, "num_frames": 5}
    h.send(P.REQ_GENERATE, job_id="1", params={**params, "num_inference_steps": 3})
    assert h.wait_type(P.EV_RESULT, P.EV_ERROR, timeout=120).type == P.EV_RESULT
    h.send(P.REQ_GENERATE, job_id="2", params={**params, "num_inference_steps": 5000})
    h.wait_for(lambda m: m.type == P.EV_PROGRESS and m["job_id"] == "2" and m["step"] >= 3, timeout=60)
    h.send(P.REQ_CANCEL, job_id="2")
    done = h.wait_type(P.EV_CANCELLED, P.EV_RESULT, P.EV_ERROR, timeout=60)
    assert done.type == P.EV_CANCELLED and done["step"] < 5000
    assert h.decoder.skipped_bytes == 0
    assert any("rank" in m["message"] for m in h.all if m.type == P.EV_LOG)  # rank output arrived as logs
    if os.name != "posix" or not shutil.which("pgrep"):
        return
    group = subprocess.run(["pgrep", "-g", str(h.proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(group) >= 3  # the inference process and its two ranks share a process group
    os.kill(h.proc.pid, signal.SIGKILL)

    def alive(pid: str) -> bool:
        try:
            return open(f"/proc/{pid}/stat").read().split()[2] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 15
    while any(alive(p) for p in group) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in group if alive(p)], "a rank outlived its inference process"


def test_describe_is_answered_while_a_job_runs(host_factory, fake_model, tmp_path):
    h = host_factory(*FAKE, env={"FAKE_ENGINE_STEP_DELAY": "0.2"})
    h.send(P.REQ_GENERATE, job_id="1", model_path=str(fake_model),
           params={"prompt": "long", "num_inference_steps": 50, "output_path": str(tmp_path)})
    h.wait_for(lambda m: m.type == P.EV_PROGRESS)
    rid = h.send(P.REQ_DESCRIBE, model_path=str(fake_model))
    reply = h.wait_for(lambda m: m.get("reply_to") == rid, timeout=5)
    assert reply.type == P.EV_DESCRIBED and reply["defaults"]["num_frames"] == 9
    assert not any(m.type == P.EV_RESULT for m in h.all)  # the job is still running
    rid = h.send(P.REQ_DESCRIBE, model_path=str(tmp_path / "nope"))
    assert h.wait_for(lambda m: m.get("reply_to") == rid, timeout=5).type == P.EV_ERROR

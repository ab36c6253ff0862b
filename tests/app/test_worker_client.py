"""The studio's side of the channel against the fake engine (fast): hang detection,
preview coalescing, stray output, clean shutdown."""

from __future__ import annotations

import os
import time
from pathlib import Path

from fastvideo.serve import protocol as P


def test_hung_worker_is_detected_and_replaced(make_studio, make_window, fake_model, qtbot):
    studio = make_studio("fake", hang_timeout=1.5, env={"FAKE_ENGINE_STEP_DELAY": "0.1"})
    win = make_window(studio)
    g = win.generate
    g.set_model(str(fake_model))
    qtbot.waitUntil(lambda: str(fake_model) in g.model_info, timeout=20000)
    g.prompt.setPlainText("will hang")
    g.steps.setValue(100)
    steps = []
    studio.runner.job_progress.connect(lambda j, s, t, e, r: steps.append(s))
    job_id = g.generate()
    qtbot.waitUntil(lambda: len(steps) >= 1, timeout=20000)
    pid = studio.client.pid()
    studio.client.send(P.REQ_DEBUG, action="hang")  # heartbeats stop; the job never finishes
    # The fake engine still prints progress; a real hang is silence: stop it from talking.
    import signal

    os.kill(pid, signal.SIGSTOP)
    t0 = time.monotonic()
    qtbot.waitUntil(lambda: studio.db.get(job_id).state == "failed", timeout=15000)
    assert time.monotonic() - t0 < 10  # 1.5 s timeout + 0.5 s watchdog period, with room for a loaded machine
    assert "stopped responding" in studio.db.get(job_id).error
    assert "stopped responding" in win.banner.text()
    time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    g.steps.setValue(2)
    g.prompt.setPlainText("fine again")
    nxt = g.generate()
    qtbot.waitUntil(lambda: studio.db.get(nxt).state == "done", timeout=20000)
    assert studio.client.pid() != pid


def test_previews_coalesce_and_stray_output_is_logged(make_studio, make_window, fake_model, qtbot):
    studio = make_studio("fake", env={"FAKE_ENGINE_STEP_DELAY": "0.0"})
    win = make_window(studio)
    g = win.generate
    g.set_model(str(fake_model))
    qtbot.waitUntil(lambda: str(fake_model) in g.model_info, timeout=20000)
    logs = []
    studio.runner.log.connect(lambda e: logs.append(e["message"]))
    studio.client.send(P.REQ_DEBUG, action="print", text="LIBRARY-NOISE")
    qtbot.waitUntil(lambda: sum("LIBRARY-NOISE" in m for m in logs) >= 3, timeout=10000)
    previews = []
    studio.runner.job_preview.connect(lambda j, f, s, t, fps: previews.append(s))
    g.prompt.setPlainText("fast steps")
    g.steps.setValue(200)
    job_id = g.generate()
    qtbot.waitUntil(lambda: studio.db.get(job_id).state == "done", timeout=30000)
    assert previews and previews[-1] == 200 and previews == sorted(previews)
    assert studio.client._decoder.skipped_bytes == 0
    assert "LIBRARY-NOISE" in win.queue.log_view.toPlainText()


def test_invalid_request_from_engine_is_shown_inline(make_studio, make_window, fake_model, qtbot):
    studio = make_studio("fake")
    win = make_window(studio)
    g = win.generate
    g.set_model(str(fake_model))
    # Bypass the form's own check to see the engine's InvalidRequest come back to the field.
    job_id = studio.runner.submit(prompt="", model_path=str(fake_model), params={"width": 64, "height": 48,
                                                                                  "output_path": str(fake_model)})
    qtbot.waitUntil(lambda: studio.db.get(job_id).state == "failed", timeout=20000)
    job = studio.db.get(job_id)
    assert job.error_field == "prompt" and "prompt is empty" in job.error
    assert "prompt is empty" in g.field_error("prompt").lower()


def test_close_shuts_the_worker_down(make_studio, make_window, fake_model, qtbot):
    studio = make_studio("fake")
    win = make_window(studio)
    win.generate.set_model(str(fake_model))
    qtbot.waitUntil(lambda: studio.client.state == "running", timeout=20000)
    pid = studio.client.pid()
    win.close()
    assert studio.client.proc is None and studio.client.state == "stopped"
    time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_call_routes_replies_for_parity_and_inspect(make_studio, fake_model, qtbot):
    studio = make_studio("fake")
    replies = []
    studio.runner.call(P.REQ_INSPECT, replies.append, model_path=str(fake_model), component="transformer")
    studio.runner.call(P.REQ_RUN_PARITY, replies.append, args={"no_such_argument": 1})
    studio.runner.call(P.REQ_PING, replies.append)
    qtbot.waitUntil(lambda: len(replies) == 3, timeout=30000)
    kinds = sorted(r["type"] for r in replies)
    assert "pong" in kinds
    for r in replies:
        assert r["type"] in ("inspect_result", "parity_result", "error", "pong")
        if r["type"] == "error":
            assert r["message"]  # a clear reason, never a crash
    assert studio.client.state == "running"


def test_image_and_video_inputs_reach_the_engine(make_studio, make_window, fake_model, qtbot, tmp_path):
    import numpy as np

    from fastvideo.utils.media import read_metadata, write_video

    frames = (np.arange(5 * 48 * 64 * 3) % 251).astype(np.uint8).reshape(5, 48, 64, 3)
    clip = write_video(frames, tmp_path / "input.mp4", fps=8)
    image = tmp_path / "input.png"
    from PySide6.QtGui import QImage

    QImage(64, 48, QImage.Format.Format_RGB888).save(str(image))
    studio = make_studio("fake")
    win = make_window(studio)
    g = win.generate
    g.set_model(str(fake_model))
    qtbot.waitUntil(lambda: str(fake_model) in g.model_info, timeout=20000)
    g.prompt.setPlainText("animate this")
    g.task_combo.setCurrentIndex(1)  # Image -> Video
    g.image_picker.set_path(str(image))
    qtbot.waitUntil(lambda: g.image_picker.info.text() == "64×48", timeout=10000)  # thumbnail loaded
    assert not g.image_picker.thumb.pixmap().isNull()
    i2v = g.generate()
    g.task_combo.setCurrentIndex(2)  # Video -> Video
    g.video_picker.set_path(str(clip))
    g.strength.setValue(0.55)
    qtbot.waitUntil(lambda: "8 fps" in g.video_picker.info.text(), timeout=10000)
    v2v = g.generate()
    qtbot.waitUntil(lambda: studio.db.get(v2v).state == "done", timeout=30000)
    a, b = studio.db.get(i2v), studio.db.get(v2v)
    assert a.state == "done" and a.task == "i2v" and a.params["image_path"] == str(image)
    assert b.task == "v2v" and b.params["video_path"] == str(clip) and b.params["strength"] == 0.55
    assert read_metadata(b.output_path)["video_path"] == str(clip)
    # Reusing the V2V job brings the mode, the picker and the strength back.
    g.task_combo.setCurrentIndex(0)
    g.apply_job_settings(b.settings())
    assert g.task() == "v2v" and g.video_picker.path() == str(clip) and g.strength.value() == 0.55


def test_crash_reason_keeps_only_the_explaining_output():
    from app.services.worker_client import crash_detail

    assert crash_detail(["loaded /m in 3 s", "generating"]) == ""
    lines = ["loaded", "Traceback (most recent call last):", '  File "x.py"', "RuntimeError: CUDA out of memory"]
    assert crash_detail(lines).splitlines()[0].startswith("Traceback")
    assert crash_detail(lines).endswith("CUDA out of memory")


def test_protocol_version_mismatch_is_refused(qtbot, monkeypatch):
    from app.services.worker_client import WorkerClient

    monkeypatch.setattr(P, "PROTOCOL_VERSION", 99)
    client = WorkerClient(extra_args=["--engine", "fake_engine"],
                          env={"PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]),
                                                              str(Path(__file__).parents[1] / "serve")])})
    with qtbot.waitSignal(client.crashed, timeout=20000) as sig:
        client.start()
    assert "protocol version 1, the studio needs 99" in sig.args[0]
    assert client.state == "stopped" and client.proc is None


def test_unreadable_model_is_reported_next_to_the_picker(make_studio, make_window, tmp_path, qtbot):
    studio = make_studio("fake")
    win = make_window(studio)
    g = win.generate
    folder = tmp_path / "not-yet-a-model"
    folder.mkdir()
    (folder / "notes.txt").write_text("")
    g.set_model(str(folder / "notes.txt"))
    assert "is a file" in g.field_error("model")
    g.set_model(str(folder))  # the inference process says what is wrong with it
    qtbot.waitUntil(lambda: "model_index.json" in g.field_error("model"), timeout=20000)
    g.prompt.setPlainText("x")
    assert g.generate() is None and "model_index.json" in g.field_error("model")
    assert studio.db.counts()["queued"] == 0
    (folder / "model_index.json").write_text('{"_class_name": "FakePipeline"}')
    g._model_chosen()  # chosen again (e.g. from the list): the error is dropped and the worker asked again
    qtbot.waitUntil(lambda: str(folder) in g.model_info and g.field_error("model") == "", timeout=20000)
    assert g.generate() is not None

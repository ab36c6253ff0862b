"""The studio process killed outright (SIGKILL) in the middle of a job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import os, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.services.studio import Studio
data, model = sys.argv[1], sys.argv[2]
studio = Studio(data, worker_args=["--engine", "fake_engine"], worker_env={"PYTHONPATH": sys.argv[3],
                "FAKE_ENGINE_STEP_DELAY": "0.1"})
job = studio.runner.submit(prompt="killed midway", model_path=model,
                           params={"num_inference_steps": 1000, "output_path": data})
def progress(j, step, *rest):
    if step == 2:
        print("RUNNING", job, studio.client.pid(), flush=True)
studio.runner.job_progress.connect(progress)
while True:
    app.processEvents()
    time.sleep(0.01)
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_killed_studio_leaves_an_interrupted_job_and_no_worker(tmp_path, fake_model):
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(data), str(fake_model), str(ROOT / "tests" / "serve")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))
    try:
        line = ""
        deadline = time.monotonic() + 60
        while not line.startswith("RUNNING") and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise AssertionError(proc.stderr.read())
        _, job_id, worker_pid = line.split()
        job_id, worker_pid = int(job_id), int(worker_pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # The worker notices its studio is gone (stdin closed) and exits by itself: no orphan.
    deadline = time.monotonic() + 15
    while Path(f"/proc/{worker_pid}").exists() and time.monotonic() < deadline:
        stat = Path(f"/proc/{worker_pid}/stat").read_text() if Path(f"/proc/{worker_pid}").exists() else ""
        if stat and stat.split()[2] == "Z":
            break
        time.sleep(0.1)
    alive = Path(f"/proc/{worker_pid}").exists() and Path(f"/proc/{worker_pid}/stat").read_text().split()[2] != "Z"
    assert not alive, "the inference process outlived the killed studio"
    # The next start shows the job as interrupted, not running (the stale lock is taken over).
    from app.services.studio import Studio

    studio = Studio(data, worker_enabled=False)
    try:
        job = studio.db.get(job_id)
        assert job.state == "interrupted" and "closed or stopped" in job.error
        assert studio.db.interrupted_on_open == [job_id]
    finally:
        studio.close()

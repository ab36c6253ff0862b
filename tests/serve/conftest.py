from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fastvideo.serve import protocol as P

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


class HostProcess:
    """Runs ``python -m fastvideo.serve`` and collects its events (no Qt)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None):
        full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]), **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "fastvideo.serve", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, cwd=str(ROOT))
        self.events: queue.Queue = queue.Queue()
        self.all: list[P.Message] = []
        self.decoder = P.FrameDecoder()
        self.stderr = b""
        self._ids = 0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        while True:
            data = self.proc.stdout.read1(65536)
            if not data:
                self.events.put(None)
                return
            for m in self.decoder.feed(data):
                self.all.append(m)
                if m.type != P.EV_HEARTBEAT:
                    self.events.put(m)

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.stderr += line

    def send(self, type_: str, **fields) -> str:
        self._ids += 1
        rid = f"t{self._ids}"
        self.proc.stdin.write(P.request(type_, rid, **fields))
        self.proc.stdin.flush()
        return rid

    def wait_for(self, pred, timeout: float = 30.0) -> P.Message:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out; events so far: {[m.header for m in self.all][-20:]}")
            try:
                m = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if m is None:
                raise AssertionError(f"worker exited ({self.proc.wait()}); stderr: {self.stderr.decode()[-2000:]}")
            if pred(m):
                return m

    def wait_type(self, *types: str, timeout: float = 30.0) -> P.Message:
        return self.wait_for(lambda m: m.type in types, timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def host_factory():
    made: list[HostProcess] = []

    def make(*args: str, env: dict[str, str] | None = None) -> HostProcess:
        h = HostProcess(*args, env=env)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()

"""Waiting in the studio's GUI tests: the Qt event loop keeps running while a condition is awaited."""

from __future__ import annotations

import time


def wait_until(qtbot, pred, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        qtbot.wait(20)

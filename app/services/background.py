"""Run blocking work (decoding a video, reading metadata) off the GUI thread.

``run_in_background(fn, on_done, on_error)`` calls ``fn()`` in a worker thread
and delivers the result to ``on_done`` on the GUI thread (through a queued Qt
signal), so slow disk or ffmpeg work never freezes the window.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

_lock = threading.Lock()
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_bridge: _Bridge | None = None


class _Bridge(QObject):
    done = Signal(object, object, object)  # callback, value, is_error

    def __init__(self) -> None:
        super().__init__()
        self.done.connect(self._deliver)

    def _deliver(self, callback: Callable[[Any], None] | None, value: Any, _is_error: object) -> None:
        if callback is None:
            return
        try:
            callback(value)
        except RuntimeError as exc:  # the widget that asked was deleted meanwhile
            if "already deleted" not in str(exc):
                raise


def _get() -> tuple[concurrent.futures.ThreadPoolExecutor, _Bridge]:
    global _pool, _bridge
    with _lock:
        if _bridge is None:
            _bridge = _Bridge()  # created on the GUI thread (first call comes from there)
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="studio-bg")
        return _pool, _bridge


def shutdown(wait: bool = True) -> None:
    """Finish (or drop) queued background work and free the bridge while the QApplication still exists.

    Called when the studio closes: a worker thread must not emit into a bridge that Python frees during
    interpreter finalization, after Qt is gone.  A later :func:`run_in_background` starts afresh.
    """
    global _pool, _bridge
    with _lock:
        pool, bridge = _pool, _bridge
        _pool = _bridge = None
    if pool is not None:
        pool.shutdown(wait=wait, cancel_futures=True)
    if bridge is not None:
        bridge.done.disconnect(bridge._deliver)
        bridge.deleteLater()


def run_in_background(fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
                      on_error: Callable[[BaseException], None] | None = None) -> concurrent.futures.Future:
    pool, bridge = _get()

    def work() -> Any:
        try:
            value = fn()
        except BaseException as exc:  # delivered to on_error on the GUI thread
            bridge.done.emit(on_error, exc, True)
            return None
        bridge.done.emit(on_done, value, False)
        return value

    return pool.submit(work)

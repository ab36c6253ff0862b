"""Is this PySide6 safe on this Python?  A reference-count probe.

PySide6/shiboken6 6.12.0 on CPython 3.10 and 3.11 drops a reference to ``None`` on
every Qt call that returns nothing (``setText``, ``update``, ``setValue``...) and to
``True``/``False`` on bool results of Python overrides called from C++ (``eventFilter``,
``event``).  On 3.12+ these objects are immortal and nothing shows; on 3.10/3.11 the
interpreter aborts with ``Fatal Python error: none_dealloc`` (or ``bool_dealloc``) once
a count reaches zero: minutes into a looping video, or while the window closes.

Measured on PySide6 6.6.3.1, 6.7.3, 6.8.3, 6.9.3, 6.10.3, 6.11.0-6.11.3 and 6.12.0 with
CPython 3.10.13, 3.11.7, 3.12.1 and 3.13.0: only 6.12.0 on 3.10/3.11 is affected
(``docs/packaging.md``).  ``pyproject.toml`` and ``packaging/requirements-build.txt``
keep those combinations out; :func:`check` refuses to start the studio on one that
got in anyway (a hand-made environment), rather than aborting later and losing work.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeResult:
    pyside: str
    python: str
    calls: int
    none_delta: int
    true_delta: int
    false_delta: int

    @property
    def affected(self) -> bool:
        """A leak of at least half a reference a call (noise is a few references, whatever ``calls``)."""
        return min(self.none_delta, self.true_delta, self.false_delta) <= -self.calls // 2

    def describe(self) -> str:
        return (f"PySide6 {self.pyside} on Python {self.python}: reference counts of None/True/False changed by "
                f"{self.none_delta}/{self.true_delta}/{self.false_delta} over {self.calls} Qt calls each")


def _ignore(_value) -> None:
    pass


def probe(calls: int = 200) -> ProbeResult:
    """Make ``calls`` void Qt calls, bool-returning calls and Python overrides called from C++, and measure how
    the reference counts of ``None``, ``True`` and ``False`` moved.  Needs a ``QApplication``; keeps nothing
    it creates, so an unaffected build shows deltas of (about) zero."""
    import PySide6
    from PySide6.QtCore import QCoreApplication, QEvent, QObject, Signal
    from PySide6.QtWidgets import QApplication, QLabel, QWidget

    if QApplication.instance() is None:
        raise RuntimeError("qtcheck.probe() needs a QApplication")

    class _Filter(QObject):
        def eventFilter(self, obj, event):  # noqa: N802 (Qt name) - bool result from a Python override
            return False

    class _Widget(QWidget):
        def event(self, event):  # bool result from a Python override
            return super().event(event)

    class _Emitter(QObject):
        fired = Signal(object)

    label, widget, flt, emitter = QLabel(), _Widget(), _Filter(), _Emitter()
    widget.installEventFilter(flt)
    emitter.fired.connect(_ignore)
    event_type = QEvent.Type.User

    def counts() -> tuple[int, int, int]:
        return sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)

    before = counts()
    for i in range(calls):
        label.setText("x" if i % 2 else "y")  # void
        widget.update()  # void
        widget.setEnabled(True)  # void
        QCoreApplication.sendEvent(widget, QEvent(event_type))  # eventFilter -> False, event() -> bool
        emitter.fired.emit(True)  # bools through a signal to a Python slot
        emitter.fired.emit(False)
    after = counts()
    widget.removeEventFilter(flt)
    emitter.fired.disconnect(_ignore)
    label.deleteLater()
    widget.deleteLater()
    d = [a - b for a, b in zip(after, before)]
    return ProbeResult(PySide6.__version__, ".".join(map(str, sys.version_info[:3])), calls, d[0], d[1], d[2])


def problem() -> str | None:
    """A message saying what is wrong and what to do when this PySide6 would crash on this Python, else None."""
    result = probe()
    if not result.affected:
        return None
    return (f"{result.describe()}. This PySide6 build drops references on every Qt call and the studio would "
            f"abort within minutes (Fatal Python error: none_dealloc). Install a tested version into this "
            f"environment: pip install 'pyside6>=6.6,<6.12' (or use Python 3.12 or newer). Set "
            f"FASTVIDEO_STUDIO_SKIP_QT_CHECK=1 to start anyway.")


if __name__ == "__main__":  # python -m app.qtcheck: print the probe for this environment, exit 1 if affected
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    _app = QApplication([])
    res = probe()
    print(res.describe() + ("  -> AFFECTED" if res.affected else "  -> ok"), flush=True)
    # Leave without finalizing: on an affected build the interpreter may abort at exit.
    os._exit(1 if res.affected else 0)

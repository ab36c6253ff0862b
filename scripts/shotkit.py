"""What the screenshot scripts (and the real-window tests) share: a private Xvfb display, re-running a script
inside it on Qt's xcb platform, and waiting on / grabbing the real window.

    xvfb, display = start_xvfb()                       # -displayfd: Xvfb picks a free display number
    run_inside_xvfb(__file__, ["--out", out], display=None)  # the script again, with --inner, on that display
    shots = Shots(app, window, out_folder, wanted)       # .pump(seconds, until, what), .grab(name, widget)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZE = (1280, 820)  # the window size of every screenshot in docs/screenshots


class XvfbError(RuntimeError):
    pass


def start_xvfb(screen: str = "1600x1000x24") -> tuple[subprocess.Popen, str]:
    """A private Xvfb server and its display (``":N"``); XvfbError when it is missing or does not start."""
    exe = shutil.which("Xvfb")
    if exe is None:
        raise XvfbError("Xvfb is not installed (bash scripts/ci-system-deps.sh installs it)")
    read, write = os.pipe()
    proc = subprocess.Popen([exe, "-displayfd", str(write), "-screen", "0", screen, "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(write)
    number = b""
    with os.fdopen(read, "rb") as f:
        while not number.endswith(b"\n"):
            chunk = f.read(1)
            if not chunk:
                break
            number += chunk
    if not number.strip():
        proc.kill()
        raise XvfbError(f"Xvfb did not start: {proc.communicate(timeout=10)[1].decode(errors='replace')[-2000:]}")
    return proc, f":{int(number)}"


def stop_xvfb(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_inside_xvfb(script: str, args: list[str], display: str | None = None, timeout: float = 900) -> int:
    """Run ``script --inner ARGS`` with the real window on xcb: on ``display``, else on a private Xvfb."""
    try:
        xvfb, display = (None, display) if display else start_xvfb()
    except XvfbError as exc:
        raise SystemExit(str(exc)) from None
    try:
        env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb", PYTHONPATH=str(ROOT))
        return subprocess.run([sys.executable, script, "--inner", *args], env=env, cwd=str(ROOT),
                              timeout=timeout).returncode
    finally:
        stop_xvfb(xvfb)


class Shots:
    """Waits on the real window (processing its events) and grabs it into ``out/<name>.png`` (temp, rename)."""

    def __init__(self, app, window, out: Path, wanted: list[str] | None = None):
        self.app, self.window, self.out, self.wanted = app, window, Path(out), wanted
        self.written: list[str] = []
        self.out.mkdir(parents=True, exist_ok=True)

    def pump(self, seconds: float, until=lambda: False, what: str = "") -> None:
        """Process events until ``until()`` or ``seconds`` pass (then SystemExit naming ``what``, if given)."""
        end = time.monotonic() + seconds
        while not until():
            if time.monotonic() > end:
                if what:
                    raise SystemExit(f"timed out waiting for {what}")
                return
            self.app.processEvents()
            time.sleep(0.02)

    def grab(self, name: str, widget=None) -> None:
        if self.wanted is not None and name not in self.wanted:
            return
        self.pump(0.6)
        tmp = self.out / f".{name}.tmp.png"
        if not (widget or self.window).grab().save(str(tmp), "PNG"):
            raise SystemExit(f"could not write {tmp}")
        os.replace(tmp, self.out / f"{name}.png")
        self.written.append(name)
        print(f"wrote {self.out / name}.png", flush=True)

"""``fastvideo-studio``: start the desktop app.

    fastvideo-studio [--model PATH] [--data-dir DIR]
    fastvideo-studio --screenshot FILE [--panel NAME]   # render headless to a PNG and exit
    fastvideo-studio --setup-runtime [--wheels DIR] [--torch cpu|cuda]   # packaged app: set up the engine
    fastvideo-studio --check-system   # are the X11 libraries Qt needs installed? (also checked at every start)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fastvideo-studio", description="FastVideo Studio: generate videos on your GPUs.")
    p.add_argument("--model", metavar="PATH", help="model folder (or repo id) to select at start")
    p.add_argument("--data-dir", metavar="DIR",
                   help="keep settings, job database and outputs here (default: the user data folder; "
                        "also FASTVIDEO_STUDIO_DATA)")
    p.add_argument("--screenshot", metavar="FILE", help="render the window to this PNG and exit (works headless)")
    p.add_argument("--panel", metavar="NAME", default="generate",
                   help="panel to show: generate, queue, history, settings, models, mapping, parity (default generate)")
    p.add_argument("--size", metavar="WxH", default="1280x820", help="window size for --screenshot")
    p.add_argument("--check-qt", action="store_true",
                   help="check that this PySide6 is safe on this Python (reference-count probe), print it and exit")
    p.add_argument("--check-system", action="store_true",
                   help="check that the system libraries Qt's X11 (xcb) plugin needs are installed, print the "
                        "install command for any that are missing, and exit (0 ok, 4 missing)")
    p.add_argument("--setup-runtime", action="store_true",
                   help="set up (or repair) the inference runtime in the terminal and exit (packaged app)")
    from app.bootstrap.cli import add_arguments

    add_arguments(p)
    return p.parse_args(argv)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w < 320 or h < 240:
            raise ValueError
        return w, h
    except ValueError:
        raise SystemExit(f"fastvideo-studio: --size must look like 1280x820 (at least 320x240), got {text!r}") from None


def create_app():
    """The QApplication with the studio's style and icon (made once per process)."""
    from PySide6.QtWidgets import QApplication

    from app.resources import resource_path, stylesheet

    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("FastVideo Studio")
        app.setOrganizationName("FastVideo")
        app.setStyle("Fusion")
        app.setStyleSheet(stylesheet())
        from PySide6.QtGui import QColor, QPalette

        palette = app.palette()  # links in rich-text labels: readable on the dark theme (the default is navy)
        palette.setColor(QPalette.ColorRole.Link, QColor("#6fb4ff"))
        palette.setColor(QPalette.ColorRole.LinkVisited, QColor("#9ccbff"))
        app.setPalette(palette)
        icon = resource_path("icon.svg")
        if icon:
            from PySide6.QtGui import QIcon

            app.setWindowIcon(QIcon(str(icon)))
    return app


def create_window(data_dir: str | None = None, start_worker: bool = True, model: str | None = None):
    """Build the studio (settings, job database, inference-process client) and its main window.

    ``start_worker=False`` never starts the inference process (screenshots, checks).
    """
    create_app()
    from app.services.studio import Studio
    from app.window import MainWindow

    studio = Studio(data_dir, worker_enabled=start_worker)
    if model:
        studio.settings.remember_model(model)
    window = MainWindow(studio)
    if model:
        window.generate.set_model(model, apply_defaults=True)
    return window


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.setup_runtime:  # the packaged app's engine (torch + fastvideo) in its own environment
        from app.bootstrap.cli import setup_runtime

        return setup_runtime(args, args.data_dir)
    from app import platform_check  # before any Qt library loads: name missing X11 libraries, don't abort

    if args.check_system:
        return platform_check.main_check_system()
    missing = platform_check.preflight()
    if missing:
        return missing
    from PySide6.QtWidgets import QApplication

    if (args.screenshot or args.check_qt) and not os.environ.get("QT_QPA_PLATFORM") and not os.environ.get("DISPLAY") \
            and sys.platform.startswith("linux"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"

    create_app()
    from app import qtcheck

    if args.check_qt:
        result = qtcheck.probe()
        print(result.describe() + (": AFFECTED" if result.affected else ": ok"), flush=True)
        return 1 if result.affected else 0
    if not os.environ.get("FASTVIDEO_STUDIO_SKIP_QT_CHECK"):
        problem = qtcheck.problem()
        if problem:
            print(f"fastvideo-studio: {problem}", file=sys.stderr, flush=True)
            return 3

    from app.bootstrap import is_frozen

    if is_frozen() and not args.screenshot:  # first launch of a packaged app: make or repair the runtime
        from app.bootstrap.dialog import ensure_runtime

        create_app()
        ensure_runtime(data_dir=args.data_dir, wheels_dir=args.wheels, torch_build=args.torch,
                       python=args.runtime_python)
    if is_frozen():
        from app.bootstrap.runtime import use_runtime_ffmpeg

        use_runtime_ffmpeg(args.data_dir)  # the bundle leaves ffmpeg to the runtime environment
    try:
        window = create_window(data_dir=args.data_dir, start_worker=not args.screenshot, model=args.model)
    except Exception as exc:  # e.g. a database from a newer studio
        print(f"fastvideo-studio: {exc}", file=sys.stderr)
        return 2
    app = QApplication.instance()
    studio = window.studio
    if args.panel not in window.panels:
        print(f"fastvideo-studio: unknown panel {args.panel!r}; panels: {', '.join(window.panels)}",
              file=sys.stderr)
        window.close()
        return 2
    window.show_panel(args.panel)

    if args.screenshot:
        return screenshot(app, window, studio, args.screenshot, _parse_size(args.size))

    window.show()
    from app import autodrive

    if autodrive.requested():  # hidden test hook: one generation through this window, then close
        autodrive.install(window)
    run_event_loop(app, window)
    shutdown(app, window)
    return 0


def run_event_loop(app, window) -> None:
    """Run the studio (asyncio on Qt's loop) until the last window closes."""
    import qasync

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    closed = asyncio.Event()
    app.aboutToQuit.connect(closed.set)
    # Ctrl+C in the terminal closes the window cleanly (the worker is shut down).
    previous = signal.signal(signal.SIGINT, lambda *_: window.close())
    try:
        with loop:
            loop.run_until_complete(closed.wait())
    finally:
        signal.signal(signal.SIGINT, previous)
        app.aboutToQuit.disconnect(closed.set)
        asyncio.set_event_loop(None)


def shutdown(app, window) -> None:
    """Tear the studio down in an order that leaves nothing for interpreter finalization.

    The window closes first (the inference process is stopped, the job database closed); the background
    threads finish and their signal bridge goes while Qt still exists; the window's C++ objects are deleted
    by Qt's event loop, not by Python's garbage collector; last, the QApplication itself is shut down.
    Otherwise Python frees these objects at exit in an arbitrary order, after Qt's own teardown.
    """
    import gc

    from PySide6.QtCore import QCoreApplication, QEvent

    from app.services import background

    if not window._closed:
        window.close()
    background.shutdown(wait=True)
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    app.processEvents()
    del window
    gc.collect()
    app.shutdown()


def screenshot(app, window, studio, path: str, size: tuple[int, int]) -> int:
    """Lay out the window off screen, let pending work (thumbnails, videos) land, save a PNG."""
    import time

    window.resize(*size)
    window.show()
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.png")
    ok = window.grab().save(str(tmp), "PNG")
    if ok:
        os.replace(tmp, out)
    shutdown(app, window)
    if not ok:
        print(f"fastvideo-studio: could not write {out}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

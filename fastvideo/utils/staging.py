"""Staging folders: write a folder next to its final place, rename it there only when complete.

A staging folder (``.<name>.converting-<tag>``) holds a marker with its creator's pid and host until
just after the final rename, so a later run can remove what a killed process left
(:func:`clean_stale_staging`).  Torch-free: the converter (``fastvideo.conversion``) and the studio's
hub-ready folders (``app.services.conversion``) write through :func:`staging_folder`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STAGING_MARKER = ".fastvideo-convert.json"  # inside our staging folders: who created it (pid, host)
_STAGING_NAME = re.compile(r"^\.(?P<output>.+)\.(?P<kind>converting|old)-(?P<tag>[A-Za-z0-9_]+)$")


def _process_start(pid: int) -> str | None:
    """Start time of ``pid`` (clock ticks since boot, Linux), to tell a reused pid apart; None if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _process_gone(pid: int, start: str | None) -> bool:
    """True only when ``pid`` certainly no longer runs the process that wrote the marker."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):  # zombie: dead, not yet reaped
            return True
        return start is not None and fields[19] != start  # the pid was reused
    except FileNotFoundError:
        return True
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. PermissionError: someone's process
        return False
    return False


def _write_marker(folder: Path, kind: str) -> None:
    data = {"tool": "fastvideo convert", "kind": kind, "pid": os.getpid(), "host": socket.gethostname(),
            "process_start": _process_start(os.getpid()), "created": time.time()}
    (folder / STAGING_MARKER).write_text(json.dumps(data) + "\n")


def _stale_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of a staging folder of ours whose process is gone (None: not ours, or still running)."""
    marker = folder / STAGING_MARKER
    try:
        if folder.is_symlink() or not marker.is_file():
            return None
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("tool") != "fastvideo convert" or not isinstance(data.get("pid"), int):
        return None
    if data.get("host") != socket.gethostname():
        return None  # another machine's (shared disk): cannot tell whether it still runs
    if not _process_gone(data["pid"], data.get("process_start")):
        return None  # still running (a conversion in another thread of this process counts too)
    return data


def clean_stale_staging(output: Path, notice: Callable[[str], None] | None = None) -> list[Path]:
    """Remove staging folders of interrupted conversions (e.g. SIGKILL) next to ``output``.

    Only folders that are provably ours are touched: the name ``.<name>.converting-<tag>`` or
    ``.<name>.old-<tag>`` *and* a marker file written at creation whose process (pid on this host)
    is gone.  A stale ``.old-`` folder is the previous output moved aside just before the final
    rename: if its output is missing (killed between the two renames) it is moved back, else
    removed.  Returns the folders removed or restored; ``notice`` gets one line for each.
    """
    notice = notice or _stderr
    parent = output.parent
    done: list[Path] = []
    try:
        entries = sorted(parent.iterdir())
    except OSError:
        return done
    for folder in entries:
        m = _STAGING_NAME.match(folder.name)
        if m is None or not folder.is_dir():
            continue
        data = _stale_marker(folder)
        if data is None:
            continue
        target = parent / m.group("output")
        previous = folder / "previous"  # an .old- folder: the output it was about to replace
        if m.group("kind") == "old" and previous.is_dir() and not os.path.lexists(target):
            os.replace(previous, target)  # killed between the two renames: put the previous output back
            notice(f"restored {target} from an interrupted conversion (pid {data['pid']} was killed while "
                   f"replacing it; it had been moved aside to {previous})")
        shutil.rmtree(folder, ignore_errors=True)
        if folder.exists():
            continue
        notice(f"removed a stale staging folder from an interrupted conversion: {folder} "
               f"(pid {data['pid']} on {data['host']} is gone)")
        done.append(folder)
    return done


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextmanager
def staging_folder(output: Path) -> Iterator[Path]:
    """A temp folder next to ``output``; renamed onto ``output`` on success, deleted on any error.

    The folder (``.<name>.converting-<tag>``) holds a marker with our pid and host from its creation
    until just after the final rename, so a later run can remove it if this process is killed
    (:func:`clean_stale_staging`).  An existing output is moved aside to ``.<name>.old-<tag>``
    (marked the same way), then the new folder takes its name, then the old one is deleted.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.converting-", dir=output.parent))
    old: Path | None = None
    try:
        _write_marker(tmp, "converting")
        yield tmp
        if output.exists():
            # Marked before anything moves into it: if we are killed from here on, a later run
            # either puts previous/ back (output missing) or deletes the folder.
            old = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=output.parent))
            _write_marker(old, "old")
            os.replace(output, old / "previous")
        os.replace(tmp, output)
        (output / STAGING_MARKER).unlink(missing_ok=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and (old / "previous").is_dir() and not os.path.lexists(output):
            os.replace(old / "previous", output)  # the swap failed half-way: the previous output stays
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        raise

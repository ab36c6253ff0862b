"""The parity references (``diffusers``) in the inference process's environment: which are installed, and
installing one there with progress.

The inference process says in its ``hello`` which reference packages it can import (``references``:
name -> version, or None when missing).  A studio installed without the test extras (a packaged
studio's runtime, a plain ``pip install``) has no ``diffusers``; the Parity panel then disables its
Run button with the reason and offers :meth:`ReferenceService.install`, which runs pip with the
inference process's own interpreter (the runtime's, for a packaged studio; offline wheel folders
as the runtime was made), then checks that the package imports.  Nothing here imports the package.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

from app.bootstrap.runtime import Marker, child_env, is_frozen, pip_args, runtime_dir

#: each reference the Parity panel offers, and the requirement installed for it (the version the parity
#: tests pin: pyproject's ``test`` extra)
REFERENCE_REQUIREMENTS = {"diffusers": "diffusers==0.42.1"}
#: pip's output lines that mark its progress, in order (each one moves the bar a step)
PIP_STAGES = (("Collecting", "Finding the packages"), ("Downloading", "Downloading"),
              ("Installing collected packages", "Installing"), ("Successfully installed", "Installed"))
VERIFY_MARK = "REFERENCE "


def pip_stage(line: str) -> int | None:
    """The step (1-based, of ``len(PIP_STAGES)``) a pip output line marks, or None."""
    text = line.strip()
    for i, (prefix, _label) in enumerate(PIP_STAGES):
        if text.startswith(prefix):
            return i + 1
    return None


class ReferenceService(QObject):
    """What the inference process's environment has, and the installer of what it lacks."""

    #: the known availability changed (a new inference process said hello, or an install finished)
    changed = Signal()
    #: step, total, text: an install's progress
    install_progress = Signal(int, int, str)
    #: a line of pip's output
    install_output = Signal(str)
    #: ok, message: an install ended
    install_finished = Signal(bool, str)

    def __init__(self, client, data_dir: str | os.PathLike, parent: QObject | None = None):
        super().__init__(parent)
        self.client = client
        self.data_dir = Path(data_dir)
        #: name -> version (None: missing); a name absent: not known yet
        self.versions: dict[str, str | None] = {}
        self.proc: QProcess | None = None
        self.installing: str | None = None
        self._phase = ""
        self._step = 0
        self._buf = b""
        self._tail: list[str] = []
        self._verified: str | None = None
        client.state_changed.connect(self._client_state)
        self._client_state(client.state)

    # ------------------------------------------------------------------ what is there
    @property
    def python(self) -> str:
        """The interpreter of the inference process (the one pip installs for)."""
        return str(self.client.python)

    def _client_state(self, state: str) -> None:
        if state == "running" and isinstance((self.client.hello or {}).get("references"), dict):
            self.versions.update({str(k): (str(v) if v else None) for k, v in self.client.hello["references"].items()})
            self.changed.emit()

    def status(self, name: str) -> tuple[bool | None, str]:
        """``(available, words)``: True with its version, False with why not, None when not known yet."""
        if name not in REFERENCE_REQUIREMENTS:
            return False, f"{name!r} is not a parity reference this studio knows"
        if name not in self.versions:
            return None, f"Checking the inference runtime for {name}…"
        version = self.versions[name]
        if version:
            return True, f"{name} {version} is installed in the inference runtime."
        return False, (f"The reference {name} is not installed in the inference runtime ({self.python}), so "
                       f"parity cannot run. Install {REFERENCE_REQUIREMENTS[name]} there (it only serves parity; "
                       "generation does not need it).")

    def mark_missing(self, name: str) -> None:
        """A parity run said the package is missing (e.g. removed since the inference process started)."""
        if name in REFERENCE_REQUIREMENTS and self.versions.get(name) is not None:
            self.versions[name] = None
            self.changed.emit()

    def can_install(self) -> tuple[bool, str]:
        """Whether pip can be run for the inference process here, with the reason when not."""
        if self.installing:
            return False, f"{self.installing} is being installed"
        remote = getattr(self.client, "remote", None)
        if remote:
            return False, ("the inference process runs on another computer (Settings → Engine): install it there "
                           f"with: python -m pip install '{next(iter(REFERENCE_REQUIREMENTS.values()))}'")
        if not Path(self.python).is_file():
            return False, f"the inference process's Python ({self.python}) is not on this machine"
        return True, ""

    # ------------------------------------------------------------------ installing
    def _wheels_dir(self) -> Path | None:
        """A packaged studio whose runtime came from a wheel folder installs from that folder too (offline)."""
        if not is_frozen():
            return None
        marker = Marker.read(runtime_dir(self.data_dir))
        if marker is not None and marker.source.startswith("wheels:"):
            return Path(marker.source[len("wheels:"):])
        return None

    def _environment(self) -> QProcessEnvironment:
        env = QProcessEnvironment()
        base = child_env() if is_frozen() else dict(os.environ)
        base["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        base["PYTHONUNBUFFERED"] = "1"
        for k, v in base.items():
            env.insert(k, v)
        return env

    def install(self, name: str) -> bool:
        """Start installing ``name``'s requirement into the inference process's environment (False: refused;
        ``install_finished`` says why)."""
        if name not in REFERENCE_REQUIREMENTS:
            self.install_finished.emit(False, f"{name!r} is not a parity reference this studio knows")
            return False
        ok, why = self.can_install()
        if not ok:
            self.install_finished.emit(False, f"Cannot install {name}: {why}.")
            return False
        self.installing = name
        self._tail, self._step, self._verified = [], 0, None
        argv = pip_args(Path(self.python), self._wheels_dir()) + [REFERENCE_REQUIREMENTS[name]]
        self.install_progress.emit(0, self.total_steps(), f"Starting pip ({REFERENCE_REQUIREMENTS[name]})…")
        self._run("pip", argv)
        return True

    @staticmethod
    def total_steps() -> int:
        return len(PIP_STAGES) + 1  # pip's stages, then the import check

    def cancel(self) -> None:
        if self.proc is not None and self.proc.state() != QProcess.ProcessState.NotRunning:
            self._phase = "cancelled"
            self.proc.kill()

    def _run(self, phase: str, argv: list[str]) -> None:
        self._phase = phase
        self._buf = b""
        proc = QProcess(self)
        proc.setProcessEnvironment(self._environment())
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        proc.setProgram(argv[0])
        proc.setArguments(argv[1:])
        proc.readyReadStandardOutput.connect(self._read)
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._error)
        self.proc = proc
        proc.start()

    def _read(self) -> None:
        if self.proc is None:
            return
        self._buf += bytes(self.proc.readAllStandardOutput())
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            self._line(raw.decode("utf-8", errors="replace").rstrip())

    def _line(self, line: str) -> None:
        if not line.strip():
            return
        self._tail = (self._tail + [line])[-12:]
        self.install_output.emit(line)
        if self._phase == "verify":
            if line.startswith(VERIFY_MARK):
                self._verified = line[len(VERIFY_MARK):].strip()
            return
        step = pip_stage(line)
        if step is not None and step >= self._step:
            self._step = step
            self.install_progress.emit(step, self.total_steps(), f"{PIP_STAGES[step - 1][1]}: {line.strip()[:120]}")

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.proc is not None:
            self._end(False, f"Could not start {self.python}: {self.proc.errorString()}")

    def _finished(self, code: int, _status) -> None:
        if self.proc is None or self.sender() is not self.proc:
            return
        if self._buf:
            self._line(self._buf.decode("utf-8", errors="replace"))
            self._buf = b""
        name = self.installing or ""
        if self._phase == "cancelled":
            self._end(False, f"Installing {name} was cancelled.")
        elif code != 0:
            detail = "\n".join(self._tail[-6:])
            self._end(False, f"pip could not install {REFERENCE_REQUIREMENTS.get(name, name)} (exit code {code})"
                      + (f":\n{detail}" if detail else "."))
        elif self._phase == "pip":
            self.install_progress.emit(len(PIP_STAGES), self.total_steps(), f"Checking that {name} imports…")
            module = re.split(r"[<>=!~\[ ]", REFERENCE_REQUIREMENTS[name], maxsplit=1)[0]
            code_ = f"import {module}; print({VERIFY_MARK!r} + {module}.__version__)"
            self._run("verify", [self.python, "-c", code_])
        elif self._verified:
            self.versions[name] = self._verified
            self.install_progress.emit(self.total_steps(), self.total_steps(), f"{name} {self._verified} installed")
            self._end(True, f"{name} {self._verified} is installed in the inference runtime; parity can run.")
            self.changed.emit()
        else:
            self._end(False, f"pip finished, but {name} does not import in the inference runtime:\n"
                      + "\n".join(self._tail[-6:]))

    def _end(self, ok: bool, message: str) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.deleteLater()
        self.installing = None
        self._phase = ""
        self.install_finished.emit(ok, message)

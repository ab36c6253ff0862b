"""Conversion for the Models panel.

* :class:`ConversionProcess` runs ``python -m fastvideo convert SOURCE OUTPUT`` (the engine's
  converter; it imports torch, so it never runs in the studio's process) through ``QProcess``
  and turns its ``[done/total] file (size)`` lines into progress signals.  Cancelling sends
  SIGINT: the converter removes its staging folder, so no partial output is left.
* :func:`assemble_hub_folder` (the ``create-hf-repo`` step): a hub-ready Diffusers folder made
  from one converted component plus the other components of a base model, with a model card
  and LFS attributes.  Torch-free (file copies and JSON).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

_PROGRESS_RE = re.compile(r"^\[(\d+)/(\d+)\]\s+(\S.*?)\s+\(([^)]*)\)\s*$")


def parse_progress(line: str) -> tuple[int, int, str] | None:
    """``[3/12] transformer/diffusion_pytorch_model.safetensors (1.2 MB)`` -> (3, 12, file)."""
    m = _PROGRESS_RE.match(line.strip())
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), m.group(3)


def _fastvideo_root() -> str:
    import fastvideo

    return str(Path(fastvideo.__file__).resolve().parent.parent)


class ConversionProcess(QObject):
    progress = Signal(int, int, str)  # done, total, file
    finished = Signal(str)  # output folder
    failed = Signal(str)  # message
    cancelled = Signal()
    output_line = Signal(str)

    def __init__(self, source: str | os.PathLike, output: str | os.PathLike, *, model_type: str | None = None,
                 overwrite: bool = False, image_encoder_from: str | None = None, flow_shift: float | None = None,
                 python: str | None = None, env: dict[str, str] | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.env = dict(env or {})  # extra environment (the studio's models folder: FASTVIDEO_MODELS_DIR)
        self.source, self.output = str(source), str(output)
        self.args = ["-m", "fastvideo", "convert", self.source, self.output]
        if model_type:
            self.args += ["--model-type", model_type]
        if overwrite:
            self.args.append("--overwrite")
        if image_encoder_from:
            self.args += ["--image-encoder-from", str(image_encoder_from)]
        if flow_shift is not None:
            self.args += ["--flow-shift", str(flow_shift)]
        self.python = python or sys.executable
        self.proc: QProcess | None = None
        self.lines: list[str] = []
        self.state = "idle"
        self._cancel = False
        self._buf = b""

    def start(self) -> None:
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        root = _fastvideo_root()
        env.insert("PYTHONPATH", os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
        for k, v in self.env.items():
            env.insert(k, v)
        proc.setProcessEnvironment(env)
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        proc.readyReadStandardOutput.connect(self._read)
        proc.finished.connect(self._done)
        proc.errorOccurred.connect(self._error)
        self.proc = proc
        self.state = "running"
        proc.start(self.python, self.args)

    def cancel(self) -> None:
        if self.proc is None or self.state != "running":
            return
        self._cancel = True
        pid = int(self.proc.processId())
        if pid and hasattr(signal, "SIGINT") and os.name == "posix":
            os.kill(pid, signal.SIGINT)  # KeyboardInterrupt: the converter deletes its staging folder
        else:
            self.proc.kill()

    def is_active(self) -> bool:
        return self.state == "running"

    def _read(self) -> None:
        self._buf += bytes(self.proc.readAllStandardOutput())
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            self._line(raw.decode("utf-8", errors="replace").rstrip())

    def _line(self, text: str) -> None:
        if not text:
            return
        self.lines.append(text)
        self.output_line.emit(text)
        p = parse_progress(text)
        if p is not None:
            self.progress.emit(*p)

    def _error(self, err) -> None:
        if err == QProcess.ProcessError.FailedToStart and self.state == "running":
            self.state = "failed"
            self.failed.emit(f"could not start {self.python}: {self.proc.errorString()}")

    def _done(self, code: int, _status) -> None:
        if self._buf:
            self._line(self._buf.decode("utf-8", errors="replace").rstrip())
            self._buf = b""
        if self.state != "running":
            return
        if code == 0:
            self.state = "done"
            self.finished.emit(self.output)
        elif self._cancel:
            self.state = "cancelled"
            self.cancelled.emit()
        else:
            self.state = "failed"
            errors = [ln[len("error: "):] for ln in self.lines if ln.startswith("error: ")]
            message = errors[-1] if errors else "\n".join(self.lines[-6:]) or f"exit code {code}"
            self.failed.emit(message)


# ---------------------------------------------------------------------------- hub-ready folder
GITATTRIBUTES = """*.safetensors filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.model filter=lfs diff=lfs merge=lfs -text
tokenizer.json filter=lfs diff=lfs merge=lfs -text
"""


def model_card(repo_id: str, pipeline: str, components: list[str], component: str, source: str, base: str) -> str:
    name = repo_id or Path(source).name
    return f"""---
library_name: diffusers
pipeline_tag: text-to-video
tags:
- fastvideo
- {pipeline}
---

# {name}

Diffusers-layout {pipeline} folder assembled by FastVideo Studio.

* `{component}/`: converted with `fastvideo convert` (from `{Path(source).name}`)
* other components ({', '.join(c for c in components if c != component)}): from `{Path(base).name}`

Load with fastvideo:

```python
from fastvideo import VideoGenerator
gen = VideoGenerator.from_pretrained("{name}")
```
"""


def assemble_hub_folder(source: str | os.PathLike, component: str, output: str | os.PathLike, *,
                        base: str | os.PathLike | None = None, repo_id: str = "", overwrite: bool = False,
                        progress: Callable[[int, int, str], None] | None = None) -> Path:
    """Write ``output``: ``base`` (default ``source``) with ``component`` taken from ``source``,
    plus ``README.md`` and ``.gitattributes``; ready for ``hf upload``.

    Checks that ``model_index.json`` of ``base`` lists ``component`` and that the result is a
    loadable Diffusers folder (the registry's check); written into a temp folder and renamed
    into place (``fastvideo.utils.staging``), so a failure leaves nothing behind.
    """
    from fastvideo.configs.registry import describe_folder
    from fastvideo.utils.staging import staging_folder

    source, output = Path(source).expanduser(), Path(output).expanduser()
    base = Path(base).expanduser() if base else source
    comp_dir = source / component
    if not comp_dir.is_dir():
        raise ValueError(f"{source}: has no {component}/ folder to take")
    index_path = base / "model_index.json"
    if not index_path.is_file():
        raise ValueError(f"{base}: no model_index.json (the base must be a Diffusers-layout model)")
    index = json.loads(index_path.read_text())
    if component not in index:
        raise ValueError(f"{index_path}: does not list component {component!r}")
    if output.exists() and any(output.iterdir()):
        if not overwrite:
            raise ValueError(f"{output}: exists and is not empty (tick Overwrite to replace it)")
    if output.resolve() in (source.resolve(), base.resolve()):
        raise ValueError(f"{output}: the output cannot be one of the inputs")

    files: list[tuple[Path, str]] = []
    for p in sorted(base.rglob("*")):
        rel = p.relative_to(base).as_posix()
        top = rel.split("/")[0]
        if not p.is_file() or top == component or top.startswith(".") or top in ("README.md", ".gitattributes"):
            continue
        files.append((p, rel))
    for p in sorted(comp_dir.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            files.append((p, f"{component}/{p.relative_to(comp_dir).as_posix()}"))
    total = len(files) + 2
    with staging_folder(output) as tmp:
        for i, (src, rel) in enumerate(files, 1):
            dst = tmp / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            if progress:
                progress(i, total, rel)
        comps = [k for k, v in index.items() if not k.startswith("_") and isinstance(v, list)]
        (tmp / "README.md").write_text(model_card(repo_id, str(index.get("_class_name")), comps, component,
                                                  str(source), str(base)))
        if progress:
            progress(total - 1, total, "README.md")
        (tmp / ".gitattributes").write_text(GITATTRIBUTES)
        if progress:
            progress(total, total, ".gitattributes")
        describe_folder(tmp)  # loadable by the registry, or raise before anything is in place
    return output

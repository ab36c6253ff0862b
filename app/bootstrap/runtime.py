"""The inference runtime of a packaged studio: a virtual environment with torch and fastvideo.

The frozen studio holds only the GUI (PySide6).  The engine (torch, fastvideo) lives in
``<data dir>/runtime/venv``, made here on first launch and repaired when it is broken or
older than the bundle.  Nothing here imports torch or Qt: this module plans the steps
(commands) and reads/writes the marker; :mod:`app.bootstrap.dialog` runs them under a
progress dialog and :mod:`app.bootstrap.cli` in a terminal.

Steps of an install:

1. ``<python> -m venv <runtime>/venv``: a system Python 3.10+ (``FASTVIDEO_RUNTIME_PYTHON``
   or ``--python`` picks one), because a frozen app has no interpreter of its own.
2. torch, the build chosen for the machine: CUDA when ``nvidia-smi`` lists a GPU, else CPU
   (``--torch`` / ``FASTVIDEO_TORCH_BUILD`` override; ``FASTVIDEO_TORCH`` changes the
   requirement, ``FASTVIDEO_TORCH_INDEX`` the index).
3. the engine's other dependencies (read from the bundled project wheel, GUI ones left out).
4. the project wheel shipped in the bundle (``--no-deps``: no PySide6 in the runtime).
5. a check that ``torch`` and ``fastvideo.serve`` import.
6. the tiny built-in model, when the bundle ships no trained one.

With ``wheels=DIR`` every pip step runs ``--no-index --find-links DIR`` (offline machines).
The marker ``<runtime>/runtime.json`` is written last: a runtime without it, or whose
marker names another project wheel, another torch build or a missing interpreter, is
repaired on the next launch.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

MARKER_NAME = "runtime.json"
MARKER_VERSION = 1
DEFAULT_TORCH = "torch==2.13.0"
MIN_PYTHON = (3, 10)
#: dependencies of the project wheel that only the GUI needs (never installed in the runtime)
GUI_ONLY = {"pyside6", "pyside6-essentials", "pyside6-addons", "shiboken6", "qasync"}
PYTORCH_INDEX = "https://download.pytorch.org/whl"
CUDA_TAG_WINDOWS = "cu128"
ENV_RUNTIME_DIR = "FASTVIDEO_STUDIO_RUNTIME"
ENV_PYTHON = "FASTVIDEO_RUNTIME_PYTHON"
ENV_TORCH_BUILD = "FASTVIDEO_TORCH_BUILD"
ENV_TORCH = "FASTVIDEO_TORCH"
ENV_TORCH_INDEX = "FASTVIDEO_TORCH_INDEX"


class BootstrapError(RuntimeError):
    """Something the user must fix (no Python found, no wheel in the folder...), in words."""


# ---------------------------------------------------------------------------------------------- where things are
def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def bundle_dir() -> Path:
    """The folder of the frozen bundle's data files (``_internal/``), or the checkout when not frozen."""
    if is_frozen():
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))
    return Path(__file__).resolve().parents[2]


def runtime_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``FASTVIDEO_STUDIO_RUNTIME``, else ``<studio data dir>/runtime``."""
    env = os.environ.get(ENV_RUNTIME_DIR)
    if env:
        return Path(env).expanduser().resolve()
    from app.services.paths import resolve_paths

    return resolve_paths(data_dir).data_dir / "runtime"


def venv_dir(runtime: Path) -> Path:
    return Path(runtime) / "venv"


def venv_python(runtime: Path) -> Path:
    v = venv_dir(runtime)
    return v / "Scripts" / "python.exe" if os.name == "nt" else v / "bin" / "python"


def venv_script(runtime: Path, name: str) -> Path:
    v = venv_dir(runtime)
    return v / "Scripts" / f"{name}.exe" if os.name == "nt" else v / "bin" / name


def marker_path(runtime: Path) -> Path:
    return Path(runtime) / MARKER_NAME


def bundled_wheel(root: Path | None = None) -> Path | None:
    """The project wheel shipped in the bundle (``<bundle>/runtime/fastvideo_studio-*.whl``)."""
    folder = (root or bundle_dir()) / "runtime"
    wheels = sorted(folder.glob("fastvideo_studio-*.whl")) if folder.is_dir() else []
    return wheels[-1] if wheels else None


def shipped_model(root: Path | None = None) -> Path | None:
    """The trained default model inside the bundle, if it ships one."""
    path = (root or bundle_dir()) / "resources" / "models" / "fastvideo-shapes-t2v"
    return path if (path / "model_index.json").is_file() else None


def child_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for programs the frozen app starts (system Python, pip, the worker).

    PyInstaller's bootloader points ``LD_LIBRARY_PATH`` (and friends) at the bundle; a system
    Python must not load the bundle's libraries, so the saved originals are put back.
    """
    env = dict(os.environ if base is None else base)
    for var in ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "LIBPATH"):
        orig = env.pop(var + "_ORIG", None)
        if orig is not None:
            env[var] = orig
        elif is_frozen():
            env.pop(var, None)
    for var in list(env):
        if var.startswith("_PYI_") or var in ("_MEIPASS2", "PYTHONHOME", "PYTHONPATH", "QT_PLUGIN_PATH",
                                              "QML2_IMPORT_PATH"):
            env.pop(var)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def worker_launch(data_dir: str | os.PathLike | None) -> tuple[str | None, dict[str, str | None]]:
    """The interpreter and environment changes for the inference process of a frozen studio.

    Not frozen: ``(None, {})`` -- the studio keeps using ``sys.executable``.  Frozen: the runtime's
    Python, with the bundle's library paths taken out of the worker's environment (``None`` = unset).
    """
    if not is_frozen():
        return None, {}
    runtime = runtime_dir(data_dir)
    clean = child_env()
    changes: dict[str, str | None] = {}
    for var in set(os.environ) | set(clean):
        if os.environ.get(var) != clean.get(var):
            changes[var] = clean.get(var)
    return str(venv_python(runtime)), changes


def runtime_ffmpeg(runtime: Path) -> Path | None:
    """The ffmpeg that imageio-ffmpeg installed in the runtime environment, if any."""
    v = venv_dir(runtime)
    patterns = ["Lib/site-packages/imageio_ffmpeg/binaries/ffmpeg*"] if os.name == "nt" else \
        ["lib/python3*/site-packages/imageio_ffmpeg/binaries/ffmpeg*"]
    for pattern in patterns:
        found = sorted(p for p in v.glob(pattern) if p.is_file() and not p.name.endswith((".md", ".py")))
        if found:
            return found[-1]
    return None


def use_runtime_ffmpeg(data_dir: str | os.PathLike | None = None) -> Path | None:
    """Frozen studio without its own ffmpeg: read videos (thumbnails, player) with the runtime's ffmpeg.

    Sets ``IMAGEIO_FFMPEG_EXE`` unless the user did; without a runtime, imageio-ffmpeg falls back to a
    system ffmpeg on PATH.
    """
    if not is_frozen() or os.environ.get("IMAGEIO_FFMPEG_EXE"):
        return None
    if any((bundle_dir() / "imageio_ffmpeg" / "binaries").glob("ffmpeg*")):
        return None
    exe = runtime_ffmpeg(runtime_dir(data_dir))
    if exe is not None:
        os.environ["IMAGEIO_FFMPEG_EXE"] = str(exe)
    return exe


# ------------------------------------------------------------------------------------------------ base python
def python_version(python: str | os.PathLike, env: dict[str, str] | None = None) -> tuple[int, int, int] | None:
    """``(major, minor, micro)`` of an interpreter that can make venvs (``venv`` + ``ensurepip``), else None."""
    try:
        out = subprocess.run([str(python), "-c", "import sys, venv, ensurepip; print(*sys.version_info[:3])"],
                             capture_output=True, text=True, timeout=30, env=env or child_env())
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    try:
        return tuple(int(v) for v in out.stdout.split()[:3])  # type: ignore[return-value]
    except ValueError:
        return None


def find_base_python(explicit: str | None = None) -> tuple[str, tuple[int, int, int]]:
    """A Python 3.10+ that can create virtual environments: ``explicit``, ``FASTVIDEO_RUNTIME_PYTHON``,
    then ``python3.13`` ... ``python3`` on PATH (``py -3`` on Windows)."""
    chosen = explicit or os.environ.get(ENV_PYTHON)
    if chosen:
        version = python_version(chosen)
        if version is None:
            raise BootstrapError(f"{chosen} is not a Python that can create virtual environments "
                                 "(it needs the venv and ensurepip modules)")
        if version[:2] < MIN_PYTHON:
            raise BootstrapError(f"{chosen} is Python {'.'.join(map(str, version))}; the runtime needs "
                                 f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer")
        return chosen, version
    names = [f"python3.{m}" for m in (13, 12, 11, 10)] + ["python3", "python"]
    env = child_env()
    tried = []
    for name in names:
        path = shutil.which(name, path=env.get("PATH"))
        if not path or path in tried:
            continue
        tried.append(path)
        version = python_version(path, env)
        if version is not None and version[:2] >= MIN_PYTHON:
            return path, version
    if os.name == "nt" and shutil.which("py"):
        out = subprocess.run(["py", "-3", "-c", "import sys; print(sys.executable)"], capture_output=True,
                             text=True, timeout=30)
        if out.returncode == 0:
            path = out.stdout.strip()
            version = python_version(path, env)
            if version is not None and version[:2] >= MIN_PYTHON:
                return path, version
    hint = ("install it with your package manager (Debian/Ubuntu: sudo apt install python3 python3-venv)"
            if sys.platform.startswith("linux") else "install it from python.org")
    raise BootstrapError("FastVideo Studio needs Python 3.10 or newer (with venv) to set up its inference "
                         f"runtime, and none was found; {hint}, or point {ENV_PYTHON} at one. "
                         f"Tried: {', '.join(tried) or 'nothing on PATH'}")


# ------------------------------------------------------------------------------------------------ torch build
@dataclass(frozen=True)
class TorchChoice:
    build: str                 # "cuda" | "cpu" | "default" (the platform's PyPI wheel, e.g. macOS/MPS)
    requirement: str           # e.g. "torch==2.13.0"
    index_url: str | None      # None: the default index (PyPI)
    reason: str                # why, in words (shown in the dialog)


def has_nvidia_gpu(run=subprocess.run) -> bool:
    """True when ``nvidia-smi -L`` lists at least one GPU."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return False
    try:
        out = run([exe, "-L"], capture_output=True, text=True, timeout=20, env=child_env())
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in (out.stdout or "")


def choose_torch(build: str | None = None, *, system: str | None = None, gpu: bool | None = None,
                 environ: dict[str, str] | None = None) -> TorchChoice:
    """Which torch to install: ``build`` ("auto" | "cpu" | "cuda"), else ``FASTVIDEO_TORCH_BUILD``, else auto
    (CUDA when ``nvidia-smi`` sees a GPU).  Linux: CUDA is PyPI's default wheel, CPU comes from the PyTorch
    CPU index; Windows: the reverse; macOS: PyPI's wheel (CPU + MPS)."""
    environ = os.environ if environ is None else environ
    system = system or platform.system()
    build = (build or environ.get(ENV_TORCH_BUILD) or "auto").lower()
    if build not in ("auto", "cpu", "cuda"):
        raise BootstrapError(f"torch build must be auto, cpu or cuda, not {build!r}")
    requirement = environ.get(ENV_TORCH) or DEFAULT_TORCH
    if build == "auto":
        if system == "Darwin":
            build, reason = "default", "macOS: the PyPI build (CPU and Apple GPU)"
        else:
            found = has_nvidia_gpu() if gpu is None else gpu
            build = "cuda" if found else "cpu"
            reason = "nvidia-smi lists a GPU" if found else "no NVIDIA GPU found (nvidia-smi)"
    else:
        reason = "chosen by the user"
        if system == "Darwin":
            if build == "cuda":
                raise BootstrapError("there is no CUDA build of torch for macOS; use --torch cpu")
            build = "default"
    if system == "Linux":
        index = f"{PYTORCH_INDEX}/cpu" if build == "cpu" else None
    elif system == "Windows":
        index = f"{PYTORCH_INDEX}/{CUDA_TAG_WINDOWS}" if build == "cuda" else None
    else:
        index = None
    index = environ.get(ENV_TORCH_INDEX) or index
    return TorchChoice(build, requirement, index, reason)


# ------------------------------------------------------------------------------------------------ wheel metadata
def wheel_requirements(wheel: Path) -> list[str]:
    """The project wheel's runtime dependencies (``Requires-Dist`` without extras and GUI-only packages)."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next((n for n in zf.namelist() if n.endswith(".dist-info/METADATA")), None)
        if meta is None:
            raise BootstrapError(f"{wheel.name} has no METADATA; is it a wheel?")
        text = zf.read(meta).decode("utf-8")
    reqs = []
    for line in text.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        req = line.split(":", 1)[1].strip()
        if ";" in req and "extra" in req.split(";", 1)[1]:
            continue
        name = re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0].lower().replace("_", "-")
        if name in GUI_ONLY or name == "torch":
            continue
        reqs.append(req)
    return reqs


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------ marker
@dataclass
class Marker:
    version: int = MARKER_VERSION
    project_wheel: str = ""
    project_sha256: str = ""
    torch_build: str = ""
    torch_requirement: str = ""
    torch_version: str = ""
    cuda_available: bool = False
    python: str = ""
    python_version: str = ""
    source: str = ""           # "index" or "wheels:<folder>"
    default_model: str = ""
    installed_at: str = ""
    seconds: float = 0.0

    def write(self, runtime: Path) -> None:
        path = marker_path(runtime)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def read(cls, runtime: Path) -> Marker | None:
        try:
            data = json.loads(marker_path(runtime).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("version") != MARKER_VERSION:
            return None
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Status:
    ok: bool
    action: str                # "none" | "install" (venv is fine, packages missing/old) | "create" (new venv)
    reason: str


def check(runtime: Path, wheel: Path | None, *, torch_build: str | None = None) -> Status:
    """Is the runtime usable as it is?  Cheap: files only (no interpreter is started)."""
    runtime = Path(runtime)
    py = venv_python(runtime)
    if not py.exists():
        return Status(False, "create", "the inference runtime is not installed yet")
    cfg = venv_dir(runtime) / "pyvenv.cfg"
    home = _pyvenv_home(cfg)
    if home is not None and not Path(home).exists():
        return Status(False, "create", f"the Python it was made from ({home}) is gone")
    marker = Marker.read(runtime)
    if marker is None:
        return Status(False, "install", "the last setup did not finish")
    if wheel is not None and marker.project_sha256 and marker.project_sha256 != sha256(wheel):
        return Status(False, "install", f"this studio ships a newer engine ({wheel.name})")
    if torch_build and torch_build != "auto" and marker.torch_build not in (torch_build, "default"):
        return Status(False, "install", f"a {torch_build} build of torch was asked for "
                                        f"(installed: {marker.torch_build})")
    return Status(True, "none", f"torch {marker.torch_version} ({marker.torch_build}), {marker.project_wheel}")


def _pyvenv_home(cfg: Path) -> str | None:
    try:
        for line in cfg.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home":
                return value.strip()
    except OSError:
        return None
    return None


# ------------------------------------------------------------------------------------------------ the plan
@dataclass(frozen=True)
class Step:
    key: str                   # venv | torch | deps | engine | verify | model
    label: str                 # shown in the dialog
    argv: list[str]
    weight: float = 1.0        # share of the progress bar


@dataclass
class Plan:
    runtime: Path
    steps: list[Step]
    choice: TorchChoice
    base_python: str
    wheel: Path
    wheels_dir: Path | None
    recreate: bool
    make_model: bool
    notes: list[str] = field(default_factory=list)


VERIFY_CODE = ("import json, sys, torch, fastvideo.serve; print('RUNTIME ' + json.dumps({'torch': torch.__version__, "
               "'cuda': bool(torch.cuda.is_available()), 'python': sys.version.split()[0]}))")


def pip_args(py: Path, wheels_dir: Path | None, index_url: str | None = None) -> list[str]:
    argv = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]
    if wheels_dir is not None:
        # offline: only the folder; --isolated ignores the user's pip configuration and PIP_* variables
        argv.insert(3, "--isolated")
        argv += ["--no-index", "--find-links", str(wheels_dir)]
    elif index_url:
        argv += ["--index-url", index_url]
    return argv


def make_plan(runtime: Path, *, wheel: Path, base_python: str, choice: TorchChoice, wheels_dir: Path | None = None,
              recreate: bool = False, make_model: bool = True) -> Plan:
    """The commands that (re)build the runtime, in order."""
    runtime = Path(runtime)
    py = venv_python(runtime)
    wheels_dir = Path(wheels_dir).resolve() if wheels_dir else None
    steps: list[Step] = []
    if recreate or not py.exists():
        steps.append(Step("venv", f"Creating the Python environment ({base_python})",
                          [base_python, "-m", "venv", "--clear", str(venv_dir(runtime))], 0.5))
    where = f" from {wheels_dir}" if wheels_dir else ""
    steps.append(Step("torch", f"Installing {choice.requirement} ({choice.build} build){where}",
                      pip_args(py, wheels_dir, choice.index_url) + [choice.requirement], 6.0))
    deps = wheel_requirements(wheel)
    if deps:
        steps.append(Step("deps", f"Installing the engine's dependencies{where}",
                          pip_args(py, wheels_dir) + deps, 3.0))
    steps.append(Step("engine", f"Installing the engine ({wheel.name})",
                      pip_args(py, wheels_dir) + ["--no-deps", "--force-reinstall", str(wheel)], 0.5))
    steps.append(Step("verify", "Checking that torch and the engine load", [str(py), "-c", VERIFY_CODE], 0.5))
    if make_model:
        steps.append(Step("model", "Making the built-in default model", [str(py), "-m", "fastvideo.builtin"], 0.5))
    return Plan(runtime, steps, choice, base_python, wheel, wheels_dir, recreate, make_model)


def prepare(data_dir: str | os.PathLike | None = None, *, wheels_dir: str | os.PathLike | None = None,
            torch_build: str | None = None, python: str | None = None, wheel: str | os.PathLike | None = None,
            runtime: str | os.PathLike | None = None, force: bool = False) -> tuple[Status, Plan | None]:
    """Check the runtime and, when it needs work (or ``force``), plan it.  Raises :class:`BootstrapError`."""
    rt = Path(runtime) if runtime else runtime_dir(data_dir)
    whl = Path(wheel) if wheel else bundled_wheel()
    if whl is None or not whl.is_file():
        raise BootstrapError("no project wheel to install (the bundle's runtime/ folder is empty; "
                             "pass --project-wheel when not running from a bundle)")
    status = check(rt, whl, torch_build=torch_build)
    if status.ok and not force:
        return status, None
    if wheels_dir is not None:
        wd = Path(wheels_dir)
        if not wd.is_dir():
            raise BootstrapError(f"wheel folder {wd} does not exist")
        if not any(wd.glob("torch-*.whl")):
            raise BootstrapError(f"{wd} holds no torch wheel (torch-*.whl); fill it with "
                                 "'pip download torch==2.13.0 -d DIR' on a connected machine (see docs/packaging.md)")
    choice = choose_torch(torch_build)
    recreate = status.action == "create"
    base = python
    if recreate or not venv_python(rt).exists():
        base, _ = find_base_python(python)
    else:
        base = base or _pyvenv_home(venv_dir(rt) / "pyvenv.cfg") or "python3"
    make_model = shipped_model() is None
    plan = make_plan(rt, wheel=whl, base_python=str(base), choice=choice, wheels_dir=wheels_dir,
                     recreate=recreate, make_model=make_model)
    plan.notes.append(f"torch: {choice.build} build ({choice.reason})")
    return status, plan


def finish(plan: Plan, verify_output: str, model_output: str, seconds: float) -> Marker:
    """Write the marker after every step succeeded."""
    info = {}
    for line in verify_output.splitlines():
        if line.startswith("RUNTIME "):
            try:
                info = json.loads(line[len("RUNTIME "):])
            except ValueError:
                pass
    model = ""
    for line in reversed(model_output.strip().splitlines()):
        if line.strip():
            model = line.strip()
            break
    marker = Marker(project_wheel=plan.wheel.name, project_sha256=sha256(plan.wheel), torch_build=plan.choice.build,
                    torch_requirement=plan.choice.requirement, torch_version=str(info.get("torch", "")),
                    cuda_available=bool(info.get("cuda", False)), python=str(venv_python(plan.runtime)),
                    python_version=str(info.get("python", "")),
                    source=f"wheels:{plan.wheels_dir}" if plan.wheels_dir else (plan.choice.index_url or "index"),
                    default_model=model or str(shipped_model() or ""),
                    installed_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), seconds=round(seconds, 1))
    marker.write(plan.runtime)
    return marker


def prepare_runtime_dir(plan: Plan) -> None:
    """Before running: make the folder, drop a stale marker (a half-done run must look unfinished)."""
    plan.runtime.mkdir(parents=True, exist_ok=True)
    try:
        marker_path(plan.runtime).unlink()
    except FileNotFoundError:
        pass

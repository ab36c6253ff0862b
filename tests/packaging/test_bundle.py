"""The packaged studio, end to end (slow: builds the bundle with PyInstaller, ~30-60 s).

* builds dist/fastvideo-studio/ once per session with ``packaging/build_linux.py --no-tarball``
  (``FASTVIDEO_TEST_BUNDLE=DIR`` reuses a bundle built before);
* starts the frozen binary headless with ``--screenshot`` and checks the main window;
* sets up the inference runtime from a local folder of wheels with the frozen binary
  (``--setup-runtime --wheels DIR``, offline) and generates with the default model through the
  runtime's ``fastvideo generate``.  About a minute more; it runs when ``FASTVIDEO_TEST_WHEELS=DIR``
  names a wheel folder (a CPU torch wheel + the engine's dependencies), or with
  ``FASTVIDEO_TEST_RUNTIME=1``, which fills one with ``pip download`` (torch from
  ``FASTVIDEO_TEST_TORCH_INDEX`` when set, e.g. https://download.pytorch.org/whl/cpu -- without it pip's
  own configuration decides, and on a plain Linux machine that is PyPI's multi-GB CUDA build).

Run: ``QT_QPA_PLATFORM=offscreen pytest tests/packaging -m slow``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux bundle builds on Linux"),
              pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
TORCH = "torch==2.13.0"


def frozen_env(**extra: str) -> dict[str, str]:
    skip = ("PYTHONPATH", "VIRTUAL_ENV", "FASTVIDEO_STUDIO_RUNTIME", "FASTVIDEO_STUDIO_DATA")
    env = {k: v for k, v in os.environ.items() if k not in skip}
    env["QT_QPA_PLATFORM"] = "offscreen"
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def bundle() -> Path:
    given = os.environ.get("FASTVIDEO_TEST_BUNDLE")
    if given:
        path = Path(given)
        assert (path / "fastvideo-studio").is_file(), f"FASTVIDEO_TEST_BUNDLE={given} holds no fastvideo-studio"
        return path
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(ROOT / "packaging" / "build_linux.py"), "--no-tarball"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(f"bundle built in {time.monotonic() - t0:.0f} s")
    return ROOT / "dist" / "fastvideo-studio"


def test_bundle_holds_the_gui_not_torch(bundle):
    internal = bundle / "_internal"
    assert os.access(bundle / "fastvideo-studio", os.X_OK)
    for f in ("fastvideo-studio.desktop", "fastvideo-studio.png", "install.sh", "README.txt"):
        assert (bundle / f).is_file(), f
    assert (internal / "PySide6").is_dir()
    assert list((internal / "PySide6").glob("QtMultimedia.*"))  # the player's sound (LTX-2 videos)
    assert (internal / "PIL").is_dir()  # the player's PNG / GIF / WebP export
    assert not [p.name for p in internal.iterdir() if p.name.split(".")[0] in ("torch", "transformers", "triton")]
    assert list((internal / "runtime").glob("fastvideo_studio-*.whl"))
    assert (internal / "resources" / "icon.svg").is_file() and (internal / "resources" / "studio.qss").is_file()
    shipped = ROOT / "resources" / "models" / "fastvideo-shapes-t2v" / "model_index.json"
    if shipped.is_file():  # a trained default model in the checkout ships inside the bundle
        assert (internal / "resources" / "models" / "fastvideo-shapes-t2v" / "model_index.json").is_file()
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"bundle size {size / 2**20:.0f} MiB")
    assert size < 600 * 2**20  # GUI only: a frozen torch would be GBs


def test_frozen_binary_shows_the_main_window(bundle, tmp_path):
    shot = tmp_path / "shot.png"
    proc = subprocess.run([str(bundle / "fastvideo-studio"), "--screenshot", str(shot), "--data-dir",
                           str(tmp_path / "data"), "--size", "1280x820"],
                          env=frozen_env(FASTVIDEO_MODELS_DIR=str(tmp_path / "models")),
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert shot.is_file()
    from PySide6.QtGui import QImage

    img = QImage(str(shot))
    assert (img.width(), img.height()) == (1280, 820)
    colors = {img.pixel(x, y) for x in range(0, 1280, 16) for y in range(0, 820, 16)}
    assert len(colors) > 20, "the screenshot is (nearly) uniform: no window was drawn"
    # the frozen GUI never sets up a runtime for a screenshot
    assert not (tmp_path / "data" / "runtime").exists()


def test_frozen_pyside_keeps_reference_counts(bundle):
    """The bundle's PySide6 on the bundle's Python passes the reference-count probe (app/qtcheck.py)."""
    proc = subprocess.run([str(bundle / "fastvideo-studio"), "--check-qt"], env=frozen_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.rstrip().endswith(": ok"), proc.stdout + proc.stderr
    print(proc.stdout.strip())


def _wheel_folder(tmp_path_factory) -> Path | None:
    given = os.environ.get("FASTVIDEO_TEST_WHEELS")
    if given:
        return Path(given)
    if os.environ.get("FASTVIDEO_TEST_RUNTIME") != "1":
        return None
    folder = tmp_path_factory.mktemp("wheels")
    wheel = next((ROOT / "build" / "wheel").glob("fastvideo_studio-*.whl"))
    from app.bootstrap.runtime import wheel_requirements

    pip = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "-d", str(folder)]
    index = os.environ.get("FASTVIDEO_TEST_TORCH_INDEX")
    subprocess.run(pip + [TORCH] + (["--index-url", index] if index else []), check=True, timeout=900)
    subprocess.run(pip + [TORCH] + wheel_requirements(wheel) + (["--extra-index-url", index] if index else []),
                   check=True, timeout=900)
    return folder


def test_runtime_bootstrap_offline_then_generate(bundle, tmp_path, tmp_path_factory):
    wheels = _wheel_folder(tmp_path_factory)
    if wheels is None:
        pytest.skip("set FASTVIDEO_TEST_WHEELS=DIR (a wheel folder) or FASTVIDEO_TEST_RUNTIME=1 to install "
                    "the runtime (~1 min)")
    data, models = tmp_path / "data", tmp_path / "models"
    # Offline for real: pip gets a dead index and proxy; --wheels must not need them.
    env = frozen_env(FASTVIDEO_MODELS_DIR=str(models), PIP_INDEX_URL="http://127.0.0.1:9/simple",
                     https_proxy="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9",
                     FASTVIDEO_TORCH_BUILD="cpu")
    exe = str(bundle / "fastvideo-studio")
    t0 = time.monotonic()
    proc = subprocess.run([exe, "--setup-runtime", "--wheels", str(wheels), "--data-dir", str(data)],
                          env=env, capture_output=True, text=True, timeout=900)
    install_s = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    print(f"runtime installed from {wheels} in {install_s:.0f} s")
    marker_path = data / "runtime" / "runtime.json"
    assert marker_path.is_file(), f"no {marker_path}; setup said:\n" + proc.stdout[-3000:] + proc.stderr[-3000:]
    marker = json.loads(marker_path.read_text())
    assert marker["torch_version"].startswith("2.13.0") and marker["source"].startswith("wheels:")
    assert marker["default_model"] and (Path(marker["default_model"]) / "model_index.json").is_file()

    # ready: a second run does nothing; a lost marker (an interrupted setup) is repaired
    proc = subprocess.run([exe, "--setup-runtime", "--wheels", str(wheels), "--data-dir", str(data)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "runtime ready:" in proc.stdout, proc.stdout + proc.stderr
    (data / "runtime" / "runtime.json").unlink()
    t0 = time.monotonic()
    proc = subprocess.run([exe, "--setup-runtime", "--wheels", str(wheels), "--data-dir", str(data)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "did not finish" in proc.stdout and (data / "runtime" / "runtime.json").is_file()
    print(f"repair in {time.monotonic() - t0:.0f} s")

    # the runtime generates with the default model (small settings: CPU)
    fastvideo = data / "runtime" / "venv" / "bin" / "fastvideo"
    out = tmp_path / "out"
    t0 = time.monotonic()
    proc = subprocess.run([str(fastvideo), "generate", "--model", marker["default_model"], "--prompt", "a red ball",
                           "--num-frames", "5", "--height", "64", "--width", "64", "--steps", "2", "--output",
                           str(out), "--quiet"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    videos = list(out.glob("*.mp4"))
    assert videos and videos[0].stat().st_size > 0
    print(f"generated {videos[0].name} in {time.monotonic() - t0:.0f} s")

    # the frozen GUI finds the runtime's ffmpeg and still starts
    proc = subprocess.run([exe, "--screenshot", str(tmp_path / "after.png"), "--data-dir", str(data)],
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shutil.rmtree(data / "runtime", ignore_errors=True)  # ~1 GB

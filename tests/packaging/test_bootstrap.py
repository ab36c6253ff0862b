"""The packaged studio's runtime bootstrap (app/bootstrap): fast, no install, no torch."""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

import pytest

from app.bootstrap import runtime as R

ROOT = Path(__file__).resolve().parents[2]


def make_wheel(path: Path, requires: list[str], payload: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = "Metadata-Version: 2.1\nName: fastvideo-studio\nVersion: 0.1.0\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fastvideo_studio-0.1.0.dist-info/METADATA", meta)
        zf.writestr("fastvideo/__init__.py", payload)
    return path


@pytest.fixture
def wheel(tmp_path) -> Path:
    return make_wheel(tmp_path / "bundle" / "runtime" / "fastvideo_studio-0.1.0-py3-none-any.whl",
                      ["pyside6>=6.6", "qasync>=0.27", "torch>=2.4", "numpy>=1.24", "safetensors>=0.4",
                       "imageio-ffmpeg>=0.5", 'pytest>=8; extra == "test"', 'PySide6_Essentials; sys_platform == "x"'])


def fake_venv(runtime: Path, home: str | None = None) -> Path:
    py = R.venv_python(runtime)
    py.parent.mkdir(parents=True, exist_ok=True)
    py.write_text("")
    (R.venv_dir(runtime) / "pyvenv.cfg").write_text(f"home = {home or Path(sys.executable).parent}\n")
    return py


# ---------------------------------------------------------------------------------------------------- torch choice
@pytest.mark.parametrize("system,gpu,build,index", [
    ("Linux", True, "cuda", None),                                        # PyPI's Linux wheel is the CUDA one
    ("Linux", False, "cpu", "https://download.pytorch.org/whl/cpu"),
    ("Windows", True, "cuda", f"https://download.pytorch.org/whl/{R.CUDA_TAG_WINDOWS}"),
    ("Windows", False, "cpu", None),                                      # PyPI's Windows wheel is CPU
    ("Darwin", False, "default", None),
])
def test_auto_choice_follows_the_gpu_and_the_platform(system, gpu, build, index):
    c = R.choose_torch(system=system, gpu=gpu, environ={})
    assert (c.build, c.index_url, c.requirement) == (build, index, R.DEFAULT_TORCH)
    assert c.reason


def test_choice_overrides():
    assert R.choose_torch("cpu", system="Linux", gpu=True, environ={}).build == "cpu"
    env = {R.ENV_TORCH_BUILD: "cuda", R.ENV_TORCH: "torch==2.12.1", R.ENV_TORCH_INDEX: "https://mirror/simple"}
    c = R.choose_torch(system="Linux", gpu=False, environ=env)
    assert (c.build, c.requirement, c.index_url) == ("cuda", "torch==2.12.1", "https://mirror/simple")
    with pytest.raises(R.BootstrapError):
        R.choose_torch("rocm", system="Linux", environ={})
    with pytest.raises(R.BootstrapError):
        R.choose_torch("cuda", system="Darwin", environ={})


def test_gpu_detection_uses_nvidia_smi(monkeypatch):
    class Out:
        def __init__(self, rc, text):
            self.returncode, self.stdout = rc, text

    monkeypatch.setattr(R.shutil, "which", lambda name, path=None: "/usr/bin/nvidia-smi")
    assert R.has_nvidia_gpu(run=lambda *a, **k: Out(0, "GPU 0: NVIDIA H100 (UUID: x)\n"))
    assert not R.has_nvidia_gpu(run=lambda *a, **k: Out(9, "NVIDIA-SMI has failed"))
    assert not R.has_nvidia_gpu(run=lambda *a, **k: Out(0, "No devices found."))
    monkeypatch.setattr(R.shutil, "which", lambda name, path=None: None)
    assert not R.has_nvidia_gpu(run=lambda *a, **k: Out(0, "GPU 0"))


# ---------------------------------------------------------------------------------------------------- the plan
def test_runtime_requirements_leave_out_the_gui_torch_and_extras(wheel):
    assert R.wheel_requirements(wheel) == ["numpy>=1.24", "safetensors>=0.4", "imageio-ffmpeg>=0.5"]


def test_the_project_wheel_lists_no_gui_package_for_the_runtime(tmp_path):
    """pyproject's own dependencies: the runtime gets the engine's, never PySide6/qasync/torch."""
    tomllib = pytest.importorskip("tomllib")
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = [r.split(">")[0].split("=")[0].lower()
             for r in R.wheel_requirements(make_wheel(tmp_path / "meta.whl", deps))]
    assert "pyside6" not in names and "qasync" not in names and "torch" not in names
    assert "numpy" in names and "safetensors" in names


def test_online_plan_commands(tmp_path, wheel):
    rt = tmp_path / "rt"
    choice = R.choose_torch("cpu", system="Linux", environ={})
    plan = R.make_plan(rt, wheel=wheel, base_python="/usr/bin/python3", choice=choice)
    keys = [s.key for s in plan.steps]
    assert keys == ["venv", "torch", "deps", "engine", "verify", "model"]
    py = str(R.venv_python(rt))
    venv, torch, deps, engine, verify, model = plan.steps
    assert venv.argv == ["/usr/bin/python3", "-m", "venv", "--clear", str(rt / "venv")]
    assert torch.argv[:4] == [py, "-m", "pip", "install"]
    assert torch.argv[-3:] == ["--index-url", "https://download.pytorch.org/whl/cpu", "torch==2.13.0"]
    assert "--no-index" not in torch.argv
    assert deps.argv[-3:] == ["numpy>=1.24", "safetensors>=0.4", "imageio-ffmpeg>=0.5"]
    assert "--index-url" not in deps.argv  # the engine's dependencies come from the default index
    assert engine.argv[-3:] == ["--no-deps", "--force-reinstall", str(wheel)]
    assert verify.argv[:2] == [py, "-c"] and "import json, sys, torch, fastvideo.serve" in verify.argv[2]
    assert model.argv == [py, "-m", "fastvideo.builtin"]


def test_offline_plan_uses_only_the_wheel_folder(tmp_path, wheel):
    rt = tmp_path / "rt"
    fake_venv(rt)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    choice = R.choose_torch("cuda", system="Linux", environ={})
    plan = R.make_plan(rt, wheel=wheel, base_python="python3", choice=choice, wheels_dir=wheels, make_model=False)
    assert [s.key for s in plan.steps] == ["torch", "deps", "engine", "verify"]  # the venv is there already
    for step in plan.steps[:3]:
        assert step.argv[3] == "--isolated"  # the user's pip config and PIP_* variables do not apply
        i = step.argv.index("--find-links")
        assert step.argv[i - 1] == "--no-index" and step.argv[i + 1] == str(wheels.resolve())
        assert "--index-url" not in step.argv


# ---------------------------------------------------------------------------------------------------- marker/repair
def test_check_detects_missing_unfinished_outdated_and_ready(tmp_path, wheel):
    rt = tmp_path / "rt"
    assert R.check(rt, wheel) == R.Status(False, "create", "the inference runtime is not installed yet")
    fake_venv(rt)
    st = R.check(rt, wheel)
    assert (st.ok, st.action) == (False, "install") and "did not finish" in st.reason
    choice = R.choose_torch("cpu", system="Linux", environ={})
    plan = R.make_plan(rt, wheel=wheel, base_python="python3", choice=choice)
    marker = R.finish(plan, 'noise\nRUNTIME {"torch": "2.13.0+cpu", "cuda": false, "python": "3.11.7"}\n',
                      "/models/builtin/tiny-wan-t2v\n", 12.34)
    data = json.loads(R.marker_path(rt).read_text())
    assert data["torch_version"] == "2.13.0+cpu" and data["torch_build"] == "cpu" and data["seconds"] == 12.3
    assert data["default_model"] == "/models/builtin/tiny-wan-t2v" and data["project_sha256"] == R.sha256(wheel)
    assert marker.source == "https://download.pytorch.org/whl/cpu"
    assert R.check(rt, wheel).ok
    assert R.check(rt, wheel, torch_build="auto").ok
    # asking for another torch build is a repair
    st = R.check(rt, wheel, torch_build="cuda")
    assert (st.ok, st.action) == (False, "install") and "cuda" in st.reason
    # a newer bundle (another project wheel) is a repair
    newer = make_wheel(tmp_path / "new" / wheel.name, ["numpy"], payload="newer")
    st = R.check(rt, newer)
    assert (st.ok, st.action) == (False, "install") and "newer engine" in st.reason
    # a marker of another format counts as unfinished
    R.marker_path(rt).write_text('{"version": 99}')
    assert R.check(rt, wheel).action == "install"


def test_check_recreates_when_the_base_python_is_gone(tmp_path, wheel):
    rt = tmp_path / "rt"
    fake_venv(rt, home=str(tmp_path / "no-such-python"))
    st = R.check(rt, wheel)
    assert (st.ok, st.action) == (False, "create") and "is gone" in st.reason


def test_a_started_setup_drops_the_old_marker(tmp_path, wheel):
    rt = tmp_path / "rt"
    fake_venv(rt)
    plan = R.make_plan(rt, wheel=wheel, base_python="python3", choice=R.choose_torch("cpu", environ={}))
    R.finish(plan, "", "", 1.0)
    assert R.check(rt, wheel).ok
    R.prepare_runtime_dir(plan)  # cancelled or failed after this: the next launch repairs
    assert not R.check(rt, wheel).ok


def test_prepare_plans_only_when_needed(tmp_path, wheel, monkeypatch):
    rt = tmp_path / "rt"
    monkeypatch.setenv(R.ENV_RUNTIME_DIR, str(rt))
    monkeypatch.setenv(R.ENV_TORCH_BUILD, "cpu")
    status, plan = R.prepare(wheel=wheel, python=sys.executable)
    assert status.action == "create" and plan is not None and plan.steps[0].key == "venv"
    assert plan.runtime == rt and plan.base_python == sys.executable
    R.finish(plan, "", "", 1.0)
    fake_venv(rt)
    status, plan = R.prepare(wheel=wheel)
    assert status.ok and plan is None
    status, plan = R.prepare(wheel=wheel, force=True)
    assert plan is not None and plan.steps[0].key == "torch"  # the venv is kept
    with pytest.raises(R.BootstrapError, match="no torch wheel"):
        R.prepare(wheel=wheel, force=True, wheels_dir=tmp_path)
    with pytest.raises(R.BootstrapError, match="does not exist"):
        R.prepare(wheel=wheel, force=True, wheels_dir=tmp_path / "nope")
    with pytest.raises(R.BootstrapError, match="no project wheel"):
        R.prepare(wheel=tmp_path / "missing.whl")


def test_base_python_is_found_and_checked(tmp_path, monkeypatch):
    path, version = R.find_base_python(sys.executable)
    assert path == sys.executable and version[:2] == tuple(sys.version_info[:2])
    with pytest.raises(R.BootstrapError, match="not a Python"):
        R.find_base_python(str(tmp_path / "nope"))
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    monkeypatch.delenv(R.ENV_PYTHON, raising=False)
    with pytest.raises(R.BootstrapError, match="needs Python 3.10"):
        R.find_base_python()


# ---------------------------------------------------------------------------------------------------- frozen hooks
def test_not_frozen_keeps_sys_executable():
    assert not R.is_frozen()
    assert R.worker_launch(None) == (None, {})


def test_frozen_worker_uses_the_runtime_python_without_bundle_paths(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path / "bundle"))
    monkeypatch.setenv("LD_LIBRARY_PATH_ORIG", "/opt/lib")
    monkeypatch.setenv("_PYI_APPLICATION_HOME_DIR", "x")
    monkeypatch.delenv(R.ENV_RUNTIME_DIR, raising=False)
    python, env = R.worker_launch(tmp_path / "data")
    assert python == str(R.venv_python(tmp_path / "data" / "runtime"))
    assert env["LD_LIBRARY_PATH"] == "/opt/lib"
    assert env["LD_LIBRARY_PATH_ORIG"] is None and env["_PYI_APPLICATION_HOME_DIR"] is None
    monkeypatch.delenv("LD_LIBRARY_PATH_ORIG")
    python, env = R.worker_launch(tmp_path / "data")
    assert env["LD_LIBRARY_PATH"] is None  # the bootloader's own value is taken out


def test_studio_starts_the_runtime_python_when_frozen(qtbot, tmp_path, monkeypatch):
    from app.services.studio import Studio

    studio = Studio(tmp_path / "plain", worker_enabled=False)
    assert studio.client.python == sys.executable and "PYTHONPATH" in studio.client.extra_env
    studio.close()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.delenv(R.ENV_RUNTIME_DIR, raising=False)
    studio = Studio(tmp_path / "frozen", worker_enabled=False)
    try:
        assert studio.client.python == str(R.venv_python((tmp_path / "frozen").resolve() / "runtime"))
        assert "PYTHONPATH" not in studio.client.extra_env or studio.client.extra_env["PYTHONPATH"] is None
    finally:
        studio.close()


def test_frozen_gui_reads_videos_with_the_runtime_ffmpeg(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    monkeypatch.setenv(R.ENV_RUNTIME_DIR, str(tmp_path / "rt"))
    # setenv first so teardown removes the variable use_runtime_ffmpeg() sets (no leak into later tests).
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", "unset-me")
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE")
    assert R.use_runtime_ffmpeg() is None  # no runtime yet: imageio-ffmpeg looks on PATH
    exe = R.venv_dir(tmp_path / "rt") / "lib" / "python3.11" / "site-packages" / "imageio_ffmpeg" / "binaries"
    exe.mkdir(parents=True)
    (exe / "README.md").write_text("")
    (exe / "ffmpeg-linux-x86_64-v7").write_text("")
    if os.name != "nt":
        assert R.use_runtime_ffmpeg() == exe / "ffmpeg-linux-x86_64-v7"
        assert os.environ["IMAGEIO_FFMPEG_EXE"] == str(exe / "ffmpeg-linux-x86_64-v7")


def test_dialog_runs_a_plan_and_writes_the_marker(qtbot, tmp_path, wheel):
    """The progress dialog runs each step (here: small Python commands) and accepts at the end."""
    from PySide6.QtWidgets import QDialog

    from app.bootstrap.dialog import BootstrapDialog

    rt = tmp_path / "rt"
    fake_venv(rt)
    choice = R.choose_torch("cpu", environ={})
    plan = R.make_plan(rt, wheel=wheel, base_python="python3", choice=choice, make_model=False)
    code = "import sys; print('Collecting torch'); print('RUNTIME {\"torch\": \"2.13.0+cpu\", \"cuda\": false}')"
    plan.steps[:] = [R.Step("torch", "Installing torch", [sys.executable, "-c", "print('Collecting torch')"], 6),
                     R.Step("verify", "Checking", [sys.executable, "-c", code], 1)]
    dlg = BootstrapDialog(plan, "the inference runtime is not installed yet")
    qtbot.addWidget(dlg)
    dlg.start()
    qtbot.waitUntil(lambda: dlg.result() == QDialog.DialogCode.Accepted, timeout=20000)
    assert dlg.marker is not None and dlg.marker.torch_version == "2.13.0+cpu"
    assert "Collecting torch" in dlg.log_view.toPlainText()
    assert R.check(rt, wheel).ok


def test_dialog_shows_a_failed_step_and_can_be_cancelled(qtbot, tmp_path, wheel):
    from app.bootstrap.dialog import BootstrapDialog

    rt = tmp_path / "rt"
    fake_venv(rt)
    plan = R.make_plan(rt, wheel=wheel, base_python="python3", choice=R.choose_torch("cpu", environ={}))
    fail = "import sys; print('ERROR: No matching distribution'); sys.exit(1)"
    plan.steps[:] = [R.Step("torch", "Installing torch", [sys.executable, "-c", fail])]
    dlg = BootstrapDialog(plan)
    qtbot.addWidget(dlg)
    dlg.start()
    qtbot.waitUntil(lambda: dlg.error is not None, timeout=20000)
    assert "No matching distribution" in dlg.error and dlg.retry_button.isVisibleTo(dlg)
    assert not R.check(rt, wheel).ok
    # a long step is killed by Cancel; the runtime stays "unfinished"
    plan.steps[:] = [R.Step("torch", "Installing torch", [sys.executable, "-c", "import time; time.sleep(60)"])]
    dlg.start()
    qtbot.waitUntil(lambda: dlg.proc is not None and dlg.proc.processId() > 0, timeout=10000)
    dlg.cancel()
    assert dlg.proc is None and dlg.result() == 0
    assert not R.check(rt, wheel).ok


def test_cli_check_and_problem_exit_codes(tmp_path, wheel, capsys, monkeypatch):
    from app.bootstrap.cli import main

    # --runtime-dir sets FASTVIDEO_STUDIO_RUNTIME for the process; restore it after the test.
    monkeypatch.setenv(R.ENV_RUNTIME_DIR, str(tmp_path / "rt"))

    assert main(["--runtime-dir", str(tmp_path / "rt"), "--project-wheel", str(wheel), "--check"]) == 1
    assert "needs setup" in capsys.readouterr().out
    assert main(["--runtime-dir", str(tmp_path / "rt"), "--project-wheel", str(wheel),
                 "--wheels", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err

"""The studio on Qt's xcb (X11) platform: the missing-library check before the QApplication (issue 24),
and the real ``fastvideo-studio`` under Xvfb generating one video through its window."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app import platform_check as pc

ROOT = Path(__file__).resolve().parents[2]

# What ``ldd libqxcb.so`` printed on a Debian 12 machine without libxcb-icccm4 and libxcb-keysyms1 (trimmed).
LDD_MISSING = """\
\tlinux-vdso.so.1 (0x00007f69df5c2000)
\tlibQt6XcbQpa.so.6 => /x/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x00007f69df4f4000)
\tlibGL.so.1 => /lib/x86_64-linux-gnu/libGL.so.1 (0x00007f69df464000)
\tlibxkbcommon-x11.so.0 => /lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 (0x00007f69df411000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f69df40a000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007f69df402000)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-randr.so.0 => /lib/x86_64-linux-gnu/libxcb-randr.so.0 (0x00007f69df3e9000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f69dd61e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f69df5c4000)
"""
DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'
UBUNTU = 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n'
MINT = 'NAME="Linux Mint"\nID=linuxmint\nID_LIKE="ubuntu debian"\n'
FEDORA = 'NAME="Fedora Linux"\nID=fedora\n'
ARCH = 'NAME="Arch Linux"\nID=arch\n'


def _fake_pyside(tmp_path: Path) -> Path:
    root = tmp_path / "PySide6"
    for rel in (pc.PLUGIN, pc.XCB_QPA):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"\x7fELF")
    return root


# ------------------------------------------------------------------------------------- parsing and mapping
def test_parse_ldd_lists_each_missing_library_once_in_order():
    assert pc.parse_ldd(LDD_MISSING) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert pc.parse_ldd("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n") == []
    assert pc.parse_ldd("") == []


@pytest.mark.parametrize("text, family", [(DEBIAN, "apt"), (UBUNTU, "apt"), (MINT, "apt"), (FEDORA, "dnf"),
                                          ('ID="rhel"\nID_LIKE="fedora"\n', "dnf"), (ARCH, None), ("", None)])
def test_distribution_family_from_os_release(text, family):
    assert pc.distro_family(text) == family


def test_missing_libraries_give_the_exact_apt_command(tmp_path):
    calls = []

    def ldd(path):
        calls.append(Path(path).name)
        return LDD_MISSING if path.name == "libqxcb.so" else "\tlibxcb-cursor.so.0 => not found\n"

    result = pc.check(pyside=_fake_pyside(tmp_path), family="apt", ldd_runner=ldd, force=True)
    assert calls == ["libqxcb.so", "libQt6XcbQpa.so.6"]  # the plugin, then the integration library it loads
    assert result.missing == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-cursor.so.0"]
    assert result.install_command() == "sudo apt install libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0"
    msg = result.message()
    assert "  libxcb-keysyms.so.1  (package libxcb-keysyms1)" in msg
    assert "  sudo apt install libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0" in msg


def test_fedora_names_and_unknown_libraries(tmp_path):
    text = "\tlibxcb-icccm.so.4 => not found\n\tlibxcb-randr.so.0 => not found\n\tlibxcb-shape.so.0 => not found\n" \
           "\tlibweird.so.9 => not found\n"
    result = pc.check(pyside=_fake_pyside(tmp_path), family="dnf", ldd_runner=lambda p: text, force=True)
    assert result.install_command() == "sudo dnf install xcb-util-wm libxcb"  # one package, named once
    assert "libweird.so.9" in result.message() and "dnf provides" in result.message()
    generic = pc.SystemCheck(missing=pc.parse_ldd(text), family=None)  # neither apt nor dnf
    assert generic.install_command() is None
    assert "sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in generic.message()


def test_every_table_entry_has_both_names():
    for soname, (deb, rpm) in pc.PACKAGES.items():
        assert soname.startswith("lib") and ".so." in soname and deb and rpm
    for soname in ("libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxkbcommon-x11.so.0",
                   "libxcb-render-util.so.0", "libxcb-image.so.0", "libxcb-randr.so.0", "libxcb-shape.so.0",
                   "libxcb-xinerama.so.0", "libxcb-xkb.so.1", "libEGL.so.1", "libfontconfig.so.1",
                   "libdbus-1.so.3", "libGL.so.1"):
        assert soname in pc.PACKAGES


@pytest.mark.parametrize("env, xcb", [
    ({"DISPLAY": ":0"}, True),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, True),
    ({"QT_QPA_PLATFORM": "xcb"}, True),
    ({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, False),
    ({"QT_QPA_PLATFORM": "wayland;xcb", "DISPLAY": ":0"}, False),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, False),
    ({}, False),
])
def test_the_check_runs_only_when_qt_will_use_xcb(env, xcb):
    assert pc.will_use_xcb(env, platform="linux") is xcb
    assert pc.will_use_xcb({"DISPLAY": ":0"}, platform="darwin") is False
    result = pc.check(environ=env, pyside=Path("/nonexistent"), family="apt", ldd_runner=lambda p: LDD_MISSING)
    assert (result.skipped is None or "PySide6" in result.skipped or "not found" in result.skipped) is xcb


def test_frozen_bundle_uses_meipass(monkeypatch, tmp_path):
    internal = tmp_path / "_internal"
    root = _fake_pyside(internal)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(internal), raising=False)
    assert pc.pyside_dir() == root


BUNDLE = Path(__file__).resolve().parents[2] / "dist" / "fastvideo-studio" / "_internal"


@pytest.mark.skipif(not (BUNDLE / "PySide6" / pc.PLUGIN).is_file() or shutil.which("ldd") is None,
                    reason="no built bundle in dist/ (python3 packaging/build_linux.py) or no ldd")
def test_frozen_bundle_real_ldd(monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(BUNDLE), raising=False)
    result = pc.check(force=True)
    assert [Path(p).name for p in result.checked] == ["libqxcb.so", "libQt6XcbQpa.so.6"]
    assert all(str(BUNDLE) in p for p in result.checked)
    assert "libQt6XcbQpa.so.6" not in result.missing  # the bundle's own Qt libraries resolve inside it


def test_this_pyside_is_found_without_importing_qt():
    code = ("import sys; from app import platform_check as pc; p = pc.pyside_dir(); "
            "assert (p / pc.PLUGIN).is_file(), p; "
            "assert not [m for m in sys.modules if m.startswith('PySide6.Qt')], sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ------------------------------------------------------------------------------ the real entry point
def _studio_cmd() -> list[str]:
    script = Path(sys.executable).parent / "fastvideo-studio"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "app"]


def test_real_entry_point_names_missing_libraries_instead_of_aborting(tmp_path):
    """The real ``fastvideo-studio`` with an ``ldd`` that reports the two libraries Qt's message omits."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "ldd").write_text("#!/bin/sh\ncat <<'EOF'\n" + LDD_MISSING + "EOF\n")
    (bindir / "ldd").chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", DISPLAY=":987", QT_QPA_PLATFORM="xcb")
    env.pop(pc.SKIP_ENV, None)
    proc = subprocess.run(_studio_cmd() + ["--data-dir", str(tmp_path / "data")], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == pc.EXIT_MISSING, proc.stderr
    assert "libxcb-icccm.so.4  (package libxcb-icccm4)" in proc.stderr
    if pc.distro_family() == "apt":
        assert "sudo apt install libxcb-icccm4 libxcb-keysyms1" in proc.stderr
    assert "Fatal Python error" not in proc.stderr and "Aborted" not in proc.stderr
    check = subprocess.run(_studio_cmd() + ["--check-system"], env=env, capture_output=True, text=True, timeout=60)
    assert check.returncode == pc.EXIT_MISSING and "libxcb-keysyms.so.1" in check.stdout


@pytest.fixture
def xvfb():
    """A private Xvfb display (it picks a free number itself: -displayfd); scripts/shotkit.py starts it."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from shotkit import XvfbError, start_xvfb, stop_xvfb
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (bash scripts/ci-system-deps.sh installs it)")
    try:
        proc, display = start_xvfb("1280x1024x24")
    except XvfbError as exc:
        pytest.fail(str(exc))
    yield display
    stop_xvfb(proc)


def test_real_studio_on_xcb_generates_a_video_and_closes_cleanly(xvfb, tmp_path):
    from fastvideo.builtin import shipped_model

    model = shipped_model()
    if model is None:
        pytest.skip("no shipped model in resources/models")
    missing = pc.check(force=True)
    if not missing.ok:
        pytest.skip("Qt's xcb plugin lacks system libraries here: " + " ".join(missing.missing)
                    + " (bash scripts/ci-system-deps.sh installs them)")
    shot, report = tmp_path / "window.png", tmp_path / "report.json"
    drive = {"prompt": "a red circle moves to the right on a blue background", "seed": 7,
             "screenshot": str(shot), "report": str(report), "timeout": 400}
    env = dict(os.environ, DISPLAY=xvfb, QT_QPA_PLATFORM="xcb", FASTVIDEO_STUDIO_AUTODRIVE=json.dumps(drive))
    proc = subprocess.run(_studio_cmd() + ["--data-dir", str(tmp_path / "data"), "--model", str(model)], env=env,
                          capture_output=True, text=True, timeout=480)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Fatal Python error" not in out and "could not load the Qt platform plugin" not in out.lower()
    r = json.loads(report.read_text())
    assert r["platform"] == "xcb", r
    assert r["error"] is None and r["state"] == "done", r
    assert r["seed"] == 7 and Path(r["output_path"]).is_file(), r
    assert r["player_frames"] == 17, r
    assert r["menus"] == ["File", "Edit", "View", "Help"], r  # closed through File → Quit
    assert r["devices"].startswith("CPU only") or "GiB" in r["devices"] or "GPU" in r["devices"], r  # truthful
    assert r["screenshot_saved"] and shot.stat().st_size > 10_000
    from PySide6.QtGui import QImage

    img = QImage(str(shot))
    assert (img.width(), img.height()) != (0, 0)

#!/usr/bin/env python3
"""Build the Linux distributable of FastVideo Studio in one command.

    python3 packaging/build_linux.py [--clean] [--no-tarball] [--smoke]

1. a build environment in build/buildenv (PyInstaller + PySide6-Essentials / -Addons (QtMultimedia),
   Pillow and the GUI's few pure dependencies; never torch), reused while packaging/requirements-build.txt is unchanged;
2. the project wheel (build/wheel/fastvideo_studio-*.whl) that the runtime bootstrap installs;
3. PyInstaller (packaging/fastvideo-studio.spec) -> dist/fastvideo-studio/ (one folder);
4. the launcher files: fastvideo-studio.desktop, fastvideo-studio.png, install.sh, README.txt;
5. dist/fastvideo-studio-<version>-linux-<arch>.tar.gz;
6. build/build-report.json: sizes and how long each part took.

Needs Python 3.10+ with venv and a reachable package index (or pip's find-links) the first time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
DIST = ROOT / "dist"
ENV = BUILD / "buildenv"
REQS = ROOT / "packaging" / "requirements-build.txt"
NAME = "fastvideo-studio"


def log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def run(argv: list[str], **kw) -> None:
    log(" ".join(str(a) for a in argv))
    subprocess.run([str(a) for a in argv], check=True, **kw)


def env_python() -> Path:
    return ENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def project_version() -> str:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import re

        text = (ROOT / "pyproject.toml").read_text()
        return re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def make_buildenv() -> float:
    t0 = time.monotonic()
    stamp = ENV / ".requirements.sha256"
    want = hashlib.sha256(REQS.read_bytes()).hexdigest()
    if env_python().exists() and stamp.is_file() and stamp.read_text().strip() == want:
        log(f"reusing {ENV}")
        return 0.0
    if ENV.exists():
        shutil.rmtree(ENV)
    run([sys.executable, "-m", "venv", ENV])
    run([env_python(), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", REQS])
    stamp.write_text(want + "\n")
    return time.monotonic() - t0


def check_qt() -> None:
    """Refuse to freeze a PySide6 that aborts on this Python (app/qtcheck.py: 6.12.0 on 3.10/3.11)."""
    out = subprocess.run([str(env_python()), "-m", "app.qtcheck"], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT)), timeout=120)
    log(out.stdout.strip() or out.stderr.strip())
    if out.returncode != 0:
        raise SystemExit("the build environment's PySide6 drops Python references on this Python (see above); "
                         "a bundle built from it would abort. Pin a tested PySide6 in "
                         "packaging/requirements-build.txt (docs/packaging.md lists them) and run with --clean.")


def make_wheel() -> Path:
    out = BUILD / "wheel"
    if out.exists():
        shutil.rmtree(out)
    for stale in [BUILD / "lib", *BUILD.glob("bdist.*")]:  # setuptools' own scratch space in build/
        shutil.rmtree(stale, ignore_errors=True)
    run([env_python(), "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps",
         "--no-build-isolation", "-w", out, ROOT])
    wheels = sorted(out.glob("fastvideo_studio-*.whl"))
    if not wheels:
        raise SystemExit("the project wheel was not built")
    return wheels[-1]


def make_icon_png(target: Path, size: int = 256) -> None:
    code = (
        "import sys\n"
        "from PySide6.QtGui import QGuiApplication, QImage, QPainter\n"
        "from PySide6.QtSvg import QSvgRenderer\n"
        "from PySide6.QtCore import Qt\n"
        "app = QGuiApplication(['x'])\n"
        "img = QImage(int(sys.argv[3]), int(sys.argv[3]), QImage.Format.Format_ARGB32)\n"
        "img.fill(Qt.GlobalColor.transparent)\n"
        "p = QPainter(img); QSvgRenderer(sys.argv[1]).render(p); p.end()\n"
        "assert img.save(sys.argv[2])\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    run([env_python(), "-c", code, ROOT / "resources" / "icon.svg", target, str(size)], env=env)


DESKTOP = """[Desktop Entry]
Type=Application
Name=FastVideo Studio
GenericName=Video generator
Comment=Generate videos with diffusion models on your GPUs
Exec=fastvideo-studio %F
Icon=fastvideo-studio
Terminal=false
Categories=Graphics;Video;AudioVideo;
StartupWMClass=fastvideo-studio
"""

INSTALL_SH = """#!/bin/sh
# Put FastVideo Studio in the application menu (for this user) and on PATH (~/.local/bin).
# The bundle stays where it is; run this again after moving it.  --uninstall removes both.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/256x256/apps"
bin="$HOME/.local/bin"
if [ "${1:-}" = "--uninstall" ]; then
  rm -f "$apps/fastvideo-studio.desktop" "$icons/fastvideo-studio.png" "$bin/fastvideo-studio"
  echo "removed the menu entry and $bin/fastvideo-studio (the bundle and your data stay)"
  exit 0
fi
mkdir -p "$apps" "$icons" "$bin"
cp "$here/fastvideo-studio.png" "$icons/fastvideo-studio.png"
sed -e "s|^Exec=.*|Exec=\\"$here/fastvideo-studio\\" %F|" -e "s|^Icon=.*|Icon=$here/fastvideo-studio.png|" \\
  "$here/fastvideo-studio.desktop" > "$apps/fastvideo-studio.desktop"
ln -sf "$here/fastvideo-studio" "$bin/fastvideo-studio"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$apps" || true
echo "FastVideo Studio is in the application menu; from a terminal: fastvideo-studio"
"""

README_TXT = """FastVideo Studio {version} for Linux ({arch})

Start:    ./fastvideo-studio
Install:  ./install.sh      (menu entry + ~/.local/bin/fastvideo-studio; ./install.sh --uninstall)

First launch sets up the inference runtime (torch + the engine) in the studio's data folder
(~/.local/share/fastvideo-studio/runtime) with a progress window: it needs Python 3.10+ with
venv on the machine (Debian/Ubuntu: sudo apt install python3 python3-venv) and either the
network or a folder of wheels:

    ./fastvideo-studio --setup-runtime --wheels /path/to/wheels     # offline, in the terminal
    ./fastvideo-studio --setup-runtime --torch cpu                   # force the CPU build

Full guide: docs/packaging.md in the source repository.
"""


def add_launcher_files(bundle: Path, version: str, arch: str) -> None:
    (bundle / f"{NAME}.desktop").write_text(DESKTOP)
    make_icon_png(bundle / f"{NAME}.png")
    inst = bundle / "install.sh"
    inst.write_text(INSTALL_SH)
    inst.chmod(0o755)
    (bundle / "README.txt").write_text(README_TXT.format(version=version, arch=arch))


def make_tarball(bundle: Path, target: Path) -> None:
    top = target.name[: -len(".tar.gz")]
    with tarfile.open(target, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=top)


def smoke(bundle: Path) -> None:
    shot = BUILD / "smoke" / "screenshot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    run([bundle / NAME, "--screenshot", shot, "--data-dir", BUILD / "smoke" / "data"], env=env, timeout=120)
    log(f"smoke screenshot: {shot} ({shot.stat().st_size} bytes)")
    # The frozen app's own check of Qt's xcb plugin libraries (app/platform_check.py, on _internal/PySide6).
    out = subprocess.run([str(bundle / NAME), "--check-system"], capture_output=True, text=True, timeout=120)
    log(f"smoke --check-system (exit {out.returncode}): {(out.stdout + out.stderr).strip()}")
    if out.returncode not in (0, 4):
        raise SystemExit("the frozen studio's --check-system did not run its check (see above)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clean", action="store_true", help="rebuild the build environment and PyInstaller's cache")
    p.add_argument("--no-tarball", action="store_true", help="stop after the one-folder bundle")
    p.add_argument("--smoke", action="store_true", help="run the frozen binary once (--screenshot) at the end")
    args = p.parse_args(argv)
    if not sys.platform.startswith("linux"):
        log("this script builds the Linux package; see packaging/README.md for Windows and macOS")
    t_all = time.monotonic()
    BUILD.mkdir(exist_ok=True)
    DIST.mkdir(exist_ok=True)
    if args.clean:
        for d in (ENV, BUILD / "pyinstaller"):
            shutil.rmtree(d, ignore_errors=True)
    version = project_version()
    arch = platform.machine() or "x86_64"
    timings: dict[str, float] = {}

    timings["build_env_s"] = make_buildenv()
    check_qt()
    t = time.monotonic()
    wheel = make_wheel()
    timings["wheel_s"] = time.monotonic() - t

    t = time.monotonic()
    bundle = DIST / NAME
    if bundle.exists():
        shutil.rmtree(bundle)
    run([env_python(), "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--distpath", DIST,
         "--workpath", BUILD / "pyinstaller", ROOT / "packaging" / f"{NAME}.spec"],
        env=dict(os.environ, FASTVIDEO_BUNDLE_WHEEL_DIR=str(wheel.parent)))
    timings["pyinstaller_s"] = time.monotonic() - t
    add_launcher_files(bundle, version, arch)

    tarball = None
    if not args.no_tarball:
        t = time.monotonic()
        tarball = DIST / f"{NAME}-{version}-linux-{arch}.tar.gz"
        make_tarball(bundle, tarball)
        timings["tarball_s"] = time.monotonic() - t
    timings["total_s"] = time.monotonic() - t_all

    internal = bundle / "_internal"
    report = {
        "version": version, "arch": arch, "python": platform.python_version(),
        "bundle": str(bundle), "bundle_bytes": du(bundle),
        "tarball": str(tarball) if tarball else None, "tarball_bytes": tarball.stat().st_size if tarball else None,
        "wheel": wheel.name, "wheel_bytes": wheel.stat().st_size,
        "shipped_model": (internal / "resources" / "models" / "fastvideo-shapes-t2v" / "model_index.json").is_file(),
        "largest": sorted(((du(p), p.name) for p in internal.iterdir()), reverse=True)[:8],
        **{k: round(v, 1) for k, v in timings.items()},
    }
    (BUILD / "build-report.json").write_text(json.dumps(report, indent=2) + "\n")
    log(f"bundle  {bundle}  {report['bundle_bytes'] / 2**20:.0f} MiB")
    if tarball:
        log(f"tarball {tarball}  {report['tarball_bytes'] / 2**20:.0f} MiB")
    log("times   " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))
    if args.smoke:
        smoke(bundle)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

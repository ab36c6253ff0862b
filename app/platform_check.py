"""Can Qt's X11 (xcb) platform plugin load here?  Checked before the QApplication exists.

PySide6's wheels bundle Qt but not the X11 libraries its xcb plugin links against
(``libxcb-cursor0``, ``libxcb-icccm4``, ``libxcb-keysyms1``, ...).  On a plain desktop
install one of them is often missing and Qt aborts with a message that names only
some of them.  :func:`check` runs ``ldd`` on the plugin (``Qt/plugins/platforms/libqxcb.so``)
and on the integration library it loads (``Qt/lib/libQt6XcbQpa.so.6``), collects the
libraries reported ``not found``, maps each to its distribution package and gives the
exact install command; ``fastvideo-studio`` prints it and exits 4 instead of aborting.

    fastvideo-studio --check-system      # print the result and exit (0: ok, 4: libraries missing)

No Qt module is imported here (only the PySide6 package folder is located), so a missing
library cannot abort the check itself.  Works in the frozen bundle too, where the folder
is ``sys._MEIPASS/PySide6`` (``_internal/PySide6``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

EXIT_MISSING = 4
SKIP_ENV = "FASTVIDEO_STUDIO_SKIP_SYSTEM_CHECK"
PLUGIN = Path("Qt") / "plugins" / "platforms" / "libqxcb.so"
XCB_QPA = Path("Qt") / "lib" / "libQt6XcbQpa.so.6"

# soname -> (Debian/Ubuntu package, Fedora package).  Names checked with ``dpkg -S`` / ``apt-cache policy``
# on Debian 12 (the Ubuntu 22.04/24.04 names are the same) and Fedora's package contents.
PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-xinerama.so.0": ("libxcb-xinerama0", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libSM.so.6": ("libsm6", "libSM"),
    "libICE.so.6": ("libice6", "libICE"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libGLX.so.0": ("libglx0", "libglvnd-glx"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
}
APT, DNF = "apt", "dnf"


def parse_ldd(text: str) -> list[str]:
    """The sonames ``ldd`` reports as ``not found``, in order, without repeats."""
    out: list[str] = []
    for line in text.splitlines():
        m = re.match(r"\s*(\S+)\s+=>\s+not found", line)
        if m and m.group(1) not in out:
            out.append(m.group(1))
    return out


def distro_family(os_release: str | None = None) -> str | None:
    """``"apt"`` (Debian, Ubuntu and derivatives), ``"dnf"`` (Fedora, RHEL and relatives) or None."""
    if os_release is None:
        for candidate in ("/etc/os-release", "/usr/lib/os-release"):
            try:
                os_release = Path(candidate).read_text(errors="replace")
                break
            except OSError:
                continue
        else:
            return None
    values = {}
    for line in os_release.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip("\"'").lower()
    ids = {values.get("ID", "")} | set(values.get("ID_LIKE", "").split())
    if ids & {"debian", "ubuntu"}:
        return APT
    if ids & {"fedora", "rhel", "centos"}:
        return DNF
    return None


@dataclass
class SystemCheck:
    """What was checked and what is missing; :meth:`message` is what the user sees."""

    checked: list[str] = field(default_factory=list)  # files given to ldd
    missing: list[str] = field(default_factory=list)  # sonames not found
    family: str | None = None
    skipped: str | None = None  # why nothing was checked (not xcb, no ldd, ...)

    @property
    def ok(self) -> bool:
        return not self.missing

    def packages(self) -> tuple[list[str], list[str]]:
        """(packages to install, sonames whose package is unknown) for this distribution family."""
        known, unknown = [], []
        column = {APT: 0, DNF: 1}.get(self.family or "")
        for soname in self.missing:
            pkg = PACKAGES.get(soname)
            if pkg is None or column is None:
                unknown.append(soname)
            elif pkg[column] not in known:
                known.append(pkg[column])
        return known, unknown

    def install_command(self) -> str | None:
        known, _ = self.packages()
        if not known:
            return None
        tool = "apt" if self.family == APT else "dnf"
        return f"sudo {tool} install " + " ".join(known)

    def message(self) -> str:
        if self.skipped:
            return f"system check skipped: {self.skipped}"
        if self.ok:
            return "system libraries for Qt's xcb (X11) platform plugin: all found (" + \
                ", ".join(Path(p).name for p in self.checked) + ")"
        known, unknown = self.packages()
        column = {APT: 0, DNF: 1}.get(self.family or "")
        lines = ["Qt's xcb (X11) platform plugin cannot load: these system libraries are missing:"]
        for soname in self.missing:
            pkg = PACKAGES.get(soname)
            lines.append(f"  {soname}" + (f"  (package {pkg[column]})" if pkg and column is not None else ""))
        command = self.install_command()
        if command:
            lines += ["Install them with:", f"  {command}"]
            if unknown:
                lines.append("and find the package of " + ", ".join(unknown) + " with your package manager "
                             "(apt-file search / dnf provides).")
        else:
            lines.append("Install the packages that provide them with your distribution's package manager "
                         "(on Debian/Ubuntu: sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 "
                         "...; on Fedora: sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms ...).")
        lines.append("Then start the studio again (fastvideo-studio --check-system repeats this check).")
        return "\n".join(lines)


def will_use_xcb(environ=None, platform: str | None = None) -> bool:
    """Will Qt pick its xcb plugin?  Linux, and QT_QPA_PLATFORM is xcb, or unset on an X11 display.

    Unset on a Wayland session (WAYLAND_DISPLAY and XDG_SESSION_TYPE=wayland) Qt 6 tries Wayland first.
    """
    env = os.environ if environ is None else environ
    if not (platform or sys.platform).startswith("linux"):
        return False
    requested = env.get("QT_QPA_PLATFORM", "").strip()
    if requested:
        return requested.split(";")[0].split(":")[0].strip() == "xcb"
    if not env.get("DISPLAY"):
        return False
    wayland = env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE", "").lower() == "wayland"
    return not wayland


def pyside_dir() -> Path | None:
    """PySide6's package folder, found without importing any Qt module (frozen: ``_MEIPASS/PySide6``)."""
    if getattr(sys, "frozen", False):
        base = Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "PySide6"
        return base if base.is_dir() else None
    import importlib.util

    try:
        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for location in spec.submodule_search_locations or []:
        if Path(location).is_dir():
            return Path(location)
    return Path(spec.origin).parent if spec.origin else None


def run_ldd(path: Path, ldd: str = "ldd") -> str:
    proc = subprocess.run([ldd, str(path)], capture_output=True, text=True, timeout=30,
                          env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"})
    return proc.stdout


def check(*, pyside: Path | None = None, family: str | None = None, ldd_runner=run_ldd,
          force: bool = False, environ=None) -> SystemCheck:
    """Run the check; ``force`` checks even when Qt will not use xcb (``--check-system``)."""
    result = SystemCheck(family=family if family is not None else distro_family())
    if not force and not will_use_xcb(environ):
        result.skipped = "Qt will not use its xcb plugin (no DISPLAY, or QT_QPA_PLATFORM is not xcb)"
        return result
    if ldd_runner is run_ldd and shutil.which("ldd") is None:
        result.skipped = "ldd is not installed"
        return result
    root = pyside if pyside is not None else pyside_dir()
    if root is None:
        result.skipped = "PySide6 not found"
        return result
    files = [root / PLUGIN, root / XCB_QPA]
    files = [f for f in files if f.is_file()]
    if not files:
        result.skipped = f"{root / PLUGIN} not found"
        return result
    for f in files:
        result.checked.append(str(f))
        try:
            text = ldd_runner(f)
        except (OSError, subprocess.SubprocessError):
            continue
        for soname in parse_ldd(text):
            if soname not in result.missing:
                result.missing.append(soname)
    return result


def preflight(stream=None) -> int:
    """Before the QApplication: 0 when Qt can start here, else print the install command and return 4."""
    if os.environ.get(SKIP_ENV):
        return 0
    result = check()
    if result.ok:
        return 0
    print("fastvideo-studio: " + result.message(), file=stream or sys.stderr, flush=True)
    return EXIT_MISSING


def main_check_system(stream=None) -> int:
    """``fastvideo-studio --check-system``: check whatever the platform, print the result."""
    result = check(force=True)
    print(result.message(), file=stream or sys.stdout, flush=True)
    return 0 if result.ok else EXIT_MISSING


__all__ = ["EXIT_MISSING", "PACKAGES", "SystemCheck", "check", "distro_family", "main_check_system", "parse_ldd",
           "preflight", "pyside_dir", "will_use_xcb"]

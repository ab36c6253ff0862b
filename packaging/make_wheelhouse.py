#!/usr/bin/env python3
"""Fill a folder with the wheels the studio's runtime needs, for offline machines.

    python3 packaging/make_wheelhouse.py DIR [--torch-index URL] [--python-version 3.11] [--platform TAG]

Run it on a connected machine; copy DIR over; on the offline machine:
``fastvideo-studio --setup-runtime --wheels DIR`` (or start the studio with ``--wheels DIR``).
The wheels must fit the offline machine's Python (the one the runtime is made from) and platform:
pass ``--python-version``/``--platform`` when they differ from this machine.  Torch comes from
``--torch-index`` (e.g. https://download.pytorch.org/whl/cpu for the CPU build; PyPI's Linux wheel
is the CUDA one), pinned like the app (``FASTVIDEO_TORCH`` overrides ``torch==2.13.0``).
Needs build/wheel/ from packaging/build_linux.py (for the engine's dependency list).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.bootstrap.runtime import DEFAULT_TORCH, ENV_TORCH, wheel_requirements  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir")
    p.add_argument("--torch-index", help="index URL for torch (default: pip's configuration / PyPI)")
    p.add_argument("--python-version", help="e.g. 3.11 (default: this Python)")
    p.add_argument("--platform", help="wheel platform tag, e.g. manylinux_2_28_x86_64 or win_amd64")
    args = p.parse_args(argv)
    wheels = sorted((ROOT / "build" / "wheel").glob("fastvideo_studio-*.whl"))
    if not wheels:
        raise SystemExit("no build/wheel/fastvideo_studio-*.whl: run packaging/build_linux.py first")
    torch = os.environ.get(ENV_TORCH) or DEFAULT_TORCH
    pip = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-d", args.dir]
    if args.python_version or args.platform:
        pip += ["--only-binary=:all:"]
        pip += ["--python-version", args.python_version] if args.python_version else []
        pip += ["--platform", args.platform] if args.platform else []
    index = ["--index-url", args.torch_index] if args.torch_index else []
    extra = ["--extra-index-url", args.torch_index] if args.torch_index else []
    subprocess.run(pip + index + [torch], check=True)
    subprocess.run(pip + extra + [torch] + wheel_requirements(wheels[-1]), check=True)
    print(f"wheels for the runtime are in {args.dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

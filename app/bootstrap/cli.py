"""Set up the inference runtime in a terminal (no window): ``fastvideo-studio --setup-runtime``.

Also ``python -m app.bootstrap`` from a checkout (then ``--project-wheel`` names the wheel).
Prints each step and pip's lines; exit 0 when the runtime is ready, 1 when a step failed,
2 for a problem to fix first (no Python 3.10+, empty wheel folder...).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from app.bootstrap import runtime as R


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wheels", metavar="DIR", help="install offline from this folder of wheels (torch and the "
                                                   "engine's dependencies), never from the network")
    p.add_argument("--torch", choices=("auto", "cpu", "cuda"), default=None,
                   help="torch build for the runtime (default auto: CUDA when nvidia-smi sees a GPU)")
    p.add_argument("--runtime-python", metavar="PYTHON", help="Python 3.10+ to create the runtime from "
                                                              f"(default: {R.ENV_PYTHON} or python3 on PATH)")


def run_plan(plan: R.Plan, emit: Callable[[str], None] = print,
             step_started: Callable[[int, R.Step], None] | None = None) -> R.Marker:
    """Run every step with ``subprocess``; raise :class:`R.BootstrapError` on the first failure."""
    R.prepare_runtime_dir(plan)
    env = R.child_env()
    outputs: dict[str, str] = {}
    t0 = time.monotonic()
    for i, step in enumerate(plan.steps):
        if step_started:
            step_started(i, step)
        emit(f"[{i + 1}/{len(plan.steps)}] {step.label}")
        lines: list[str] = []
        proc = subprocess.Popen(step.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", env=env, bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            lines.append(line)
            if line:
                emit("    " + line)
        rc = proc.wait()
        outputs[step.key] = "\n".join(lines)
        if rc != 0:
            tail = "\n".join(x for x in lines if x.strip())[-2000:]
            raise R.BootstrapError(f"{step.label} failed (exit {rc}):\n{tail}")
    return R.finish(plan, outputs.get("verify", ""), outputs.get("model", ""), time.monotonic() - t0)


def setup_runtime(args: argparse.Namespace, data_dir: str | None = None, *, wheel: str | None = None,
                  force: bool = False) -> int:
    try:
        status, plan = R.prepare(data_dir, wheels_dir=args.wheels, torch_build=args.torch,
                                 python=args.runtime_python, wheel=wheel, force=force)
    except R.BootstrapError as exc:
        print(f"fastvideo-studio: {exc}", file=sys.stderr)
        return 2
    if plan is None:
        print(f"runtime ready: {status.reason}")
        return 0
    print(f"setting up the inference runtime in {plan.runtime}: {status.reason}")
    for note in plan.notes:
        print(note)
    try:
        marker = run_plan(plan, lambda s: print(s, flush=True))
    except R.BootstrapError as exc:
        print(f"fastvideo-studio: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fastvideo-studio: cancelled; the next launch finishes the setup", file=sys.stderr)
        return 130
    print(f"runtime ready in {marker.seconds:.0f} s: torch {marker.torch_version} ({marker.torch_build}, "
          f"CUDA {'yes' if marker.cuda_available else 'no'}), python {marker.python}")
    if marker.default_model:
        print(f"default model: {marker.default_model}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.bootstrap", description=__doc__.splitlines()[0])
    add_arguments(p)
    p.add_argument("--data-dir", metavar="DIR", help="the studio's data folder (the runtime goes in DIR/runtime)")
    p.add_argument("--runtime-dir", metavar="DIR", help=f"put the runtime here (also {R.ENV_RUNTIME_DIR})")
    p.add_argument("--project-wheel", metavar="WHL", help="the fastvideo-studio wheel to install "
                                                          "(default: the one in the bundle)")
    p.add_argument("--force", action="store_true", help="reinstall even when the runtime looks fine")
    p.add_argument("--check", action="store_true", help="only say whether the runtime is ready (exit 0) or not (1)")
    args = p.parse_args(argv)
    if args.runtime_dir:
        os.environ[R.ENV_RUNTIME_DIR] = args.runtime_dir
    if args.check:
        rt = R.runtime_dir(args.data_dir)
        wheel = args.project_wheel or R.bundled_wheel()
        status = R.check(rt, None if wheel is None else Path(wheel), torch_build=args.torch)
        print(f"{rt}: {'ready' if status.ok else 'needs setup'} ({status.reason})")
        return 0 if status.ok else 1
    return setup_runtime(args, args.data_dir, wheel=args.project_wheel, force=args.force)


if __name__ == "__main__":
    raise SystemExit(main())

"""Parity tooling: compare one of our components with a reference implementation.

``run_parity(model_path, component, ...)`` (see :mod:`fastvideo.parity.runner`)
returns a JSON-ready report; ``fastvideo parity`` is its command line.
"""

from __future__ import annotations

from typing import Any


def run_parity(*args: Any, **kwargs: Any) -> dict[str, Any]:
    from fastvideo.parity.runner import run_parity as _run

    return _run(*args, **kwargs)


__all__ = ["run_parity"]

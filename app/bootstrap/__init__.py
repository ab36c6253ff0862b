"""The packaged studio's inference runtime: made or repaired on first launch (no torch in app/).

:mod:`.runtime` plans and checks (no Qt), :mod:`.cli` runs a plan in a terminal,
:mod:`.dialog` under a Qt progress dialog.  See docs/packaging.md.
"""

from app.bootstrap.runtime import BootstrapError, is_frozen, runtime_dir, venv_python, worker_launch

__all__ = ["BootstrapError", "is_frozen", "runtime_dir", "venv_python", "worker_launch"]

"""The minimal examples of the docs run verbatim on a tiny local folder (subprocesses, ``model_path`` set first).

docs/porting.md has no generation example; the guide's minimal example lives in docs/engine.md ("Python")
and README.md, and docs/fastvideo-compat.md has the FastVideo-import-path version.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def first_python_block(doc: str, after: str) -> str:
    text = (REPO / doc).read_text()
    text = text[text.index(after):]
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


@pytest.mark.parametrize(("doc", "after"), [("docs/engine.md", "## Python"),
                                            ("README.md", "## Use the engine from Python"),
                                            ("docs/fastvideo-compat.md", "## Minimal example")])
def test_minimal_example_runs_verbatim(doc, after, tiny_t2v, tmp_path):
    model = shutil.copytree(tiny_t2v, tmp_path / "models" / "tiny-wan-t2v")  # small defaults (128x128, 10 steps)
    snippet = first_python_block(doc, after)
    script = tmp_path / "snippet.py"
    script.write_text(f"model_path = {str(model)!r}\n" + snippet)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, script.name], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=280)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert list(tmp_path.rglob("*.mp4"))

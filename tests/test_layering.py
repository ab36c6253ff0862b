"""The layers stay apart: fastvideo/ never imports Qt (or Diffusers); app/ never imports torch."""

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
QT = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "qasync")


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def _offenders(folder: str, banned: tuple[str, ...]):
    out = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for line, mod in _imports(path):
            if mod.split(".")[0] in banned:
                out.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    return out


def test_core_source_never_imports_qt_or_diffusers():
    assert _offenders("fastvideo", QT + ("diffusers",)) == []


def test_app_source_never_imports_torch():
    assert _offenders("app", ("torch", "diffusers", "transformers", "safetensors")) == []


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_importing_fastvideo_and_cli_loads_no_qt():
    out = _run(
        "import sys, pkgutil, importlib, fastvideo\n"
        "from fastvideo.entrypoints.cli.main import build_parser\n"
        "build_parser()\n"
        "for m in pkgutil.walk_packages(fastvideo.__path__, 'fastvideo.'):\n"
        "    if m.name.endswith('__main__'): continue\n"
        "    try:\n"
        "        importlib.import_module(m.name)\n"
        "    except ModuleNotFoundError as e:  # a GPU-only optional package (fastvideo.kernels._quack_epilogues)\n"
        "        if (e.name or '').split('.')[0] not in ('cutlass', 'quack'): raise\n"
        f"print(sorted(k for k in sys.modules if k.split('.')[0] in {QT!r}))"
    )
    assert out == "[]"


def test_bare_import_of_fastvideo_is_light():
    out = _run("import sys, fastvideo; fastvideo.SamplingParam; print('torch' in sys.modules)")
    assert out == "False"


def test_studio_main_window_never_imports_torch(tmp_path):
    out = _run(
        "import os, sys\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        f"os.environ['FASTVIDEO_STUDIO_DATA'] = {str(tmp_path)!r}\n"
        "from app.main import create_window\n"
        "win = create_window(start_worker=False)\n"
        "win.show()\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'diffusers', 'transformers')))"
    )
    assert out.splitlines()[-1] == "[]"

"""Faults around ``fastvideo convert`` and ``--rules`` files (issue 20, items 1-3).

* a conversion killed with SIGKILL leaves its staging folder; the next run removes it (only folders
  that are provably ours: name pattern + marker with a dead pid on this host) and says so on stderr;
* ``--overwrite`` replaces only an empty folder or a model folder, never a folder of other files;
* a malformed ``--rules`` file is a clear error with the file and line (exit 2), never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fastvideo.entrypoints.cli.main import main

pytestmark = pytest.mark.timeout(120)

STAGING_MARKER = ".fastvideo-convert.json"  # fastvideo.conversion.base.STAGING_MARKER
STALE_MSG = "removed a stale staging folder from an interrupted conversion: "


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    from fastvideo.testing.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("faults_convert") / "official", task="t2v", layout="official",
                           seed=0)


@pytest.fixture(scope="module")
def reference(official, tmp_path_factory):
    from fastvideo.conversion.wan import convert_official_to_diffusers

    return convert_official_to_diffusers(official, tmp_path_factory.mktemp("faults_ref") / "ref")


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _fake_staging(parent: Path, name: str, pid: int | None, host: str | None = None) -> Path:
    folder = parent / name
    (folder / "transformer").mkdir(parents=True)
    (folder / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"partial")
    if pid is not None:
        (folder / STAGING_MARKER).write_text(json.dumps(
            {"tool": "fastvideo convert", "kind": "converting", "pid": pid, "host": host or socket.gethostname()}))
    return folder


# ----------------------------------------------------------------------------- 1. SIGKILL mid-way


def test_sigkill_mid_conversion_then_rerun_cleans_up(official, reference, tmp_path, capsys):
    out = tmp_path / "out"
    script = tmp_path / "slow_convert.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        from fastvideo.conversion.wan import convert_official_to_diffusers

        def progress(event):
            print(event["file"], flush=True)
            if event["done"] == 2:
                time.sleep(120)  # killed here, with files half-written in the staging folder

        convert_official_to_diffusers(sys.argv[1], sys.argv[2], progress=progress)
    """))
    proc = subprocess.Popen([sys.executable, str(script), str(official), str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() and proc.stdout.readline(), "the conversion did not start"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.stdout.close()
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".out.converting-")]
    assert len(left) == 1 and not out.exists()  # what SIGKILL leaves: one staging folder, no output
    assert (left[0] / STAGING_MARKER).is_file()

    assert main(["convert", str(official), str(out)]) == 0
    err = capsys.readouterr().err
    assert STALE_MSG + str(left[0]) in err
    assert not left[0].exists()
    assert {p.name for p in tmp_path.iterdir()} == {"out", "slow_convert.py"}
    assert _hashes(out) == _hashes(reference)  # the output is complete and correct (no marker inside)


def test_only_provably_ours_and_dead_staging_is_removed(tmp_path):
    from fastvideo.conversion.base import clean_stale_staging

    out = tmp_path / "model"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = _fake_staging(tmp_path, ".model.converting-dead1", _dead_pid())
        dead_other_output = _fake_staging(tmp_path, ".other.converting-dead2", _dead_pid())
        alive = _fake_staging(tmp_path, ".model.converting-alive", sleeper.pid)
        running_here = _fake_staging(tmp_path, ".model.converting-self", os.getpid())  # e.g. another thread's
        no_marker = _fake_staging(tmp_path, ".model.converting-nomark", None)
        other_host = _fake_staging(tmp_path, ".model.converting-remote", _dead_pid(), host="another-host.invalid")
        wrong_name = _fake_staging(tmp_path, "model.converting-x", _dead_pid())  # not hidden: not our pattern
        notes: list[str] = []
        removed = clean_stale_staging(out, notes.append)
        assert sorted(removed) == sorted([dead, dead_other_output])
        assert not dead.exists() and not dead_other_output.exists()
        for kept in (alive, running_here, no_marker, other_host, wrong_name):
            assert (kept / "transformer" / "diffusion_pytorch_model.safetensors").read_bytes() == b"partial"
        assert len(notes) == 2 and all(n.startswith(STALE_MSG) for n in notes)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_killed_while_swapping_restores_previous_output(tmp_path):
    """Killed between 'move the old output aside' and 'rename the new one in': the old one comes back."""
    from fastvideo.conversion.base import clean_stale_staging

    out = tmp_path / "model"
    old = tmp_path / ".model.old-abc123"
    (old / "previous").mkdir(parents=True)
    (old / "previous" / "model_index.json").write_text("{}")
    (old / STAGING_MARKER).write_text(json.dumps(
        {"tool": "fastvideo convert", "kind": "old", "pid": _dead_pid(), "host": socket.gethostname()}))
    notes: list[str] = []
    clean_stale_staging(out, notes.append)
    assert (out / "model_index.json").read_text() == "{}" and not old.exists()
    assert any(n.startswith(f"restored {out}") for n in notes)


# ----------------------------------------------------------------------------- 2. --overwrite


def test_overwrite_refuses_a_folder_that_is_not_a_model(official, tmp_path, capsys):
    out = tmp_path / "mydocs"
    out.mkdir()
    (out / "thesis.docx").write_bytes(b"years of work")
    (out / "notes").mkdir()
    (out / "notes" / "a.txt").write_text("keep me")
    before = _hashes(out)
    assert main(["convert", str(official), str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "not a model folder" in err and "model_index.json" in err and "thesis.docx" in err
    assert "Traceback" not in err
    assert _hashes(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["mydocs"]


def test_overwrite_replaces_a_previous_output_and_empty_folder_is_used(official, reference, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["convert", str(official), str(out)]) == 0
    (out / "transformer" / "stale.bin").write_bytes(b"x")  # something the new output does not have
    assert main(["convert", str(official), str(out), "--overwrite"]) == 0
    assert _hashes(out) == _hashes(reference)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["convert", str(official), str(empty)]) == 0  # no --overwrite needed
    assert _hashes(empty) == _hashes(reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "out"]  # no staging / old folder left
    capsys.readouterr()


def test_flow_shift_nan_is_refused(official, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["convert", str(official), str(tmp_path / "o"), "--flow-shift", "nan"])
    assert exc.value.code == 2 and "finite" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- 3. malformed --rules

GOOD = '{\n  "^blocks\\\\.(\\\\d+)\\\\.x$": "blocks.\\\\1.y"\n}\n'
BAD_RULES = {
    # name: (text, expected line, words in the message)
    "bad_regex.json": ('{\n  "^a\\\\.(\\\\d+)$": "b.\\\\1",\n  "^c(": "d"\n}\n', 3, "invalid regex"),
    "missing_sep.json": ('{\n  "^a$": "b",\n  "^c$" "d"\n}\n', 3, "not valid JSON"),
    "bad_json.json": ('{\n  "^a$": "b",\n}\n', 3, "not valid JSON"),
    "bad_group.json": ('{\n  "^a$": "b",\n  "^c(\\\\d)$": "d\\\\2"\n}\n', 3, "group 2"),
    "bad_value.json": ('{\n  "^a$": 5\n}\n', 2, "replacement must be"),
    "not_object.json": ('["^a$", "b"]\n', 1, "expected an object"),
    "bad_python.py": ("{\n    r'^a$': 'b',\n    r'^c$' 'd',\n}\n", 3, "Python dict literal"),
    "code_python.py": ("{\n    r'^a$': 'b',\n    r'^c$': __import__('os').getcwd(),\n}\n", 3, "only plain"),
    "empty.json": ("\n", 1, "empty"),
}


@pytest.mark.parametrize("name", sorted(BAD_RULES))
def test_malformed_rules_file_names_file_and_line(tiny_t2v, tmp_path, capsys, name):
    text, line, words = BAD_RULES[name]
    path = tmp_path / name
    path.write_text(text)
    assert main(["inspect-mapping", str(tiny_t2v), "--rules", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}, line {line}:" in err and words in err, err
    assert "a valid rules file is" in err  # what a valid line looks like


def test_malformed_rules_via_real_cli_has_no_traceback(tiny_t2v, tmp_path):
    bad = tmp_path / "rules.txt"
    bad.write_text("{\n  'a': 'b'\n  'c': 'd'\n}\n")  # neither JSON nor a dict literal: missing comma
    good = tmp_path / "good.json"
    good.write_text(GOOD)
    exe = Path(sys.executable).with_name("fastvideo")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "fastvideo.entrypoints.cli.main"]
    start = time.monotonic()
    res = subprocess.run(cmd + ["inspect-mapping", str(tiny_t2v), "--rules", str(bad)], capture_output=True,
                         text=True, timeout=60, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert f"{bad}, line 3:" in res.stderr
    ok = subprocess.run(cmd + ["inspect-mapping", str(tiny_t2v), "--rules", str(good), "--format", "json"],
                        capture_output=True, text=True, timeout=60)
    assert "Traceback" not in ok.stderr and json.loads(ok.stdout)["rows"]  # a good file still works
    print(f"two CLI runs in {time.monotonic() - start:.1f} s")

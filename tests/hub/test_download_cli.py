"""``fastvideo download`` and ``download_model`` end to end against the local hub."""

import json
import os
import signal
import subprocess
import sys
import time

from fastvideo.entrypoints.cli.main import main

REPO = "fastvideo-test/tiny-t2v"  # served by the `hub` fixture (conftest.py)


def test_cli_download_include_and_errors(tree, hub, tiny_t2v, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["download", "--repo-id", REPO, "--local-dir", str(out), "--endpoint", hub.url,
                 "--include", "vae/*"]) == 0
    assert sorted(tree(out)) == ["vae/config.json", "vae/diffusion_pytorch_model.safetensors"]
    assert main(["download", "--repo-id", REPO, "--local-dir", str(out), "--endpoint", hub.url]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().endswith(str(out))
    assert "100.0%" in captured.err and "already here" in captured.err
    assert tree(out) == tree(tiny_t2v)

    assert main(["download", "--repo-id", "nobody/nothing", "--local-dir", str(tmp_path / "x"),
                 "--endpoint", hub.url]) == 1
    assert "check the repo id" in capsys.readouterr().err
    assert main(["download", "--repo-id", REPO, "--local-dir", str(out), "--endpoint", hub.url,
                 "--dry-run"]) == 0
    assert "model_index.json  done" in capsys.readouterr().out

    # --json: progress events then a result line (what a GUI subprocess reads)
    assert main(["download", "--repo-id", REPO, "--local-dir", str(tmp_path / "j"), "--endpoint", hub.url,
                 "--include", "scheduler/*", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["kind"] == "start" and lines[-2]["kind"] == "done" and lines[-2]["fraction"] == 1.0
    assert lines[-1] == {"kind": "result", "path": str(tmp_path / "j")}
    assert main(["download", "--repo-id", "nobody/nothing", "--local-dir", str(tmp_path / "x"),
                 "--endpoint", hub.url, "--json"]) == 1
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["error"] == "RepoNotFoundError"


def test_download_model_goes_to_models_dir_and_resolves(tree, hub, tiny_t2v, tmp_path, monkeypatch):
    from fastvideo.configs.registry import resolve_model

    monkeypatch.setenv("FASTVIDEO_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # empty HF cache
    info = resolve_model(REPO, download=True)
    assert info.path == tmp_path / "models" / "fastvideo-test--tiny-t2v"
    assert tree(info.path) == tree(tiny_t2v)


def test_cli_ctrl_c_exits_130_and_keeps_partial(hub, tmp_path):
    hub.set_rate(400_000)  # ~4.5 s for the whole repo
    out = tmp_path / "m"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "fastvideo", "download", "--repo-id", REPO, "--local-dir",
                             str(out), "--endpoint", hub.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True,
                            # Started as a background job (bash `cmd &` without job control) the test run
                            # ignores SIGINT and a child would inherit that; a terminal's Ctrl-C reaches a CLI
                            # with the default disposition, so give the child that.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and hub.bytes_served() < 300_000:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "run the same command to resume" in err
    kept = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert kept > 100_000
    assert not (out / "model_index.json").exists()

"""fastvideo generate --memory-mode / --weight-storage: the plan said on stderr, the peaks on stdout."""

import subprocess
import sys


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "fastvideo", *args], capture_output=True, text=True, timeout=300)


def test_block_stream_fp8_from_the_cli(tiny_t2v, tmp_path):
    proc = _cli("generate", "--model", str(tiny_t2v), "--prompt", "a red circle", "--num-frames", "5", "--height",
                "64", "--width", "64", "--steps", "1", "--seed", "5", "--output", str(tmp_path / "v.mp4"),
                "--memory-mode", "block_stream", "--stream-slots", "1", "--weight-storage", "fp8")
    assert proc.returncode == 0, proc.stderr
    assert "memory: block_stream (fp8 weights; asked for)" in proc.stderr
    line = proc.stdout.splitlines()[1]
    assert line.startswith("memory: block_stream, peak host ") and "iB" in line
    assert (tmp_path / "v.mp4").is_file()


def test_bad_memory_options_exit_2(tiny_t2v, tmp_path):
    proc = _cli("generate", "--model", str(tiny_t2v), "--prompt", "x", "--output", str(tmp_path),
                "--weight-storage", "/nonexistent/wan-Q4_K.gguf")
    assert proc.returncode == 2 and "GGUF file not found" in proc.stderr
    proc = _cli("generate", "--model", str(tiny_t2v), "--prompt", "x", "--memory-mode", "tiny")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr

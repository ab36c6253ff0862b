import subprocess
import sys

from fastvideo.utils.media import read_video


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fastvideo", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


def test_generate_writes_a_video_with_progress(tiny_t2v, tmp_path):
    proc = _cli("generate", "--model", str(tiny_t2v), "--prompt", "a red circle", "--num-frames", "9", "--height",
                "64", "--width", "96", "--steps", "2", "--seed", "5", "--output", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    path = proc.stdout.split()[0]
    frames, _ = read_video(path)
    assert frames.shape == (9, 64, 96, 3)
    assert "step 2/2" in proc.stderr and "seed 5" in proc.stdout


def test_generate_rejects_bad_frames_with_the_nearest_values(tiny_t2v, tmp_path):
    proc = _cli("generate", "--model", str(tiny_t2v), "--prompt", "x", "--num-frames", "12", "--output",
                str(tmp_path))
    assert proc.returncode == 2
    assert "use 9 or 13" in proc.stderr


def test_help_lists_subcommands():
    proc = _cli("--help")
    assert proc.returncode == 0 and "generate" in proc.stdout and "inspect-mapping" in proc.stdout

"""benchmarks/multigpu.py --tiny: the GPU benchmark's code path on 1 + 2 CPU ranks (gloo)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_benchmark_runs_tiny_on_cpu_ranks(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "multigpu.py"), "--tiny", "--gpus", "1", "2",
                           "--warmup", "1", "--iters", "2", "--json", str(out)],
                          capture_output=True, text=True, timeout=110, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert report["ok"] and report["device"] == "cpu" and report["torch"] and report["date"]
    assert report["attention_backend"] == {"self": "TORCH_SDPA", "cross": "TORCH_SDPA"}  # AUTO, resolved on a CPU
    rows = {r["layout"]: r for r in report["results"]}
    assert set(rows) == {"1x1", "2x1", "1x2"}
    for layout in ("2x1", "1x2"):
        assert rows[layout]["rel_l2_vs_1gpu"] < 1e-5 and rows[layout]["ranks_agree"]
        assert rows[layout]["median_ms"] > 0
    assert "median ms" in proc.stdout and "rel L2 vs 1 GPU" in proc.stdout


@pytest.mark.timeout(120)
def test_benchmark_with_sharded_weights_on_cpu_ranks(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "multigpu.py"), "--tiny", "--gpus", "1", "2",
                           "--fsdp", "--warmup", "1", "--iters", "2", "--json", str(out)],
                          capture_output=True, text=True, timeout=110, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {r["layout"]: r for r in json.loads(out.read_text())["results"]}
    for layout in ("2x1", "1x2"):
        row = rows[layout]
        assert row["fsdp"] and row["rel_l2_vs_1gpu"] < 1e-5 and len(row["peak_memory_gib_per_rank"]) == 2
        per_rank, full = row["fsdp_param_bytes_per_rank"], row["fsdp_full_param_bytes"]
        assert sum(per_rank) == full and max(per_rank) < 0.6 * full  # each rank holds about half


def test_layouts_and_shapes_for_other_architectures():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import multigpu
    finally:
        sys.path.pop(0)
    args = multigpu.parse_args(["--arch", "wan2.1-t2v-14b", "--height", "720", "--width", "1280"])
    assert multigpu.run_shape(args)["latent"] == (1, 16, 21, 90, 160)  # 75,600 tokens after 1x2x2 patches
    assert multigpu.arch_config(args).num_attention_heads == 40
    assert multigpu.default_layouts(8, 40) == ["2x4", "1x8"]
    assert multigpu.default_layouts(8, 12) == ["2x4"]  # SP 8 does not divide the 1.3B's 12 heads
    assert multigpu.run_shape(multigpu.parse_args([]))["latent"] == (1, 16, 21, 60, 104)
    with pytest.raises(SystemExit, match="multiples of 16"):
        multigpu.run_shape(multigpu.parse_args(["--height", "500"]))

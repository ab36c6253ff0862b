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
    rows = {r["layout"]: r for r in report["results"]}
    assert set(rows) == {"1x1", "2x1", "1x2"}
    for layout in ("2x1", "1x2"):
        assert rows[layout]["rel_l2_vs_1gpu"] < 1e-5 and rows[layout]["ranks_agree"]
        assert rows[layout]["median_ms"] > 0
    assert "median ms" in proc.stdout and "rel L2 vs 1 GPU" in proc.stdout

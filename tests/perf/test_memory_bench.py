"""``benchmarks/memory.py --tiny`` on the CPU: every mode runs, streaming equals the resident output bit for bit."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("ffn_chunk", ["auto", "always"])
def test_memory_benchmark_tiny(tmp_path, ffn_chunk):
    out = tmp_path / "memory.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "memory.py"), "--tiny", "--ffn-chunk", ffn_chunk,
                    "--json", str(out)], check=True, capture_output=True, timeout=300)
    runs = json.loads(out.read_text())["cases"]["tiny"]["runs"]
    assert set(runs) == {"resident", "resident, CFG as two passes", "block_stream bf16", "resident fp8",
                         "block_stream fp8"}
    assert all(r["fits"] and r["step_s"] > 0 for r in runs.values())
    stream = runs["block_stream bf16"]
    assert stream["ffn_chunked"] is (ffn_chunk == "always")  # auto: no cap on the CPU, nothing to chunk for
    assert stream["bit_identical_to_resident"] and stream["rel_l2_vs_resident"] == 0.0
    assert 0 < runs["resident fp8"]["rel_l2_vs_bf16"] < 0.2
    assert out.with_suffix(".md").read_text().count("| tiny") == 5

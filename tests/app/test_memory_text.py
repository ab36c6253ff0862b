"""The studio's memory line for a finished job (result dict -> text), issue 26."""

from app.panels.generate_form import format_memory


def test_gpu_job_with_an_auto_plan():
    r = {"memory_mode": "block_stream", "memory_plan": {"requested": "auto", "weight_storage": "fp8"},
         "peak_memory": 11 * 2**30, "peak_memory_kind": "cuda_allocated", "peak_host_memory": 30 * 2**30}
    assert format_memory(r) == "block_stream (auto, fp8 weights) · GPU peak 11.00 GiB · host peak 30.00 GiB"


def test_cpu_job_and_old_results():
    assert format_memory({"memory_mode": "resident", "memory_plan": {"requested": "auto", "weight_storage": "bf16"},
                          "peak_memory": 2**30, "peak_memory_kind": "cpu_peak_rss"}) == \
        "resident (auto) · host peak 1.00 GiB"
    assert format_memory({}) == ""  # results from before memory modes

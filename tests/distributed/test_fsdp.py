"""use_fsdp_inference=True: the DiT's weights sharded over CPU gloo ranks with FSDP2.

Each rank must hold about half of the DiT's parameter bytes, and the decoded frames must equal the unsharded
runs exactly: SP over both ranks against the single-process run (batched CFG) and CFG parallel against the
``batch_cfg=False`` reference, as in test_executor.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastvideo import InvalidRequest, VideoGenerator

pytestmark = pytest.mark.timeout(240)

ODD = dict(height=48, width=48, num_frames=9, num_inference_steps=2, guidance_scale=5.0, return_frames=True,
           save_video=False)


def _max_diff(a, b) -> int:
    assert a.shape == b.shape
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def _check_shards(report: dict) -> None:
    full, per_rank = report["full_param_bytes"], report["param_bytes_per_rank"]
    assert report["world"] == 2 and len(per_rank) == 2
    assert sum(per_rank) == full  # nothing replicated: every parameter is split
    assert all(0.4 * full < b < 0.6 * full for b in per_rank), (per_rank, full)


def test_fsdp_sp2_matches_unsharded(tiny_t2v, t2v_generator):
    gen = VideoGenerator.from_pretrained(str(tiny_t2v), num_gpus=2, cfg_parallel=False, use_fsdp_inference=True)
    try:
        assert gen.config.use_fsdp_inference and (gen.executor.sp_size, gen.executor.cfg_degree) == (2, 1)
        result = gen.generate_video("a red fox in the snow", **ODD)
        _check_shards(result["fsdp"])
        print("FSDP per-rank DiT parameter bytes:", result["fsdp"]["param_bytes_per_rank"],
              "of", result["fsdp"]["full_param_bytes"])
        want = t2v_generator.generate_video("a red fox in the snow", **ODD)["frames"]
        assert _max_diff(result["frames"], want) == 0
        with pytest.raises(InvalidRequest, match="sharded"):  # LoRAs cannot merge into shards: said, not ignored
            gen.generate_video("a red fox", **ODD, loras=[(str(tiny_t2v / "model_index.json"), 1.0)])
    finally:
        gen.shutdown()


def test_fsdp_with_cfg_parallel_matches_unsharded(tiny_t2v):
    ref = VideoGenerator.from_pretrained(str(tiny_t2v), batch_cfg=False)
    gen = VideoGenerator.from_pretrained(str(tiny_t2v), num_gpus=2, use_fsdp_inference=True)
    try:
        assert (gen.executor.sp_size, gen.executor.cfg_degree) == (1, 2)
        got = gen.generate_video("a red fox in the snow", **ODD)
        _check_shards(got["fsdp"])
        assert _max_diff(got["frames"], ref.generate_video("a red fox in the snow", **ODD)["frames"]) == 0
    finally:
        gen.shutdown()
        ref.shutdown()


def test_fsdp_on_one_rank_is_the_unsharded_model(tiny_t2v, t2v_generator):
    gen = VideoGenerator.from_pretrained(str(tiny_t2v), use_fsdp_inference=True)
    try:
        got = gen.generate_video("a boat", **ODD)
        assert got["fsdp"]["world"] == 1 and got["fsdp"]["param_bytes_per_rank"] == [got["fsdp"]["full_param_bytes"]]
        assert _max_diff(got["frames"], t2v_generator.generate_video("a boat", **ODD)["frames"]) == 0
    finally:
        gen.shutdown()


@pytest.mark.parametrize("clash", [dict(dit_cpu_offload=True), dict(enable_torch_compile=True),
                                   dict(memory_mode="block_stream"), dict(weight_storage="fp8")])
def test_fsdp_clashes_are_refused_before_loading(tiny_t2v, clash):
    # (memory_mode's own check may say it first, the other way round)
    with pytest.raises(ValueError, match="use_fsdp_inference=True cannot be combined with|cannot be combined with "
                                         "use_fsdp_inference=True"):
        VideoGenerator.from_pretrained(str(tiny_t2v), num_gpus=2, use_fsdp_inference=True, **clash)


def test_fsdp_shards_both_wan22_experts(tmp_path):
    """Wan2.2 A14B: transformer and transformer_2 both sharded; the video crosses the boundary and equals the
    unsharded single-process run (batch-1 CFG passes, as the CFG-parallel ranks compute)."""
    from fastvideo.testing.tiny_wan22 import make_tiny_wan22

    folder = make_tiny_wan22(tmp_path / "a14b", "t2v-moe", seed=4)
    kw = dict(ODD, height=48, width=64, num_inference_steps=4, guidance_scale_2=2.0, negative_prompt="")
    ref = VideoGenerator.from_pretrained(str(folder), batch_cfg=False)
    gen = VideoGenerator.from_pretrained(str(folder), num_gpus=2, use_fsdp_inference=True)
    try:
        events = []
        got = gen.generate_video("a red fox in the snow", callback=events.append, **kw)
        assert got["fsdp"]["components"] == ["transformer", "transformer_2"]
        _check_shards(got["fsdp"])
        assert {e.get("expert") for e in events if e["type"] == "progress"} == {"transformer", "transformer_2"}
        assert _max_diff(got["frames"], ref.generate_video("a red fox in the snow", **kw)["frames"]) == 0
    finally:
        gen.shutdown()
        ref.shutdown()

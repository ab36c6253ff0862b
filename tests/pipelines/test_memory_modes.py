"""Memory modes (fastvideo.pipelines.memory_modes): the mode chosen from a memory budget (arithmetic, invented
budgets), and whole generations on the tiny model in each mode / weight storage on the CPU."""

from __future__ import annotations

import numpy as np
import pytest

from fastvideo.pipelines.memory import Budget, ModelGeometry
from fastvideo.pipelines.memory_modes import (
    DenoiserSize,
    MemoryContext,
    Request,
    WeightSizes,
    plan_memory,
)

G = 2**30
# Wan2.1-14B-like numbers: 40 blocks of 5120 wide (FFN 13824), UMT5-XXL text encoder (24 blocks + embedding).
BLOCK_14B = 5120 * 5120 * 2 * 8 + 2 * 5120 * 13824 * 2
SIZES_14B = WeightSizes(
    components={"text_encoder": DenoiserSize(24, int(0.39 * G), int(9.3 * G), int(2.1 * G)),
                "vae": DenoiserSize(other_bytes=254 * 2**20)},
    denoisers={"transformer": DenoiserSize(40, BLOCK_14B, 40 * BLOCK_14B, int(0.8 * G))})
GEOM_14B = ModelGeometry(dit_dim=5120, dit_heads=40, dit_ffn=13824)
REQ_480 = Request(81, 480, 832)


def plan(free_gib, host_gib=64, req=REQ_480, **kw):
    return plan_memory(GEOM_14B, req, SIZES_14B, Budget(int(free_gib * G), int(host_gib * G), "cuda"), **kw)


def test_auto_keeps_everything_resident_when_it_fits():
    p = plan(80)
    assert p.mode == "resident" and p.requested == "auto"
    assert "fits 80.0 GiB free GPU memory" in p.reason
    assert p.overrides(_config()) == {"memory_mode": "resident", "text_encoder_cpu_offload": False,
                                      "image_encoder_cpu_offload": False, "vae_cpu_offload": False,
                                      "dit_cpu_offload": False}


def test_auto_streams_blocks_when_the_dit_does_not_fit_and_says_why():
    p = plan(24)
    assert p.mode == "block_stream"
    assert p.slots is not None and 2 <= p.slots < 40
    assert "resident needs" in p.reason and "model_offload needs" in p.reason and "too much" in p.reason
    o = p.overrides(_config())
    assert o["memory_mode"] == "block_stream" and o["stream_slots"] == p.slots and o["pin_cpu_memory"]
    assert [n["mode"] for n in p.needs] == ["resident", "model_offload", "block_stream"]
    assert all(n["device"] > 0 for n in p.needs)


def test_more_free_memory_means_more_blocks_in_flight():
    slots = [plan(g, requested="block_stream").slots for g in (18, 24, 32)]
    assert slots == sorted(slots) and slots[0] < slots[-1]


def test_model_offload_when_one_component_at_a_time_fits():
    sizes = WeightSizes(components={"text_encoder": DenoiserSize(other_bytes=2 * G), "vae": DenoiserSize(
        other_bytes=G // 4)}, denoisers={"transformer": DenoiserSize(30, 100 * 2**20, 3 * G, G // 10)})
    g = ModelGeometry()
    budget_all = plan_memory(g, Request(17, 256, 256), sizes, Budget(40 * G, 64 * G, "cuda"))
    assert budget_all.mode == "resident"
    need_res = budget_all.needs[0]["device"]
    need_off = budget_all.needs[1]["device"]
    assert need_off < need_res
    p = plan_memory(g, Request(17, 256, 256), sizes, Budget((need_off + need_res) // 2, 64 * G, "cuda"))
    assert p.mode == "model_offload", p.reason


def test_activation_savers_only_when_needed():
    big = plan(24, req=Request(81, 720, 1280))
    assert big.mode == "block_stream"
    assert big.batch_cfg is False and big.ffn_chunk_tokens  # 720p needs CFG as two passes and FFN chunks
    assert "CFG as two passes" in big.reason
    small = plan(80)
    assert small.batch_cfg is None and small.ffn_chunk_tokens is None


def test_host_ram_counts():
    # Enough GPU for streaming, but the blocks must live in RAM: 8 GiB of RAM cannot hold 28 GiB of blocks.
    p = plan(24, host_gib=8)
    assert p.mode == "block_stream" and p.reason.startswith("no mode fits")
    assert "available RAM 8.0 GiB" in p.reason


def test_a_request_that_fits_no_mode_is_refused_with_the_numbers():
    p = plan(6)
    assert p.reason.startswith("no mode fits the default request 832x480x81")
    for mode in ("resident", "model_offload", "block_stream"):
        assert f"{mode}" in p.reason
    ctx = MemoryContext(GEOM_14B, SIZES_14B, p, _config(memory_mode="block_stream", stream_slots=2))
    msg = ctx.check(REQ_480, Budget(int(4 * G), 64 * G, "cuda"))
    assert msg and "not enough memory for 832x480x81 in memory_mode='block_stream'" in msg
    assert "fits no memory mode" in msg and "GiB" in msg and "weight_storage='fp8'" in msg
    assert ctx.check(Request(5, 64, 64), Budget(int(6 * G), 64 * G, "cuda")) is None  # a small one fits


def test_refusal_names_the_mode_that_would_fit():
    p = plan(80)
    ctx = MemoryContext(GEOM_14B, SIZES_14B, p, _config(memory_mode="resident"))
    # resident, with 2 GiB left free after loading: 480p does not fit; offloading (on a fresh load: the 2 GiB
    # plus the ~53 GiB the resident weights hold) would
    msg = ctx.check(REQ_480, Budget(int(2 * G), 64 * G, "cuda"))
    assert msg and "it fits with model_offload" in msg and "memory_mode='model_offload'" in msg


def test_explicit_mode_and_cpu():
    p = plan(80, requested="block_stream", slots=3)
    assert p.mode == "block_stream" and p.requested == "block_stream" and p.slots == 3
    assert p.reason.startswith("asked for")
    cpu = plan_memory(GEOM_14B, REQ_480, SIZES_14B, Budget(64 * G, 64 * G, "cpu"))
    assert cpu.mode == "resident" and "CPU" in cpu.reason


def test_fp8_storage_sizes_halve_the_block_weights(tiny_t2v):
    from fastvideo.pipelines.memory_modes import denoiser_size

    bf16 = denoiser_size(tiny_t2v / "transformer", "bf16", "bf16")
    fp8 = denoiser_size(tiny_t2v / "transformer", "bf16", "fp8")
    assert bf16.blocks == fp8.blocks == 2
    assert fp8.other_bytes == bf16.other_bytes
    assert 0.5 * bf16.blocks_bytes < fp8.blocks_bytes < 0.75 * bf16.blocks_bytes


def _config(**kw):
    from fastvideo.configs.pipelines.base import PipelineConfig

    return PipelineConfig(**kw)


# ----------------------------------------------------------------------------------------- whole generations


ARGS = dict(num_frames=5, height=64, width=64, num_inference_steps=2, seed=3, save_video=False, return_frames=True)


def _generate(model, **options):
    from fastvideo import VideoGenerator

    gen = VideoGenerator.from_pretrained(str(model), num_gpus=1, **options)
    try:
        result = gen.generate_video("a red circle", **ARGS)
        return gen, result
    finally:
        gen.shutdown()


@pytest.fixture(scope="module")
def resident(tiny_t2v):
    return _generate(tiny_t2v)[1]


def test_resident_result_reports_the_plan_and_memory(resident):
    assert resident["memory_mode"] == "resident"
    plan_ = resident["memory_plan"]
    assert plan_["requested"] == "auto" and "CPU" in plan_["reason"]
    assert resident["peak_host_memory"] > 0 and resident["peak_memory"] > 0


def test_block_stream_generation_is_bit_identical(tiny_t2v, resident):
    _, result = _generate(tiny_t2v, memory_mode="block_stream", stream_slots=1)
    assert result["memory_mode"] == "block_stream" and result["memory_plan"]["requested"] == "block_stream"
    assert np.array_equal(result["frames"], resident["frames"])


def test_block_stream_installs_streamers(tiny_t2v):
    from fastvideo import VideoGenerator
    from fastvideo.pipelines.streaming import streamer_of

    gen = VideoGenerator.from_pretrained(str(tiny_t2v), num_gpus=1, memory_mode="block_stream", stream_slots=1)
    try:
        loaded = gen.executor.runner.loaded
        s = streamer_of(loaded["transformer"])
        assert s is not None and s.num_slots == 1 and len(s.packed) == 2
        assert streamer_of(loaded["text_encoder"]) is not None  # the T5's blocks stream too
        assert s.buffers == []  # slots only while the denoising stage runs
    finally:
        gen.shutdown()


def test_chunked_ffn_generation_is_bit_identical(tiny_t2v, resident):
    _, result = _generate(tiny_t2v, ffn_chunk_tokens=7)
    assert np.array_equal(result["frames"], resident["frames"])


def test_fp8_storage_generation(tiny_t2v, resident):
    from fastvideo import VideoGenerator
    from fastvideo.layers.quant import FP8Linear

    gen = VideoGenerator.from_pretrained(str(tiny_t2v), num_gpus=1, weight_storage="fp8")
    try:
        dit = gen.executor.runner.loaded["transformer"]
        assert isinstance(dit.blocks[0].ffn.fc_in, FP8Linear)
        result = gen.generate_video("a red circle", **ARGS)
    finally:
        gen.shutdown()
    diff = np.abs(result["frames"].astype(int) - resident["frames"].astype(int))
    assert 0 < diff.mean() < 8, diff.mean()  # close to the full-precision video, not identical


def test_gguf_storage_generation(tiny_t2v, resident, tmp_path):
    import torch

    from fastvideo import VideoGenerator
    from fastvideo.configs.models.dits import WanVideoConfig
    from fastvideo.layers.quant import GGUFLinear
    from fastvideo.models.loader.component_loader import load_component
    from fastvideo.models.loader.gguf import write_gguf
    from fastvideo.models.loader.weights import export_state_dict
    from fastvideo.testing.tiny import _to_official

    dit = load_component(str(tiny_t2v), "transformer", dtype=torch.float32)
    sd = _to_official(export_state_dict(dit, dit.arch_config.param_names_mapping),
                      WanVideoConfig.official_param_names_mapping)
    path = write_gguf(tmp_path / "tiny-Q8_0.gguf", sd, "Q8_0",
                      quantize_if=lambda n, t: t.ndim == 2 and t.shape[1] % 32 == 0 and n.startswith("blocks."))
    gen = VideoGenerator.from_pretrained(str(tiny_t2v), num_gpus=1, weight_storage=str(path))
    try:
        assert isinstance(gen.executor.runner.loaded["transformer"].blocks[1].ffn.fc_out, GGUFLinear)
        result = gen.generate_video("a red circle", **ARGS)
    finally:
        gen.shutdown()
    diff = np.abs(result["frames"].astype(int) - resident["frames"].astype(int))
    assert diff.mean() < 4, diff.mean()


def test_bad_memory_options_are_refused_before_loading(tiny_t2v):
    from fastvideo import VideoGenerator

    with pytest.raises(ValueError, match="memory_mode must be one of"):
        VideoGenerator.from_pretrained(str(tiny_t2v), memory_mode="tiny")
    with pytest.raises(ValueError, match="weight_storage must be one of"):
        VideoGenerator.from_pretrained(str(tiny_t2v), weight_storage="int4")
    with pytest.raises(ValueError, match="GGUF file not found"):
        VideoGenerator.from_pretrained(str(tiny_t2v), weight_storage="/nonexistent/wan.gguf")


def test_auto_tiles_the_vae_for_a_request_that_fits_only_tiled():
    g, sizes = ModelGeometry(), WeightSizes(components={"vae": DenoiserSize(other_bytes=G // 4)},
                                            denoisers={"transformer": DenoiserSize(30, 100 * 2**20, 3 * G, G // 10)})
    req = Request(81, 480, 832)
    p = plan_memory(g, req, sizes, Budget(80 * G, 64 * G, "cuda"))
    ctx = MemoryContext(g, sizes, p, _config(memory_mode="resident"))
    untiled = ctx.check(req, Budget(80 * G, 64 * G, "cuda"))
    assert untiled is None and not ctx.tile_for(req, Budget(80 * G, 64 * G, "cuda"))
    # a budget between the tiled and the untiled VAE decode peaks
    from fastvideo.pipelines.memory import estimate

    plain = estimate(g, 81, 480, 832, device_type="cuda").device
    tiled = estimate(ModelGeometry(vae_tiling=True), 81, 480, 832, device_type="cuda").device
    assert tiled < plain
    mid = Budget((plain + tiled) // 2 + 600 * 2**20, 64 * G, "cuda")  # + the planner's margin
    assert ctx.check(req, mid) is not None and ctx.check(req, mid, tiling=True) is None
    assert ctx.tile_for(req, mid)
    asked = MemoryContext(g, sizes, plan_memory(g, req, sizes, Budget(80 * G, 64 * G, "cuda"), requested="resident"),
                          _config(memory_mode="resident"))
    assert not asked.tile_for(req, mid)  # only auto decides for the user


def test_loras_with_quantised_weights_are_refused_up_front(tiny_t2v, tmp_path):
    from fastvideo import InvalidRequest, VideoGenerator

    lora = tmp_path / "l.safetensors"
    lora.write_bytes(b"")  # never read: refused before
    gen = VideoGenerator.from_pretrained(str(tiny_t2v), num_gpus=1, weight_storage="fp8")
    try:
        with pytest.raises(InvalidRequest, match="load it with weight_storage='bf16' to use LoRAs"):
            gen.generate_video("x", loras=[(str(lora), 1.0)], **ARGS)
    finally:
        gen.shutdown()


def test_fsdp_and_offloading_modes_do_not_mix(tiny_t2v):
    from fastvideo.configs.pipelines.base import PipelineConfig
    from fastvideo.configs.registry import resolve_model
    from fastvideo.pipelines.memory_modes import resolve

    info = resolve_model(str(tiny_t2v))
    with pytest.raises(ValueError, match="cannot be combined with use_fsdp_inference=True"):
        resolve(info, PipelineConfig(memory_mode="block_stream", use_fsdp_inference=True), "cpu")
    config, _ = resolve(info, PipelineConfig(use_fsdp_inference=True), "cpu")
    assert config.memory_mode == "resident"


def test_auto_replans_a_request_its_mode_cannot_run():
    from fastvideo.pipelines.memory_modes import replan

    p = plan(80)
    ctx = MemoryContext(GEOM_14B, SIZES_14B, p, _config(memory_mode="resident"))
    tight = Budget(int(2 * G), 64 * G, "cuda")  # what is left free with everything resident
    new = replan(ctx, REQ_480, tight)
    assert new is not None and new.mode == "model_offload" and new.requested == "auto"
    assert new.reason.startswith("switched from resident for 832x480x81: model_offload")
    assert replan(ctx, Request(5, 64, 64), Budget(int(20 * G), 64 * G, "cuda")) is None  # fits: no switch
    asked = MemoryContext(GEOM_14B, SIZES_14B, plan(80, requested="resident"), _config(memory_mode="resident"))
    assert replan(asked, REQ_480, tight) is None  # an explicit mode is never changed


def test_growable_allocator_segments_for_non_resident_modes(monkeypatch):
    """Streaming/offload switch the CUDA allocator to growable segments (fixed ones fragmented past a 12 GB cap
    on an H100); never on the CPU, never over a PYTORCH_CUDA_ALLOC_CONF the user set."""
    import torch

    from fastvideo.pipelines.memory_modes import growable_segments

    calls = []
    monkeypatch.setattr(torch._C, "_accelerator_setAllocatorSettings", calls.append, raising=False)
    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)
    assert growable_segments(torch.device("cpu")) is False and calls == []
    logged = []
    assert growable_segments(torch.device("cuda", 0), logged.append) is True
    assert calls == ["expandable_segments:True"] and "growable" in logged[0]
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:False")
    assert growable_segments(torch.device("cuda", 0)) is False and len(calls) == 1


def test_streamed_720p_14b_fits_small_cards_with_the_measured_margin():
    """A tenth of the peak stays free (14B 720p streamed held 8% more reserved than allocated on an H100): the
    slot count comes down until the estimate with that margin fits, so 12 / 16 / 24 GiB cards all get a plan."""
    req = Request(81, 720, 1280)
    slots = []
    for gib in (12, 16, 24):
        p = plan(gib, req=req)
        need = next(n for n in p.needs if n["mode"] == "block_stream")
        assert p.mode == "block_stream" and need["fits"] and need["device"] <= gib * G, (gib, p.reason)
        slots.append(p.slots)
    assert slots == sorted(slots) and slots[0] >= 2 and slots[-1] > slots[0]
    # The margin counts: with 2 slots the 14B step needs more than 10% above its bare estimate.
    two = plan(12, req=req, requested="block_stream", slots=2)
    assert next(n for n in two.needs if n["mode"] == "block_stream")["device"] > 10.5 * G

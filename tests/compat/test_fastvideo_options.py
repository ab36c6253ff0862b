"""FastVideo's public API on fastvideo: import paths, from_pretrained options, generate_video kwargs and
result keys (docs/fastvideo-compat.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fastvideo.api.options import (
    FASTVIDEO_ARGS_FIELDS,
    FASTVIDEO_LEGACY_ARGS,
    FASTVIDEO_PIPELINE_CONFIG_FIELDS,
    FASTVIDEO_SAMPLING_FIELDS,
    UnsupportedOptionError,
)
from fastvideo.errors import InvalidRequest


def test_import_paths_are_one_class():
    import fastvideo
    from fastvideo.api import SamplingParam as A
    from fastvideo.api.sampling_param import SamplingParam as B
    from fastvideo.configs.sample import SamplingParam as C

    assert A is B is C is fastvideo.SamplingParam
    assert fastvideo.VideoGenerator.__name__ == "VideoGenerator"
    assert fastvideo.PipelineConfig.from_pretrained  # basic_mps.py


def test_import_paths_stay_torch_free():
    code = ("import sys, fastvideo.configs.sample, fastvideo.api.sampling_param, fastvideo.api; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def load(**options):
    from fastvideo import VideoGenerator

    return VideoGenerator.from_pretrained("/nonexistent/never-reached", **options)


@pytest.mark.parametrize("n", [2, 4])
def test_tp_size_above_one_is_refused(n):
    with pytest.raises(UnsupportedOptionError,
                       match=f"tp_size={n}: tensor parallelism is not supported; use sp_size / num_gpus"):
        load(tp_size=n)


def test_fsdp_and_ray_map_onto_our_options():
    import dataclasses

    from fastvideo.api.options import translate_load_options
    from fastvideo.configs.pipelines.base import PipelineConfig

    ours = {f.name for f in dataclasses.fields(PipelineConfig)}
    out = translate_load_options(2, dict(use_fsdp_inference=True, distributed_executor_backend="ray"), ours)
    assert out.overrides == {"use_fsdp_inference": True} and out.executor_backend == "ray"
    assert translate_load_options(2, dict(distributed_executor_backend="mp"), ours).executor_backend == "mp"
    with pytest.raises(ValueError, match="use_fsdp_inference must be True or False"):
        load(use_fsdp_inference="yes")


def test_unknown_executor_backend_is_refused():
    with pytest.raises(UnsupportedOptionError, match="accepted values are 'mp'.*and 'ray'"):
        load(distributed_executor_backend="thread")


@pytest.mark.parametrize("name", ["VSA_sparsity", "VSA_tile_size", "STA_mode", "skip_time_steps",
                                  "mask_strategy_file_path", "moba_config_path", "enable_torch_compile_vae",
                                  "hsdp_shard_dim", "lora_path", "boundary_ratio",
                                  "ltx2_vae_tiling", "refine_enabled", "embedded_cfg_scale", "vae_sp",
                                  "master_port", "prompt_txt", "override_transformer_cls_name"])
def test_missing_features_are_named(name):
    value = True if name == "vae_sp" else 0.8
    with pytest.raises(UnsupportedOptionError, match=f"{name}.*not supported") as info:
        load(**{name: value})
    assert info.value.option == name


def test_layerwise_offload_is_block_streaming():
    import dataclasses

    from fastvideo.api.options import translate_load_options
    from fastvideo.configs.pipelines.base import PipelineConfig

    ours = {f.name for f in dataclasses.fields(PipelineConfig)}
    assert translate_load_options(1, {"dit_layerwise_offload": True}, ours).overrides == {"memory_mode": "block_stream"}
    assert translate_load_options(1, {"dit_layerwise_offload": False}, ours).overrides == {}
    with pytest.raises(ValueError, match="dit_layerwise_offload must be True or False"):
        translate_load_options(1, {"dit_layerwise_offload": "yes"}, ours)


def test_every_fastvideo_option_has_an_answer():
    """No FastVideoArgs / PipelineConfig field is 'unknown': each maps, is accepted with a value, or is named."""
    import dataclasses

    from fastvideo.api.options import translate_load_options
    from fastvideo.configs.pipelines.base import PipelineConfig

    ours = {f.name for f in dataclasses.fields(PipelineConfig)}
    names = {*FASTVIDEO_ARGS_FIELDS, *FASTVIDEO_PIPELINE_CONFIG_FIELDS, *FASTVIDEO_LEGACY_ARGS}
    for name in names - {"model_path", "num_gpus"}:  # from_pretrained's own parameters
        try:
            translate_load_options(1, {name: object()}, ours)
        except TypeError as exc:
            assert "unknown option" not in str(exc), name
        except (UnsupportedOptionError, ValueError):
            pass


def test_unknown_option_lists_the_accepted_ones():
    with pytest.raises(TypeError, match="unknown option 'frobnicate'; accepted options: .*pin_cpu_memory.*"
                                        "use_fsdp_inference"):
        load(frobnicate=1)


def test_accepted_options_map_onto_our_config():
    import dataclasses

    from fastvideo.api.options import translate_load_options
    from fastvideo.configs.pipelines.base import PipelineConfig

    ours = {f.name for f in dataclasses.fields(PipelineConfig)}
    out = translate_load_options(2, dict(
        sp_size=-1, tp_size=-1, use_fsdp_inference=False, dit_cpu_offload=True, vae_cpu_offload=True,
        text_encoder_cpu_offload=True, image_encoder_cpu_offload=True, pin_cpu_memory=True,
        distributed_executor_backend="mp", enable_torch_compile=True, enable_stage_verification=False,
        disable_autocast=False, trust_remote_code=False, text_encoder_precisions=["fp16"], output_type="pil"), ours)
    assert out.num_gpus == 2
    assert out.overrides == dict(dit_cpu_offload=True, vae_cpu_offload=True, text_encoder_cpu_offload=True,
                                 image_encoder_cpu_offload=True, pin_cpu_memory=True, compile_dit=True,
                                 stage_verification=False, text_encoder_precision="fp16")
    assert translate_load_options(2, {"sp_size": 2}, ours).overrides == {"sp_size": 2}


def test_options_on_a_tiny_model(tiny_t2v):
    from fastvideo import PipelineConfig, VideoGenerator

    gen = VideoGenerator.from_pretrained(str(tiny_t2v), num_gpus=1, sp_size=1, tp_size=1, use_fsdp_inference=False,
                                         dit_cpu_offload=True, vae_cpu_offload=True, text_encoder_cpu_offload=True,
                                         image_encoder_cpu_offload=False, pin_cpu_memory=True,
                                         distributed_executor_backend="mp", enable_torch_compile=False)
    try:
        c = gen.config
        assert (c.dit_cpu_offload, c.vae_cpu_offload, c.text_encoder_cpu_offload, c.pin_cpu_memory) == (True,) * 4
        assert c.compile_dit is False
        assert gen.executor.runner.loaded.offloader.pin_memory is False  # no CUDA: pinning is a no-op
    finally:
        gen.shutdown()
    with pytest.raises(ValueError, match="sp_size=2"):
        VideoGenerator.from_pretrained(str(tiny_t2v), num_gpus=1, sp_size=2)
    config = PipelineConfig.from_pretrained(str(tiny_t2v))
    config.vae_tiling = True
    gen = VideoGenerator.from_pretrained(str(tiny_t2v), pipeline_config=config, enable_torch_compile=False)
    try:
        assert gen.config.vae_tiling is True
    finally:
        gen.shutdown()


def test_generate_kwargs_and_result_keys(t2v_generator, tmp_path):
    out = t2v_generator.generate_video(
        "a red ball", negative_prompt="", num_frames=5, height=32, width=48, num_inference_steps=2,
        guidance_scale=3.0, seed=7, fps=8, output_path=str(tmp_path), output_video_name="clip", save_video=True,
        return_frames=True, num_videos_per_prompt=1, return_trajectory_latents=False, mouse_cond=None)
    assert out["video_path"] == str(tmp_path / "clip.mp4") and (tmp_path / "clip.mp4").is_file()
    assert out["prompts"] == "a red ball"
    assert out["e2e_latency"] >= out["generation_time"] > 0
    assert out["peak_memory_mb"] > 0
    assert tuple(out["samples"].shape) == (1, 3, 5, 32, 48) and float(out["samples"].max()) <= 1.0
    assert out["frames"].shape == (5, 32, 48, 3)
    assert out["size"] == [48, 32]  # ours: [w, h] (FastVideo: (h, w, frames); docs/fastvideo-compat.md)


@pytest.mark.parametrize(("name", "value"), [("enable_teacache", True), ("num_videos_per_prompt", 2),
                                             ("prompt_path", "p.txt"), ("sigmas", [1.0, 0.5]),
                                             ("ltx2_images", [("a", 0, 1.0)]), ("pil_image", object()),
                                             ("return_trajectory_latents", True)])
def test_generate_kwargs_we_lack_are_named(t2v_generator, name, value):
    with pytest.raises(UnsupportedOptionError, match=name) as info:
        t2v_generator.generate_video("x", **{name: value})
    assert info.value.option == name


@pytest.mark.parametrize(("name", "value"), [("guidance_scale_2", 4.0), ("boundary_ratio", 0.9)])
def test_expert_fields_need_a_model_with_experts(t2v_generator, name, value):
    """Wan2.2 A14B's per-expert fields are SamplingParam fields; a one-expert model refuses them by name."""
    with pytest.raises(InvalidRequest, match=f"{name} is for models with several denoising experts") as info:
        t2v_generator.generate_video("x", save_video=False, **{name: value})
    assert info.value.field == name


def test_unknown_generate_kwarg_lists_fields(t2v_generator):
    with pytest.raises(TypeError, match="no field 'frobnicate'; fields: .*num_frames"):
        t2v_generator.generate_video("x", frobnicate=1)


def test_field_lists_cover_fastvideo():
    assert len(FASTVIDEO_ARGS_FIELDS) == 83 and len(FASTVIDEO_SAMPLING_FIELDS) == 84
    assert len(FASTVIDEO_PIPELINE_CONFIG_FIELDS) == 29

"""FastVideo's option names, translated onto ours (torch-free).

FastVideo scripts pass ``FastVideoArgs`` / FastVideo ``PipelineConfig`` fields to
``VideoGenerator.from_pretrained`` and FastVideo ``SamplingParam`` fields to ``generate_video``.
Here every one of those names gets one of three answers (the table in docs/fastvideo-compat.md):

* supported: mapped onto our ``PipelineConfig`` / ``SamplingParam`` field with the same meaning;
* accepted only with the value that asks for nothing we lack (``tp_size=1``,
  ``trust_remote_code=False`` ...): another value is an
  :class:`UnsupportedOptionError` that names the option and says what to use instead;
* not supported: any value is an :class:`UnsupportedOptionError` naming the option -- never a silent
  ignore.

A name that is neither ours nor FastVideo's is a ``TypeError`` listing the accepted names.
The FastVideo field lists are those of hao-ai-lab/FastVideo at commit 2f3d4074 (2026-08-21), plus the
older names scripts still pass (``STA_mode``, ``skip_time_steps``, ``mask_strategy_file_path``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

FASTVIDEO_COMMIT = "2f3d4074064e4d86f99dc784ebbaa296e6f5925f"


class UnsupportedOptionError(ValueError):
    """A FastVideo option fastvideo does not implement (or not with this value). ``option`` names it."""

    def __init__(self, option: str, message: str):
        super().__init__(message)
        self.option = option


# ---------------------------------------------------------------------------------------------
# FastVideo's names (FastVideoArgs, its PipelineConfig, its SamplingParam), for the table and tests.

FASTVIDEO_ARGS_FIELDS = (
    "model_path mode workload_type distributed_executor_backend ray_placement_group ray_runtime_env "
    "inference_mode trust_remote_code revision num_gpus tp_size sp_size hsdp_replicate_dim hsdp_shard_dim "
    "dist_timeout pipeline_config preprocess_config lora_path lora_nickname lora_target_modules output_type "
    "attention_backend dit_cpu_offload use_fsdp_inference dit_layerwise_offload text_encoder_cpu_offload "
    "image_encoder_cpu_offload vae_cpu_offload pin_cpu_memory enable_torch_compile "
    "enable_torch_compile_text_encoder enable_torch_compile_vae enable_torch_compile_audio_vae "
    "torch_compile_kwargs torch_compile_kwargs_dit torch_compile_kwargs_text_encoder torch_compile_kwargs_vae "
    "torch_compile_kwargs_audio_vae disable_autocast VSA_sparsity VSA_tile_size moba_config_path moba_config "
    "master_port enable_stage_verification prompt_txt ltx2_vae_tiling ltx2_vae_spatial_tile_size_in_pixels "
    "ltx2_vae_spatial_tile_overlap_in_pixels ltx2_vae_temporal_tile_size_in_frames "
    "ltx2_vae_temporal_tile_overlap_in_frames ltx2_initial_latent_path ltx2_audio_latent_path refine_enabled "
    "refine_upsampler_path refine_transformer_path refine_lora_path refine_num_inference_steps "
    "refine_guidance_scale refine_add_noise refine_noise_path refine_audio_noise_path ltx2_refine_enabled "
    "ltx2_refine_upsampler_path ltx2_refine_transformer_path ltx2_refine_lora_path "
    "ltx2_refine_num_inference_steps ltx2_refine_guidance_scale ltx2_refine_add_noise ltx2_refine_noise_path "
    "ltx2_refine_audio_noise_path ltx2_legacy_native_noise_order ltx2_use_distilled_sigmas model_paths "
    "model_loaded override_text_encoder_safetensors override_text_encoder_quant transformer_quant "
    "override_transformer_cls_name init_weights_from_safetensors init_weights_from_safetensors_2 "
    "override_pipeline_cls_name boundary_ratio"
).split()
FASTVIDEO_LEGACY_ARGS = ("STA_mode", "skip_time_steps", "mask_strategy_file_path", "cache_strategy", "nvfp4_fa4")
FASTVIDEO_PIPELINE_CONFIG_FIELDS = (
    "model_path pipeline_config_path embedded_cfg_scale flow_shift flow_shift_sr disable_autocast "
    "scheduler_step_in_fp32 is_causal dit_config dit_precision upsampler_config upsampler_precision vae_config "
    "vae_precision vae_decode_precision vae_tiling vae_sp image_encoder_config image_encoder_precision "
    "image_encoder_configs image_encoder_precisions text_encoder_configs text_encoder_precisions "
    "preprocess_text_funcs postprocess_text_funcs dmd_denoising_steps ti2v_task lucy_edit_task boundary_ratio"
).split()
FASTVIDEO_SAMPLING_FIELDS = (
    "data_type image_path pil_image last_image references video_path latents audio_latents mouse_cond "
    "keyboard_cond grid_sizes pose prompt_attention_mask negative_attention_mask camera_states camera_trajectory "
    "action_list action_speed_list gt_latents conditioning_mask c2ws_plucker_emb action_path refine_from t_thresh "
    "spatial_refine_only num_cond_frames stage1_video prompt negative_prompt max_sequence_length prompt_path "
    "output_path output_video_name num_videos_per_prompt seed num_frames height width height_sr width_sr fps "
    "num_inference_steps num_inference_steps_sr guidance_scale batch_cfg guidance_scale_2 cfg_normalization "
    "cfg_truncation use_embedded_guidance true_cfg_scale guidance_rescale boundary_ratio sigmas enable_teacache "
    "trajectory_type movement_distance camera_rotation ltx2_cfg_scale_video ltx2_cfg_scale_audio "
    "ltx2_modality_scale_video ltx2_modality_scale_audio ltx2_rescale_scale ltx2_stg_scale_video "
    "ltx2_stg_scale_audio ltx2_stg_blocks_video ltx2_stg_blocks_audio ltx2_images ltx2_image_crf "
    "ltx2_conditioning_latent_stage1 ltx2_conditioning_latent_stage2 ltx2_video_conditions audio_start_in_s "
    "audio_end_in_s init_audio init_audio_strength init_noise_level inpaint_audio inpaint_mask continuation_state "
    "return_continuation_state save_video return_frames return_trajectory_latents return_trajectory_decoded"
).split()
# generate_video's own keyword arguments besides SamplingParam fields (Matrix-Game actions, log forwarding).
FASTVIDEO_GENERATE_EXTRA = ("mouse_cond", "keyboard_cond", "grid_sizes", "log_queue")
# FastVideo's generate_video result keys.
FASTVIDEO_RESULT_KEYS = (
    "prompts samples frames audio audio_sample_rate ltx2_audio_latents size generation_time e2e_latency "
    "logging_info trajectory trajectory_timesteps trajectory_decoded video_path peak_memory_mb"
).split()

# ---------------------------------------------------------------------------------------------
# from_pretrained


# Options for features fastvideo does not have: why, per family of names.
_NOT_SUPPORTED_PREFIXES = (
    ("VSA_", "video sparse attention (VSA) is not supported; fastvideo runs dense attention"),
    ("moba_", "mixture-of-block attention (MoBA) is not supported; fastvideo runs dense attention"),
    ("STA_", "sliding tile attention (STA) is not supported; fastvideo runs dense attention"),
    ("ltx2_", "LTX-2 is not supported (fastvideo runs Wan2.1 models)"),
    ("refine_", "two-stage refinement is not supported"),
    ("enable_torch_compile_", "compiling components other than the DiT is not supported; "
     "use enable_torch_compile=True (the DiT)"),
    ("torch_compile_kwargs_", "per-component torch.compile arguments are not supported"),
    ("ray_", "Ray placement groups and runtime environments are not supported; distributed_executor_backend='ray' "
     "makes its own placement group (RAY_ADDRESS picks the cluster; docs/multigpu.md)"),
    ("hsdp_", "HSDP (replicated shard groups) is not supported; use_fsdp_inference=True shards the DiT over all "
     "ranks"),
    ("override_", "overriding classes or weights at load time is not supported; convert the model folder instead"),
    ("init_weights_from_safetensors", "loading initial weights from another file is not supported"),
)
_NOT_SUPPORTED = {
    "skip_time_steps": "sliding tile attention (STA) is not supported; fastvideo runs dense attention",
    "mask_strategy_file_path": "sliding tile attention (STA) is not supported; fastvideo runs dense attention",
    "cache_strategy": "FastVideo's cache strategies are not supported; fastvideo has its own step cache: "
                      "SamplingParam.step_cache_threshold (docs/engine.md)",
    "dist_timeout": "a torch.distributed timeout is not supported (the executor has its own)",
    "master_port": "choosing the rendezvous port is not supported (the executor picks a free one)",
    "prompt_txt": "batch prompts from a file are not supported; call generate_video once per prompt",
    "preprocess_config": "preprocessing (training data) is not supported",
    "model_paths": "per-component model paths are not supported; use one Diffusers-layout folder",
    "model_loaded": "choosing which components load is not supported",
    "transformer_quant": "quantized DiTs are not supported",
    "boundary_ratio": "set it per request (generate_video(..., boundary_ratio=0.9)); the model's own is in its "
                      "model_index.json",
    "lora_path": "LoRAs are applied per request: generate_video(..., loras=[(path, strength)])",
    "lora_target_modules": "LoRAs are applied per request: generate_video(..., loras=[(path, strength)])",
    "nvfp4_fa4": "NVFP4 attention is not supported",
    # FastVideo PipelineConfig fields
    "pipeline_config_path": "loading a pipeline config from a file is not supported; pass pipeline_config= "
                            "a fastvideo PipelineConfig",
    "embedded_cfg_scale": "embedded guidance (HunyuanVideo / FLUX) is not supported",
    "flow_shift_sr": "super-resolution stages are not supported",
    "scheduler_step_in_fp32": "choosing the scheduler step precision is not supported (it always runs in fp32)",
    "is_causal": "causal (self-forcing) DiTs are not supported",
    "dit_config": "overriding the DiT architecture config is not supported (it is read from the model folder)",
    "vae_config": "overriding the VAE config is not supported (it is read from the model folder)",
    "image_encoder_config": "overriding the image encoder config is not supported (it is read from the folder)",
    "image_encoder_configs": "overriding the image encoder configs is not supported",
    "text_encoder_configs": "overriding the text encoder configs is not supported (read from the model folder)",
    "upsampler_config": "upsamplers are not supported",
    "upsampler_precision": "upsamplers are not supported",
    "vae_decode_precision": "a separate VAE decode precision is not supported; use vae_precision",
    "vae_sp": "VAE sequence parallelism is not supported (each rank decodes the whole video)",
    "preprocess_text_funcs": "custom prompt preprocessing functions are not supported",
    "postprocess_text_funcs": "custom text encoder postprocessing functions are not supported",
    "dmd_denoising_steps": "a load-time DMD schedule is not supported; set it per request: "
                           "SamplingParam(sampler='dmd', dmd_denoising_steps=[...]) (FastWan folders do by default)",
    "ti2v_task": "a Wan2.2 TI2V model does image-to-video when given image_path, text-to-video without",
    "lucy_edit_task": "Lucy-Edit is not supported",
}
# Accepted with exactly these values (they ask for nothing fastvideo lacks); the message says what to use.
_ONLY_VALUES: dict[str, tuple[tuple[Any, ...], str]] = {
    "trust_remote_code": ((False, None), "fastvideo never runs code from a model folder (trust_remote_code=True "
                                         "is refused; model folders are data only)"),
    "revision": ((None,), "choosing a revision at load time is not supported; download it first: "
                          "fastvideo download --repo-id ID --revision REV --local-dir DIR, then pass DIR"),
    "inference_mode": ((True, None), "only inference is supported (inference_mode=True)"),
    "mode": (("inference", None), "only mode='inference' is supported"),
    "output_type": (("pil", None), "only output_type='pil' (decoded frames) is supported"),
    "lora_nickname": (("default", None), "named LoRA adapters are not supported; pass generate_video(..., "
                                         "loras=[(path, strength)])"),
    "torch_compile_kwargs": (({}, None), "torch.compile arguments are not supported; enable_torch_compile=True "
                                         "compiles the DiT's blocks with the defaults"),
    "image_encoder_precisions": ((None,), "one image encoder: use image_encoder_precision"),
}
# Same meaning, another name of ours.
_RENAMED = {"enable_torch_compile": "compile_dit", "enable_stage_verification": "stage_verification"}
_WORKLOAD_TYPES = {"t2v", "i2v", "v2v"}


@dataclasses.dataclass
class LoadOptions:
    """``from_pretrained``'s keyword arguments, translated."""

    num_gpus: int
    overrides: dict[str, Any]  # our PipelineConfig fields
    pipeline_config: Any = None  # a PipelineConfig given as pipeline_config=
    workload_type: str | None = None  # checked against the folder's tasks once it is resolved
    disable_autocast: bool | None = None
    executor_backend: str = "mp"  # distributed_executor_backend: "mp" or "ray"


def _allowed(value: Any, allowed: tuple[Any, ...]) -> bool:
    value = getattr(value, "value", value)  # FastVideo's str enums (ExecutionMode.INFERENCE)
    return any(value is a or (value == a and type(value) is type(a)) for a in allowed)


def _not_supported_reason(name: str) -> str | None:
    if name in _NOT_SUPPORTED:
        return _NOT_SUPPORTED[name]
    for prefix, why in _NOT_SUPPORTED_PREFIXES:
        if name.startswith(prefix):
            return why
    return None


def accepted_load_options(our_fields: set[str]) -> list[str]:
    """Every name from_pretrained accepts (some only with one value)."""
    names = set(our_fields) - {"extra", "preview_factors", "preview_bias", "text_encoder_precision"}
    names |= {"text_encoder_precision", "num_gpus", "tp_size", "pin_cpu_memory", "distributed_executor_backend",
              "pipeline_config", "workload_type", "disable_autocast", "text_encoder_precisions",
              "dit_layerwise_offload"}
    names |= set(_RENAMED) | set(_ONLY_VALUES)
    return sorted(names)


def translate_load_options(num_gpus: Any, kwargs: dict[str, Any], our_fields: set[str]) -> LoadOptions:
    """FastVideo's ``from_pretrained(**kwargs)`` as our num_gpus and PipelineConfig overrides.

    Raises :class:`UnsupportedOptionError` (a ValueError naming the option) for FastVideo options we lack,
    ``TypeError`` listing the accepted names for an unknown one.
    """
    out = LoadOptions(num_gpus=num_gpus, overrides={})
    for name, value in kwargs.items():
        if name == "tp_size":
            if value not in (None, -1, 1):
                raise UnsupportedOptionError(
                    name, f"tp_size={value}: tensor parallelism is not supported; use sp_size / num_gpus")
        elif name == "sp_size":
            if value in (None, -1):
                continue  # FastVideo's "choose": ours chooses too
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"sp_size must be a whole number >= 1 (or -1: choose), got {value!r}")
            out.overrides["sp_size"] = value
        elif name == "distributed_executor_backend":
            if value not in ("mp", "ray", None):
                raise UnsupportedOptionError(
                    name, f"distributed_executor_backend={value!r}: not supported; the accepted values are 'mp' "
                          "(one process per GPU on this machine) and 'ray' (ranks as Ray actors, one host or many)")
            out.executor_backend = value or "mp"
        elif name == "use_fsdp_inference":
            if not isinstance(value, bool) and value is not None:
                raise ValueError(f"use_fsdp_inference must be True or False, got {value!r}")
            if value:
                out.overrides["use_fsdp_inference"] = True
        elif name == "pin_cpu_memory":
            if not isinstance(value, bool):
                raise ValueError(f"pin_cpu_memory must be True or False, got {value!r}")
            out.overrides["pin_cpu_memory"] = value
        elif name == "dit_layerwise_offload":  # FastVideo's layer-by-layer DiT offload: our block streaming
            if not isinstance(value, bool):
                raise ValueError(f"dit_layerwise_offload must be True or False, got {value!r}")
            if value:
                out.overrides["memory_mode"] = "block_stream"
        elif name == "pipeline_config":
            out.pipeline_config = value
        elif name == "workload_type":
            task = str(getattr(value, "value", value)).lower()
            if task not in _WORKLOAD_TYPES:
                raise UnsupportedOptionError(
                    name, f"workload_type={task!r}: not supported; fastvideo does {sorted(_WORKLOAD_TYPES)} "
                          "(and picks the task from the inputs: image_path -> i2v, video_path -> v2v)")
            out.workload_type = task
        elif name == "disable_autocast":
            if not isinstance(value, bool):
                raise ValueError(f"disable_autocast must be True or False, got {value!r}")
            out.disable_autocast = value  # we never autocast: each component runs in its own precision
        elif name == "text_encoder_precisions":
            out.overrides["text_encoder_precision"] = single_precision(name, value)
        elif name in _RENAMED:
            out.overrides[_RENAMED[name]] = value
        elif name in _ONLY_VALUES:
            allowed, why = _ONLY_VALUES[name]
            if not _allowed(value, allowed):
                raise UnsupportedOptionError(name, f"{name}={value!r}: {why}")
        elif name in our_fields and name != "extra":
            out.overrides[name] = value
        else:
            why = _not_supported_reason(name)
            if why is not None:
                raise UnsupportedOptionError(name, f"{name}={value!r} is not supported by fastvideo: {why}")
            raise TypeError(f"VideoGenerator.from_pretrained() got an unknown option {name!r}; accepted options: "
                            f"{', '.join(accepted_load_options(our_fields))}")
    return out


def single_precision(name: str, value: Any) -> str:
    """FastVideo's per-encoder precision list (``text_encoder_precisions=["fp16"]``) as our one precision."""
    if isinstance(value, str):
        return value
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) != 1 or not isinstance(values[0], str):
        raise UnsupportedOptionError(
            name, f"{name}={value!r}: Wan has one text encoder; give one precision, e.g. ['bf16']")
    return values[0]


# ---------------------------------------------------------------------------------------------
# generate_video

_SAMPLING_NOT_SUPPORTED = {
    "pil_image": "pass the image as image_path (a file path)",
    "last_image": "first-last-frame conditioning is not supported",
    "references": "reference images are not supported",
    "latents": "pre-made latents are not supported (the seed makes Diffusers' initial noise)",
    "audio_latents": "audio is not supported",
    "max_sequence_length": "the text length is the pipeline's text_len (512 for Wan)",
    "prompt_path": "batch prompts from a file are not supported; call generate_video once per prompt",
    "height_sr": "super-resolution is not supported",
    "width_sr": "super-resolution is not supported",
    "num_inference_steps_sr": "super-resolution is not supported",
    "batch_cfg": "set batch_cfg per model: VideoGenerator.from_pretrained(..., batch_cfg=True|False)",
    "sigmas": "custom sigma schedules are not supported (use flow_shift and num_inference_steps)",
    "enable_teacache": "TeaCache's own parameters are not supported; use step_cache_threshold=X (fastvideo's "
                       "TeaCache-style step cache, docs/engine.md)",
    "return_continuation_state": "streaming continuation is not supported",
    "continuation_state": "streaming continuation is not supported",
}
_SAMPLING_FAMILIES = (
    ("ltx2_", "LTX-2 is not supported (fastvideo runs Wan2.1 models)"),
    ("audio_", "audio generation is not supported"),
    ("init_", "audio-to-audio is not supported"),
    ("inpaint_", "audio inpainting is not supported"),
    ("cfg_", "Z-Image CFG controls are not supported"),
)
_SAMPLING_CONTROL = (  # camera / action / refinement / guidance fields of other families
    "mouse_cond keyboard_cond grid_sizes pose prompt_attention_mask negative_attention_mask camera_states "
    "camera_trajectory action_list action_speed_list gt_latents conditioning_mask c2ws_plucker_emb action_path "
    "refine_from t_thresh spatial_refine_only num_cond_frames stage1_video use_embedded_guidance true_cfg_scale "
    "guidance_rescale trajectory_type movement_distance camera_rotation"
).split()
_SAMPLING_ONLY_VALUES: dict[str, tuple[tuple[Any, ...], str]] = {
    "num_videos_per_prompt": ((1, None), "one video per call: call generate_video again with another seed"),
    "data_type": (("video", None), "only video output is supported"),
    "return_trajectory_latents": ((False, None), "returning the latents of every step is not supported"),
    "return_trajectory_decoded": ((False, None), "returning the decoded video of every step is not supported"),
    "log_queue": ((None,), "forwarding worker logs to a queue is not supported; pass callback= for events"),
    "prompt_attention_mask": (([], None), "attention masks are made from the prompt"),
    "negative_attention_mask": (([], None), "attention masks are made from the prompt"),
}


def translate_generate_kwargs(kwargs: dict[str, Any], our_fields: set[str]) -> dict[str, Any]:
    """FastVideo's ``generate_video(**kwargs)`` as our SamplingParam overrides.

    ``output_video_name`` becomes part of ``output_path``; FastVideo fields we lack raise
    :class:`UnsupportedOptionError`; other unknown names are left for ``SamplingParam.update`` (a TypeError
    listing the fields).
    """
    out: dict[str, Any] = {}
    video_name = None
    for name, value in kwargs.items():
        if name in our_fields:
            out[name] = value
        elif name == "output_video_name":
            video_name = value
        elif name in _SAMPLING_ONLY_VALUES:
            allowed, why = _SAMPLING_ONLY_VALUES[name]
            if not _allowed(value, allowed):
                raise UnsupportedOptionError(name, f"{name}={value!r}: {why}")
        else:
            why = _SAMPLING_NOT_SUPPORTED.get(name)
            if why is None:
                why = next((w for p, w in _SAMPLING_FAMILIES if name.startswith(p)), None)
            if why is None and name in _SAMPLING_CONTROL:
                why = "camera / action / refinement controls of other model families are not supported"
            if why is not None:
                if value is None:
                    continue  # FastVideo passes its optional inputs as None when unused (mouse_cond=None ...)
                raise UnsupportedOptionError(name, f"{name} is not supported by fastvideo: {why}")
            out[name] = value  # unknown: SamplingParam.update names it and lists the fields
    if video_name:
        out["output_path"] = _join_video_name(out.get("output_path"), str(video_name))
    return out


def _join_video_name(output_path: str | None, name: str) -> str:
    folder = output_path or "outputs"
    if folder.lower().endswith(".mp4"):
        folder = os.path.dirname(folder) or "."
    if not name.lower().endswith(".mp4"):
        name += ".mp4"
    return os.path.join(folder, name)


def add_result_aliases(result: dict[str, Any], prompt: Any, e2e_latency: float) -> dict[str, Any]:
    """FastVideo's result keys next to ours (ours are kept): ``prompts``, ``e2e_latency``,
    ``peak_memory_mb``, ``samples`` (float [1, 3, T, H, W] in [0, 1] when frames are returned), and
    ``frames`` / ``video_path`` always present (None when not asked for)."""
    result.setdefault("prompts", prompt)
    result.setdefault("e2e_latency", e2e_latency)
    result.setdefault("video_path", None)
    result.setdefault("frames", None)
    peak = result.get("peak_memory")
    result.setdefault("peak_memory_mb", None if peak is None else peak / 2**20)
    if "samples" not in result:
        frames = result.get("frames")
        samples = None
        if frames is not None:
            import torch  # only with return_frames=True; generate_video has imported it already

            samples = torch.as_tensor(frames).permute(3, 0, 1, 2).unsqueeze(0).float().div_(255.0)
        result["samples"] = samples
    return result

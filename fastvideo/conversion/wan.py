"""Official Wan2.1 / Wan2.2 checkpoint folder -> Diffusers-layout folder.

Source (official ``Wan-AI/Wan2.1-*`` / ``Wan-AI/Wan2.2-*`` repo layouts)::

    config.json                              WanModel hyper-parameters (dim, num_heads, model_type, ...)
    diffusion_pytorch_model.safetensors      DiT (or several *.safetensors shards, with or without an
                                             index; ComfyUI ``model.diffusion_model.`` prefixes accepted)
    high_noise_model/, low_noise_model/      Wan2.2 A14B instead: one config.json + DiT shards per expert
    Wan2.1_VAE.pth | Wan2.2_VAE.pth          VAE (official names; Wan2.2's for TI2V-5B)
    models_t5_umt5-xxl-enc-bf16.pth          UMT5-XXL encoder (official names, bf16)
    google/umt5-xxl/                         tokenizer files

Every size comes from the checkpoint itself: the DiT's from its ``config.json`` (and the image embedder's
weights), the VAE's and the T5's from their tensor shapes (``fastvideo/conversion/wan_sizes.py``).

Output: ``model_index.json`` + ``transformer/ vae/ text_encoder/ tokenizer/ scheduler/``
(+ ``transformer_2/`` and ``boundary_ratio`` for A14B, ``expand_timesteps`` for TI2V,
``image_encoder/ image_processor/`` for Wan2.1 I2V), loadable by Diffusers and by fastvideo.

All renames come from the arch configs' official rules (``WanVideoConfig.official_param_names_mapping``,
``WanVAEConfig.official_mapping()``, ``OFFICIAL_UMT5_MAPPING``) through the mapping engine; the renamed
keys are checked against our models (built on the meta device, through their Diffusers
``param_names_mapping``) before anything is written.  Tensors keep their dtype (the T5 stays bf16).

Wan2.1 I2V: the official CLIP file (``models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth``) is open-clip
format and is *not* converted.  The Diffusers-format ``image_encoder/`` and ``image_processor/`` folders
are copied from ``image_encoder_from`` (a Diffusers Wan I2V folder, e.g.
``Wan-AI/Wan2.1-I2V-14B-480P-Diffusers``) or from the source folder if it has them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastvideo.conversion.base import (
    DEFAULT_MAX_SHARD_BYTES,
    ConversionError,
    Progress,
    ProgressFn,
    TensorPlan,
    check_output,
    clean_stale_staging,
    copy_files,
    plan_component,
    read_source_headers,
    shard_names,
    staging_folder,
    write_json,
    write_plan,
)
from fastvideo.models.loader.checkpoint import CheckpointError, weight_files

DIFFUSERS_VERSION = "0.33.0"
VAE_FILE = "Wan2.1_VAE.pth"
VAE22_FILE = "Wan2.2_VAE.pth"
T5_FILE = "models_t5_umt5-xxl-enc-bf16.pth"
TOKENIZER_DIRS = ("google/umt5-xxl", "tokenizer")
MODEL_TYPES = ("t2v", "i2v", "ti2v")
# Wan2.2 A14B: the expert folders (high noise first) and where the sampler switches (official configs).
EXPERT_DIRS = (("transformer", "high_noise_model"), ("transformer_2", "low_noise_model"))
BOUNDARY_RATIO = {"t2v": 0.875, "i2v": 0.9}
# Wan's UniPC settings: flow_shift 3.0 suits 480p; pass flow_shift= / --flow-shift 5.0 for 720p 14B.
from fastvideo.configs.pipelines.wan import WAN_SCHEDULER_CONFIG  # noqa: E402


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConversionError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConversionError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConversionError(f"{path}: expected a JSON object")
    return data


def dit_files(source: Path) -> list[Path]:
    """The DiT weight files of an official folder: a shard index wins, else every top-level *.safetensors."""
    if list(source.glob("*.safetensors.index.json")):
        try:
            return weight_files(source)
        except CheckpointError as exc:
            raise ConversionError(str(exc)) from None
    files = sorted(p for p in source.glob("*.safetensors") if p.is_file())
    if not files:
        raise ConversionError(f"{source}: no DiT weights (*.safetensors) found")
    return files


def find_tokenizer(source: Path) -> Path:
    for rel in TOKENIZER_DIRS:
        if (source / rel).is_dir() and any((source / rel).iterdir()):
            return source / rel
    raise ConversionError(f"{source}: no tokenizer folder (looked for {', '.join(TOKENIZER_DIRS)})")


def detect_model_type(config: dict[str, Any], config_path: Path, requested: str | None) -> str:
    found = config.get("model_type")
    if found is None:  # old configs: infer from the input channels (16 noise + 4 mask + 16 image latents)
        found = "i2v" if int(config.get("in_dim", 16)) == 36 else "t2v"
    if found not in MODEL_TYPES:
        raise ConversionError(
            f"{config_path}: model_type {found!r} is not supported by this converter "
            f"(supported: {', '.join(MODEL_TYPES)})"
        )
    if requested is not None:
        if requested not in MODEL_TYPES:
            raise ConversionError(f"--model-type must be one of {', '.join(MODEL_TYPES)}, got {requested!r}")
        if requested != found:
            raise ConversionError(
                f"wrong model type: {config_path} says model_type {found!r}, but {requested!r} was requested "
                f"(drop --model-type or pass --model-type {found})"
            )
    return found


def transformer_config(config: dict[str, Any], model_type: str, headers: dict) -> dict[str, Any]:
    """WanModel config.json -> Diffusers ``WanTransformer3DModel`` config (image sizes read from the weights)."""
    from fastvideo.configs.models.dits.wan import WanVideoConfig

    try:
        dim, heads = int(config["dim"]), int(config["num_heads"])
        out = dict(
            patch_size=list(config.get("patch_size", [1, 2, 2])),
            num_attention_heads=heads,
            attention_head_dim=dim // heads,
            in_channels=int(config["in_dim"]),
            out_channels=int(config.get("out_dim", config["in_dim"])),
            text_dim=int(config.get("text_dim", 4096)),
            freq_dim=int(config.get("freq_dim", 256)),
            ffn_dim=int(config["ffn_dim"]),
            num_layers=int(config["num_layers"]),
            cross_attn_norm=bool(config.get("cross_attn_norm", True)),
            qk_norm="rms_norm_across_heads" if config.get("qk_norm", True) else None,
            eps=float(config.get("eps", 1e-6)),
            image_dim=None,
            added_kv_proj_dim=None,
            rope_max_seq_len=1024,
            pos_embed_seq_len=None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConversionError(f"WanModel config.json: missing or bad entry {exc}") from None
    if dim % heads:
        raise ConversionError(f"WanModel config.json: dim {dim} is not divisible by num_heads {heads}")
    img = next((info for name, info in headers.items() if name.endswith("img_emb.proj.0.weight")), None)
    if model_type == "i2v" and img is not None:  # (Wan2.2 I2V-A14B has none: no CLIP image tokens)
        out["image_dim"] = int(config.get("image_dim", img.shape[0]))
        out["added_kv_proj_dim"] = dim
        pos = next((info for name, info in headers.items() if name.endswith("img_emb.emb_pos")), None)
        if pos is not None:
            out["pos_embed_seq_len"] = int(pos.shape[1])
    return WanVideoConfig.from_dict(out, strict=True).to_dict()


def _model_targets(class_name: str, config: dict[str, Any]):
    """(arch config, meta module targets) of one of our component classes."""
    from fastvideo.configs.registry import COMPONENT_CLASSES, import_string
    from fastvideo.models.loader.component_loader import build_empty
    from fastvideo.models.loader.weights import target_infos

    cc = COMPONENT_CLASSES[class_name]
    arch = import_string(cc.arch_config).from_dict(config)
    return arch, target_infos(build_empty(cc, arch))


def _image_encoder_source(source: Path, image_encoder_from: str | os.PathLike | None) -> Path:
    root = Path(image_encoder_from) if image_encoder_from is not None else source
    enc, proc = root / "image_encoder", root / "image_processor"
    if not (enc / "config.json").is_file() or not (proc / "preprocessor_config.json").is_file():
        where = f"{root}" if image_encoder_from is not None else f"{source} (no image_encoder_from given)"
        raise ConversionError(
            f"i2v: {where} has no Diffusers-format image_encoder/ and image_processor/ folders. The official CLIP "
            "file (open-clip format) is not converted; pass image_encoder_from= / --image-encoder-from a Diffusers "
            "Wan I2V folder (e.g. Wan-AI/Wan2.1-I2V-14B-480P-Diffusers) to copy them from"
        )
    try:
        read_source_headers(weight_files(enc))
    except CheckpointError as exc:
        raise ConversionError(str(exc)) from None
    return root


def expert_folders(source: Path) -> list[tuple[str, Path]]:
    """``[(component, folder)]`` of the DiT(s): Wan2.2 A14B's two expert folders, else the source itself."""
    experts = [(comp, source / sub) for comp, sub in EXPERT_DIRS if (source / sub / "config.json").is_file()]
    if experts and len(experts) != len(EXPERT_DIRS):
        have = ", ".join(sub for _, sub in EXPERT_DIRS if (source / sub).is_dir())
        raise ConversionError(f"{source}: a Wan2.2 A14B folder needs both high_noise_model/ and low_noise_model/ "
                              f"(each with config.json); found {have}")
    return experts or [("transformer", source)]


def plan_conversion(source: str | os.PathLike, model_type: str | None = None,
                    image_encoder_from: str | os.PathLike | None = None) -> dict[str, Any]:
    """Check everything on headers (nothing written) and return the plan."""
    from fastvideo.configs.models.encoders.t5 import OFFICIAL_UMT5_MAPPING
    from fastvideo.conversion.wan_sizes import umt5_config_from_weights, vae_config_from_weights

    source = Path(source)
    if not source.is_dir():
        raise ConversionError(f"{source}: source folder not found")
    plans: list[TensorPlan] = []
    configs: dict[str, dict[str, Any]] = {}
    experts = expert_folders(source)
    types = set()
    has_image_embedder = False
    for component, folder in experts:
        config_path = folder / "config.json"
        config = _read_json(config_path)
        if config.get("_class_name", "WanModel") != "WanModel":
            raise ConversionError(f"{config_path}: _class_name {config.get('_class_name')!r}, expected 'WanModel'")
        found = detect_model_type(config, config_path, model_type)
        types.add(found)
        files = dit_files(folder)
        headers = read_source_headers(files)
        dit_cfg = transformer_config(config, found, headers)
        has_image_embedder = has_image_embedder or dit_cfg["image_dim"] is not None
        arch, targets = _model_targets("WanTransformer3DModel", dit_cfg)
        plans.append(plan_component(component, "diffusion_pytorch_model", files, headers,
                                    type(arch).official_param_names_mapping, arch.param_names_mapping, targets))
        configs[component] = {"_class_name": "WanTransformer3DModel", "_diffusers_version": DIFFUSERS_VERSION,
                              **dit_cfg}
    if len(types) != 1:
        raise ConversionError(f"{source}: the expert folders disagree on model_type ({sorted(types)})")
    found_type = types.pop()
    kind = "ti2v" if found_type == "ti2v" else "moe" if len(experts) > 1 else "wan2.1"

    vae_file = source / (VAE22_FILE if (source / VAE22_FILE).is_file() else VAE_FILE)
    if found_type == "ti2v" and vae_file.name != VAE22_FILE:
        raise ConversionError(f"{source}: model_type ti2v needs the Wan2.2 VAE ({VAE22_FILE}); not found")
    vae_headers = read_source_headers([vae_file])
    vae_arch, targets = _model_targets("AutoencoderKLWan", vae_config_from_weights(vae_headers, vae_file.name))
    plans.append(plan_component("vae", "diffusion_pytorch_model", [vae_file], vae_headers,
                                vae_arch.official_mapping(), vae_arch.param_names_mapping, targets))
    configs["vae"] = {"_class_name": "AutoencoderKLWan", "_diffusers_version": DIFFUSERS_VERSION,
                      **vae_arch.to_dict()}
    z, dit_in = vae_arch.z_dim, configs["transformer"]["in_channels"]
    expected_in = {"t2v": z, "ti2v": z, "i2v": 2 * z + vae_arch.temporal_compression_ratio}[found_type]
    if dit_in != expected_in:
        raise ConversionError(f"{source}: the DiT takes {dit_in} input channels, but a {found_type} model over "
                              f"{vae_file.name} ({z} latent channels) needs {expected_in}")

    t5_files = [source / T5_FILE]
    t5_headers = read_source_headers(t5_files)
    t5_arch, targets = _model_targets("UMT5EncoderModel", umt5_config_from_weights(t5_headers, T5_FILE))
    plans.append(plan_component("text_encoder", "model", t5_files, t5_headers, OFFICIAL_UMT5_MAPPING,
                                t5_arch.param_names_mapping, targets))
    configs["text_encoder"] = _umt5_config(t5_arch, t5_headers)

    tokenizer = find_tokenizer(source)
    image_root = _image_encoder_source(source, image_encoder_from) if has_image_embedder else None
    return {"source": source, "model_type": found_type, "kind": kind, "plans": plans, "configs": configs,
            "tokenizer": tokenizer, "image_root": image_root}


def _umt5_config(arch, headers) -> dict[str, Any]:
    from transformers import UMT5Config

    data = UMT5Config(**arch.hf_config_dict()).to_dict()
    data = {k: v for k, v in data.items() if not k.startswith("_")}
    data["architectures"] = ["UMT5EncoderModel"]
    dtypes = {info.dtype for info in headers.values()}
    if dtypes == {"BF16"}:
        data["dtype"] = "bfloat16"
    return data


def model_index(model_type: str, kind: str = "wan2.1", image_encoder: bool | None = None) -> dict[str, Any]:
    """The Diffusers ``model_index.json``: ``kind`` "wan2.1", "ti2v" (Wan2.2 TI2V-5B) or "moe" (Wan2.2 A14B)."""
    index: dict[str, Any] = {
        "_class_name": "WanPipeline", "_diffusers_version": DIFFUSERS_VERSION,
        "scheduler": ["diffusers", "UniPCMultistepScheduler"], "text_encoder": ["transformers", "UMT5EncoderModel"],
        "tokenizer": ["transformers", "T5TokenizerFast"], "transformer": ["diffusers", "WanTransformer3DModel"],
        "vae": ["diffusers", "AutoencoderKLWan"], "transformer_2": [None, None], "boundary_ratio": None,
    }
    if kind == "ti2v":
        index["expand_timesteps"] = True
    if kind == "moe":
        index.update(transformer_2=["diffusers", "WanTransformer3DModel"], boundary_ratio=BOUNDARY_RATIO[model_type],
                     expand_timesteps=False)
    if model_type == "i2v":
        with_clip = kind == "wan2.1" if image_encoder is None else image_encoder
        index.update(_class_name="WanImageToVideoPipeline", expand_timesteps=False,
                     image_encoder=["transformers", "CLIPVisionModelWithProjection"] if with_clip else [None, None],
                     image_processor=["transformers", "CLIPImageProcessor"] if with_clip else [None, None])
    return index


def convert_official_to_diffusers(
    source: str | os.PathLike,
    output: str | os.PathLike,
    model_type: str | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    *,
    image_encoder_from: str | os.PathLike | None = None,
    flow_shift: float | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    notice: Callable[[str], None] | None = None,
) -> Path:
    """Convert an official Wan2.1 / Wan2.2 folder into a Diffusers-layout folder at ``output``.

    ``flow_shift`` (the scheduler's): None gives 5.0 for TI2V-5B and 3.0 for the others (what Diffusers'
    converter writes).

    Everything is checked on headers first; then tensors are streamed one at a
    time into a temp folder next to ``output`` that is renamed into place at
    the end.  ``progress`` gets ``{"file", "done", "total", "bytes"}`` after each
    output file.  Raises :class:`ConversionError` (a ``ValueError``) with the file
    and the problem; on any error no output (and no temp folder) is left.

    ``overwrite`` replaces only an empty folder or a model folder (one with ``model_index.json``).
    Staging folders left by an earlier conversion that was killed (SIGKILL, power loss) next to
    ``output`` are removed first; ``notice`` (default: print to stderr) gets one line for each.
    """
    source, output = Path(source), Path(output)
    if flow_shift is not None and (isinstance(flow_shift, bool) or not isinstance(flow_shift, (int, float))
                                   or not math.isfinite(flow_shift) or flow_shift <= 0):
        raise ConversionError(f"flow_shift must be a positive finite number, got {flow_shift!r}")
    clean_stale_staging(output, notice)
    check_output(source, output, overwrite)
    plan = plan_conversion(source, model_type, image_encoder_from)
    if flow_shift is None:
        flow_shift = 5.0 if plan["kind"] == "ti2v" else 3.0
    tokenizer: Path = plan["tokenizer"]
    image_root: Path | None = plan["image_root"]

    total = sum(len(shard_names(p, max_shard_bytes)) + (len(shard_names(p, max_shard_bytes)) > 1)
                for p in plan["plans"])
    total += 2 + len(plan["plans"])  # model_index, each component's config, scheduler config
    total += sum(1 for p in tokenizer.rglob("*") if p.is_file())
    if image_root is not None:
        for sub in ("image_encoder", "image_processor"):
            total += sum(1 for p in (image_root / sub).rglob("*") if p.is_file())
    report = Progress(total, progress)

    with staging_folder(output) as tmp:
        for p in plan["plans"]:
            config_path = tmp / p.component / "config.json"
            write_json(config_path, plan["configs"][p.component])
            report(f"{p.component}/config.json", config_path.stat().st_size)
            write_plan(p, tmp, max_shard_bytes=max_shard_bytes, on_file=report)
        scheduler = dict(WAN_SCHEDULER_CONFIG, flow_shift=float(flow_shift))
        write_json(tmp / "scheduler" / "scheduler_config.json", scheduler)
        report("scheduler/scheduler_config.json", (tmp / "scheduler" / "scheduler_config.json").stat().st_size)
        copy_files(tokenizer, tmp / "tokenizer", report, "tokenizer")
        if image_root is not None:
            for sub in ("image_encoder", "image_processor"):
                copy_files(image_root / sub, tmp / sub, report, sub)
        write_json(tmp / "model_index.json", model_index(plan["model_type"], plan["kind"], image_root is not None))
        report("model_index.json", (tmp / "model_index.json").stat().st_size)
    return output

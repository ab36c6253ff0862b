"""Official LTX-2 single-file checkpoint -> Diffusers-layout ``LTX2Pipeline`` folder.

Source (the official Lightricks release)::

    ltx-2-*.safetensors        one file with every LTX-2 component under its official names:
                                 model.diffusion_model.*                      the DiT
                                 model.diffusion_model.{video,audio}_embeddings_connector.*  text connectors
                                 text_embedding_projection.aggregate_embed.*  connectors' input projection
                                 vae.*  audio_vae.*  vocoder.*                 video VAE, audio VAE, vocoder
    Gemma 3 folder             the text encoder, released separately (google/gemma-3-12b-it): ``gemma/`` (or
                               ``text_encoder/``) inside the source, or ``text_encoder_from=``; its tokenizer
                               files go to ``tokenizer/``
    fastvideo_tiny.json        (tiny test models only) the small component configs

Output: ``model_index.json`` + ``transformer/ connectors/ vae/ audio_vae/ vocoder/ text_encoder/ tokenizer/
scheduler/``, loadable by fastvideo and by Diffusers' ``LTX2Pipeline``.

Every rename comes from the arch configs' ``official_param_names_mapping`` through the mapping engine; a
component takes the keys of its prefixes (keys its rules ignore, e.g. the unused latent statistics, are left
out) and the renamed keys are checked against our modules on the meta device before anything is written.
Tensors stream one at a time and keep their dtype; the output appears atomically.

Component configs: the released sizes are our arch configs' defaults (Diffusers' class defaults: LTX-2.0, 19B)
with ``RELEASED_OVERRIDES`` on top (the video VAE's 32x / 8x compression and non-causal decoder); tiny models
carry theirs in ``fastvideo_tiny.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastvideo.conversion.base import (
    DEFAULT_MAX_SHARD_BYTES,
    ConversionError,
    Progress,
    ProgressFn,
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
from fastvideo.conversion.official import LTX2_MARKER_KEY, ltx2_single_file
from fastvideo.mapping.rules import compile_rules, map_name

DIFFUSERS_VERSION = "0.42.1"
TINY_CONFIG_FILE = "fastvideo_tiny.json"
GEMMA_DIRS = ("gemma", "text_encoder")
MARKER_KEY = LTX2_MARKER_KEY

# component -> (checkpoint class, model_index library, key prefixes in the single file)
COMPONENTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "transformer": ("LTX2VideoTransformer3DModel", "diffusers", ("model.diffusion_model.",)),
    "connectors": ("LTX2TextConnectors", "ltx2", ("model.diffusion_model.video_embeddings_connector.",
                                                  "model.diffusion_model.audio_embeddings_connector.",
                                                  "text_embedding_projection.")),
    "vae": ("AutoencoderKLLTX2Video", "diffusers", ("vae.",)),
    "audio_vae": ("AutoencoderKLLTX2Audio", "diffusers", ("audio_vae.",)),
    "vocoder": ("LTX2Vocoder", "ltx2", ("vocoder.",)),
}
# The released LTX-2.0 configs where they differ from Diffusers' class defaults (which are our arch configs'):
# Diffusers' conversion script writes these for the video VAE (its default compression ratios would be computed
# as 4 * 2**4 = 64 and 16; the released VAE is 32x / 8x with a non-causal decoder).
RELEASED_OVERRIDES: dict[str, dict[str, Any]] = {
    "vae": {"decoder_causal": False, "spatial_compression_ratio": 32, "temporal_compression_ratio": 8},
}
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json",
                    "spiece.model", "added_tokens.json", "chat_template.json", "chat_template.jinja")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConversionError(f"{path}: cannot read ({exc})") from None
    if not isinstance(data, dict):
        raise ConversionError(f"{path}: expected a JSON object")
    return data


def single_file(source: Path) -> Path:
    """The folder's LTX-2 single file (the ``.safetensors`` that has the DiT's audio-video keys)."""
    found = ltx2_single_file(source)
    if found is None:
        candidates = sorted(p.name for p in source.glob("*.safetensors") if p.is_file())
        raise ConversionError(f"{source}: no LTX-2 single-file checkpoint (a .safetensors with {MARKER_KEY}) in "
                              f"this folder; found {candidates or 'no .safetensors files'}")
    return found


def is_official_ltx2(source: str | os.PathLike) -> bool:
    return ltx2_single_file(Path(source)) is not None


def gemma_folder(source: Path, text_encoder_from: str | os.PathLike | None) -> Path:
    candidates = [Path(text_encoder_from)] if text_encoder_from else [source / d for d in GEMMA_DIRS]
    for folder in candidates:
        if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
            return folder
    where = text_encoder_from or " or ".join(str(source / d) for d in GEMMA_DIRS)
    raise ConversionError(f"{where}: no Gemma 3 folder (config.json and .safetensors weights). The official "
                          "LTX-2 release uses google/gemma-3-12b-it: download it and pass text_encoder_from= / "
                          "--text-encoder-from DIR")


def _select(headers: dict, prefixes: tuple[str, ...], exclude: tuple[str, ...], rules) -> dict:
    out = {}
    for name, info in headers.items():
        if not name.startswith(prefixes) or name.startswith(exclude):
            continue
        _, rule = map_name(name, rules)
        if rule is not None and rule.replacement is None:
            continue  # the component's rules drop it (unused statistics...)
        out[name] = info
    return out


def plan_conversion(source: str | os.PathLike, text_encoder_from: str | os.PathLike | None = None) -> dict[str, Any]:
    """Check everything on headers (nothing written) and return the plan."""
    from fastvideo.configs.registry import COMPONENT_CLASSES, import_string
    from fastvideo.models.loader.component_loader import build_empty
    from fastvideo.models.loader.weights import target_infos

    source = Path(source)
    if not source.is_dir():
        raise ConversionError(f"{source}: source folder not found")
    ckpt = single_file(source)
    headers = read_source_headers([ckpt])
    tiny = _read_json(source / TINY_CONFIG_FILE) if (source / TINY_CONFIG_FILE).is_file() else {}
    plans, configs, used = [], {}, set()
    for component, (cls_name, _, prefixes) in COMPONENTS.items():
        cc = COMPONENT_CLASSES[cls_name]
        cfg_cls = import_string(cc.arch_config)
        try:
            arch = cfg_cls.from_dict(dict(tiny[component]) if component in tiny
                                     else dict(RELEASED_OVERRIDES.get(component, {})))
        except (TypeError, ValueError) as exc:
            raise ConversionError(f"{source / TINY_CONFIG_FILE}: {component}: {exc}") from None
        rules = compile_rules(cfg_cls.official_param_names_mapping)
        exclude = COMPONENTS["connectors"][2][:2] if component == "transformer" else ()
        picked = _select(headers, prefixes, exclude, rules)
        used.update(picked)
        plans.append(plan_component(component, "diffusion_pytorch_model", [ckpt], picked,
                                    cfg_cls.official_param_names_mapping, arch.param_names_mapping,
                                    target_infos(build_empty(cc, arch))))
        configs[component] = {"_class_name": cls_name, "_diffusers_version": DIFFUSERS_VERSION, **arch.to_dict()}
    gemma = gemma_folder(source, text_encoder_from)
    return {"source": source, "file": ckpt, "plans": plans, "configs": configs, "gemma": gemma,
            "unused": sorted(set(headers) - used)}


def official_mapping_inputs(source: str | os.PathLike, component: str):
    """The inspector's preview of one component's conversion: (the single file's keys of that component, our
    parameters under the Diffusers names the converter writes, the official rules in order)."""
    from fastvideo.configs.registry import COMPONENT_CLASSES, import_string
    from fastvideo.conversion.preview import output_targets
    from fastvideo.mapping.rules import rules_list
    from fastvideo.models.loader.component_loader import build_empty
    from fastvideo.models.loader.weights import target_infos

    source = Path(source)
    if component not in COMPONENTS:
        raise ValueError(f"{source}: the LTX-2 single file converts {', '.join(COMPONENTS)}; {component!r} is not "
                         "one of them (the Gemma 3 text encoder is copied as it is)")
    cls_name, _, prefixes = COMPONENTS[component]
    cc = COMPONENT_CLASSES[cls_name]
    cfg_cls = import_string(cc.arch_config)
    tiny = _read_json(source / TINY_CONFIG_FILE) if (source / TINY_CONFIG_FILE).is_file() else {}
    arch = cfg_cls.from_dict(dict(tiny[component]) if component in tiny
                             else dict(RELEASED_OVERRIDES.get(component, {})))
    rules = cfg_cls.official_param_names_mapping
    exclude = COMPONENTS["connectors"][2][:2] if component == "transformer" else ()
    headers = read_source_headers([single_file(source)])
    picked = _select(headers, prefixes, exclude, compile_rules(rules))
    return picked, output_targets(target_infos(build_empty(cc, arch)), arch.param_names_mapping), rules_list(rules)


def model_index(tokenizer_class: str) -> dict[str, Any]:
    index: dict[str, Any] = {"_class_name": "LTX2Pipeline", "_diffusers_version": DIFFUSERS_VERSION}
    for component, (cls_name, library, _) in COMPONENTS.items():
        index[component] = [library, cls_name]
    index.update(scheduler=["diffusers", "FlowMatchEulerDiscreteScheduler"],
                 text_encoder=["transformers", "Gemma3ForConditionalGeneration"],
                 tokenizer=["transformers", tokenizer_class])
    return index


def convert_official_to_diffusers(
    source: str | os.PathLike,
    output: str | os.PathLike,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    *,
    text_encoder_from: str | os.PathLike | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    notice: Callable[[str], None] | None = None,
    fit_preview: bool = True,
) -> Path:
    """Convert an official LTX-2 folder (single file + Gemma 3) into a Diffusers-layout folder at ``output``.

    Same guarantees as the Wan converter: checked on headers first, streamed, written into a staging folder
    renamed into place; on any error no output is left.  ``progress`` gets ``{"file", "done", "total",
    "bytes"}`` after each output file.  ``fit_preview``: also write ``vae/latent_rgb.json`` (live-preview
    factors fitted from the converted VAE's own decodes; loads the VAE once, in fp32)."""
    from fastvideo.configs.pipelines.ltx2 import LTX2_SCHEDULER_CONFIG

    source, output = Path(source), Path(output)
    clean_stale_staging(output, notice)
    check_output(source, output, overwrite)
    plan = plan_conversion(source, text_encoder_from)
    gemma: Path = plan["gemma"]
    gemma_files = sorted(p for p in gemma.rglob("*") if p.is_file())
    tok_files = [p for p in gemma_files if p.name in _TOKENIZER_FILES]
    te_files = [p for p in gemma_files if p.name not in _TOKENIZER_FILES]
    if not tok_files:
        raise ConversionError(f"{gemma}: no tokenizer files ({', '.join(_TOKENIZER_FILES[:3])}, ...)")
    tok_cfg = gemma / "tokenizer_config.json"
    tok_class = _read_json(tok_cfg).get("tokenizer_class") if tok_cfg.is_file() else None
    total = sum(len(shard_names(p, max_shard_bytes)) + (len(shard_names(p, max_shard_bytes)) > 1)
                for p in plan["plans"])
    total += len(plan["plans"]) + 2 + len(gemma_files) + int(fit_preview)
    report = Progress(total, progress)
    with staging_folder(output) as tmp:
        for p in plan["plans"]:
            write_json(tmp / p.component / "config.json", plan["configs"][p.component])
            report(f"{p.component}/config.json", (tmp / p.component / "config.json").stat().st_size)
            write_plan(p, tmp, max_shard_bytes=max_shard_bytes, on_file=report)
        if fit_preview:  # latent->RGB factors for live previews, from the VAE just written
            write_json(tmp / "vae" / "latent_rgb.json", _fit_preview(tmp / "vae"))
            report("vae/latent_rgb.json", (tmp / "vae" / "latent_rgb.json").stat().st_size)
        write_json(tmp / "scheduler" / "scheduler_config.json", LTX2_SCHEDULER_CONFIG)
        report("scheduler/scheduler_config.json", (tmp / "scheduler" / "scheduler_config.json").stat().st_size)
        for files, sub in ((te_files, "text_encoder"), (tok_files, "tokenizer")):
            for f in files:
                dst = tmp / sub / f.relative_to(gemma)
                dst.parent.mkdir(parents=True, exist_ok=True)
                copy_files_one(f, dst)
                report(f"{sub}/{f.relative_to(gemma).as_posix()}", dst.stat().st_size)
        write_json(tmp / "model_index.json", model_index(tok_class or "GemmaTokenizerFast"))
        report("model_index.json", (tmp / "model_index.json").stat().st_size)
    return output


def _fit_preview(vae_folder: Path) -> dict:
    from fastvideo.configs.registry import COMPONENT_CLASSES
    from fastvideo.models.loader.component_loader import load_module

    vae, _, _ = load_module(vae_folder, COMPONENT_CLASSES["AutoencoderKLLTX2Video"], component="vae")
    return vae.float().fit_latent_rgb()


def copy_files_one(src: Path, dst: Path) -> None:
    import shutil

    shutil.copyfile(src, dst)


__all__ = ["ConversionError", "convert_official_to_diffusers", "copy_files", "is_official_ltx2", "plan_conversion"]

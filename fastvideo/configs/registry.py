"""The registry: from a model folder or repo id to pipeline, configs and model classes.

A Diffusers-style folder is described by ``model_index.json``: its ``_class_name``
names the pipeline, and each component entry ``[library, class]`` names the class
that made the component's weights.  This module maps those names onto our code.

Adding a model family means adding entries here (pipeline classes, component
classes, known repo ids) -- nothing else in the generic code changes.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastvideo.configs.pipelines.base import PipelineConfig
from fastvideo.configs.pipelines.wan import (
    ShapesT2VConfig,
    WanI2V480PConfig,
    WanI2V720PConfig,
    WanT2V480PConfig,
    WanT2V720PConfig,
)
from fastvideo.configs.sample.base import SamplingParam
from fastvideo.configs.sample.wan import (
    ShapesT2VSamplingParam,
    TinyT2VSamplingParam,
    WanI2V480PSamplingParam,
    WanI2V720PSamplingParam,
    WanT2V480PSamplingParam,
    WanT2V720PSamplingParam,
)
from fastvideo.errors import ModelNotFoundError

# Model folder resolution lives in fastvideo.hub; models_dir / local_candidates stay importable from here.
from fastvideo.hub.folders import from_hub_cache, local_candidates, looks_like_repo_id, models_dir  # noqa: F401
from fastvideo.hub.names import check_component_folder, check_index_entry, custom_code_error


@dataclass(frozen=True)
class ComponentClass:
    """Our implementation of a checkpoint class: ``module:Class`` strings (imported lazily)."""

    model: str
    arch_config: str | None = None
    kind: str = "module"  # module | tokenizer | image_processor | scheduler


# Checkpoint class name (model_index.json / config.json) -> our implementation.
COMPONENT_CLASSES: dict[str, ComponentClass] = {
    "WanTransformer3DModel": ComponentClass(
        "fastvideo.models.dits.wan:WanTransformer3DModel", "fastvideo.configs.models.dits.wan:WanVideoConfig"
    ),
    "AutoencoderKLWan": ComponentClass(
        "fastvideo.models.vaes.wan:AutoencoderKLWan", "fastvideo.configs.models.vaes.wan:WanVAEConfig"
    ),
    "UMT5EncoderModel": ComponentClass(
        "fastvideo.models.encoders.t5:UMT5TextEncoder", "fastvideo.configs.models.encoders.t5:T5EncoderArchConfig"
    ),
    "CLIPVisionModelWithProjection": ComponentClass(
        "fastvideo.models.encoders.clip:CLIPVisionEncoder",
        "fastvideo.configs.models.encoders.clip:CLIPVisionArchConfig",
    ),
    "T5TokenizerFast": ComponentClass("transformers:AutoTokenizer", kind="tokenizer"),
    "T5Tokenizer": ComponentClass("transformers:AutoTokenizer", kind="tokenizer"),
    "AutoTokenizer": ComponentClass("transformers:AutoTokenizer", kind="tokenizer"),
    "CLIPImageProcessor": ComponentClass("transformers:CLIPImageProcessor", kind="image_processor"),
    "UniPCMultistepScheduler": ComponentClass("fastvideo.models.schedulers:SCHEDULERS", kind="scheduler"),
    "FlowMatchEulerDiscreteScheduler": ComponentClass("fastvideo.models.schedulers:SCHEDULERS", kind="scheduler"),
}


@dataclass(frozen=True)
class PipelineEntry:
    family: str
    tasks: tuple[str, ...]  # the first is the folder's own task
    pipeline_config_cls: type[PipelineConfig]
    sampling_param_cls: type[SamplingParam]
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    # ``module:DICT`` of task -> pipeline class (imported only when a pipeline is built).
    pipelines: str = "fastvideo.pipelines.basic.wan:PIPELINES_BY_TASK"


PIPELINES: dict[str, PipelineEntry] = {
    "WanPipeline": PipelineEntry(
        "wan", ("t2v", "v2v"), WanT2V480PConfig, WanT2V480PSamplingParam,
        ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"),
    ),
    "WanVideoToVideoPipeline": PipelineEntry(
        "wan", ("v2v", "t2v"), WanT2V480PConfig, WanT2V480PSamplingParam,
        ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"),
    ),
    "WanImageToVideoPipeline": PipelineEntry(
        "wan", ("i2v",), WanI2V480PConfig, WanI2V480PSamplingParam,
        ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"),
        ("image_encoder", "image_processor"),
    ),
}

# Presets of known hub repos where the folder alone does not tell (resolution, shift).
KNOWN_REPOS: dict[str, tuple[type[PipelineConfig], type[SamplingParam]]] = {
    "Wan-AI/Wan2.1-T2V-1.3B-Diffusers": (WanT2V480PConfig, WanT2V480PSamplingParam),
    "Wan-AI/Wan2.1-T2V-14B-Diffusers": (WanT2V720PConfig, WanT2V720PSamplingParam),
    "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers": (WanI2V480PConfig, WanI2V480PSamplingParam),
    "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers": (WanI2V720PConfig, WanI2V720PSamplingParam),
    # The built-in model (resources/models/fastvideo-shapes-t2v; matched by folder name).
    "FastVideo/fastvideo-shapes-t2v": (ShapesT2VConfig, ShapesT2VSamplingParam),
    # The tiny random-weight fallback made on first use when no trained model ships (fastvideo/builtin.py).
    "FastVideo/tiny-wan-t2v": (WanT2V480PConfig, TinyT2VSamplingParam),
}


@dataclass
class ModelInfo:
    """What the registry knows about one resolved model folder."""

    path: Path
    pipeline_name: str
    family: str
    tasks: tuple[str, ...]
    components: dict[str, tuple[str, str]]  # name -> (library, class)
    pipeline_config_cls: type[PipelineConfig]
    sampling_param_cls: type[SamplingParam]
    repo_id: str | None = None
    model_index: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.tasks[0]

    def pipeline_class(self, task: str):
        if task not in self.tasks:
            raise ModelNotFoundError(f"{self.path}: this {self.pipeline_name} model does {', '.join(self.tasks)}, "
                                     f"not {task}")
        return import_string(PIPELINES[self.pipeline_name].pipelines)[task]

    def component_class(self, name: str) -> ComponentClass:
        if name not in self.components:
            raise ModelNotFoundError(
                f"{self.path}: model_index.json has no component {name!r}; it has {sorted(self.components)}"
            )
        _, cls_name = self.components[name]
        if not isinstance(cls_name, str) or cls_name not in COMPONENT_CLASSES:
            raise ModelNotFoundError(
                f"{self.path}: component {name!r} has class {cls_name!r}, which fastvideo does not implement; "
                f"known classes: {', '.join(sorted(COMPONENT_CLASSES))}"
            )
        return COMPONENT_CLASSES[cls_name]


# Modules import_string may import from: the strings come from this file's tables, never from a
# model folder (a folder's class names are looked up in COMPONENT_CLASSES / PIPELINES first).
_IMPORTABLE = ("fastvideo.", "transformers")


def import_string(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    if not (module.startswith(_IMPORTABLE) and attr.isidentifier()):
        raise ValueError(f"import_string({spec!r}): only registry entries of fastvideo/transformers are imported")
    return getattr(importlib.import_module(module), attr)


def resolve_model(path_or_id: str | os.PathLike, *, download: bool = False) -> ModelInfo:
    """Resolve a local folder or a repo id to a :class:`ModelInfo`.

    Repo ids are looked up in the models folder and the Hugging Face cache; with
    ``download=True`` a missing repo is downloaded first.
    """
    name = str(path_or_id)
    repo_id = None
    folder = next((p for p in local_candidates(name) if (p / "model_index.json").is_file()), None)
    if folder is None:
        given = Path(name).expanduser()
        if given.is_dir():
            if (given / "config.json").is_file() and not (given / "model_index.json").exists():
                raise ModelNotFoundError(
                    f"{given}: this looks like an official (non-Diffusers) checkpoint; convert it first: "
                    f"fastvideo convert {given} OUTPUT"
                )
            raise ModelNotFoundError(f"{given}: no model_index.json in this folder (is it a Diffusers-layout model?)")
        if looks_like_repo_id(name):
            repo_id = name
            folder = from_hub_cache(name, download=download)
        if folder is None:
            known = ", ".join(sorted(KNOWN_REPOS))
            if repo_id and repo_id in KNOWN_REPOS:
                raise ModelNotFoundError(
                    f"{name} is not downloaded; run: fastvideo download --repo-id {name} --local-dir DIR"
                )
            raise ModelNotFoundError(f"{name}: no such folder, and not a downloaded model. Known repos: {known}")
    return describe_folder(folder, repo_id=repo_id)


def describe_folder(folder: Path, repo_id: str | None = None) -> ModelInfo:
    index_path = folder / "model_index.json"
    try:
        index = json.loads(index_path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelNotFoundError(f"{index_path}: not valid JSON ({exc})") from None
    if not isinstance(index, dict):
        raise ModelNotFoundError(f"{index_path}: expected a JSON object")
    pipeline_name = index.get("_class_name")
    if isinstance(pipeline_name, list):  # Diffusers' [module, Class]: a pipeline module from the folder
        raise custom_code_error(index_path, f"_class_name {pipeline_name!r} names a custom pipeline module")
    if not isinstance(pipeline_name, str) or pipeline_name not in PIPELINES:
        raise ModelNotFoundError(
            f"{index_path}: unknown pipeline _class_name {pipeline_name!r}; fastvideo knows "
            f"{', '.join(sorted(PIPELINES))}"
        )
    entry = PIPELINES[pipeline_name]
    components = {
        k: (v[0], v[1]) for k, v in index.items()
        if not k.startswith("_") and isinstance(v, list) and len(v) == 2 and v[1] is not None
    }
    # Component names become folder names: plain names only, checked before any path is touched.
    for comp, value in components.items():
        check_index_entry(comp, value, index_path)
    for comp in entry.required:
        if comp not in components:
            raise ModelNotFoundError(f"{index_path}: required component {comp!r} is not listed")
    for comp in components:
        sub = folder / comp
        if not sub.is_dir():
            raise ModelNotFoundError(f"{index_path}: lists component {comp!r} but folder {sub} is missing")
    for comp in components:  # no custom code, plain shard / tokenizer file names (small JSON files only)
        check_component_folder(folder / comp)
    cfg_cls, sp_cls = entry.pipeline_config_cls, entry.sampling_param_cls
    key = repo_id or _repo_id_from_name(folder)
    if key in KNOWN_REPOS:
        cfg_cls, sp_cls = KNOWN_REPOS[key]
    return ModelInfo(folder, pipeline_name, entry.family, entry.tasks, components, cfg_cls, sp_cls, repo_id, index)


def _repo_id_from_name(folder: Path) -> str | None:
    name = folder.name
    for rid in KNOWN_REPOS:
        if rid.split("/")[-1] == name:
            return rid
    return None

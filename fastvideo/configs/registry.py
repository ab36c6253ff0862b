"""The registry: from a model folder or repo id to pipeline, configs and model classes.

A Diffusers-style folder is described by ``model_index.json``: its ``_class_name``
names the pipeline, and each component entry ``[library, class]`` names the class
that made the component's weights.  This module maps those names onto our code.

Families register themselves: each ``fastvideo/configs/families/<family>.py`` calls
:func:`register_family` with its pipelines, component classes, known repo ids and its
latent geometry; this module knows no family.  Adding a family is one such file and
one line in ``fastvideo/configs/families/__init__.py`` (docs/porting.md).
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastvideo.configs.geometry import LatentGeometry
from fastvideo.configs.pipelines.base import PipelineConfig
from fastvideo.configs.sample.base import SamplingParam
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


@dataclass(frozen=True)
class PipelineEntry:
    """One kind of model folder: a ``model_index.json`` ``_class_name`` (plus ``match``) -> how we run it."""

    family: str
    tasks: tuple[str, ...]  # the first is the folder's own task
    pipeline_config_cls: type[PipelineConfig]
    sampling_param_cls: type[SamplingParam]
    required: tuple[str, ...]
    # ``module:DICT`` of task -> pipeline class (imported only when a pipeline is built).
    pipelines: str
    optional: tuple[str, ...] = ()
    # ``match(index) -> bool`` on the parsed model_index.json: entries of one class name are tried in
    # registration order and the first that matches (or has no ``match``) describes the folder.
    match: Callable[[dict[str, Any]], bool] | None = None
    # The denoiser components, in the order the sampler hands them the noise levels (high noise first).
    experts: tuple[str, ...] = ("transformer",)


@dataclass(frozen=True)
class Family:
    """What a model family registers (``fastvideo/configs/families/<family>.py``; see docs/porting.md).

    ``latent_geometry(folder) -> LatentGeometry`` reads the folder's own configs (torch-free);
    ``pipelines`` maps ``model_index.json`` class names to entries; ``component_classes`` checkpoint class
    names to our implementations; ``known_repos`` hub repo ids to presets the folder alone cannot tell
    (``(PipelineConfig subclass, SamplingParam subclass)``)."""

    name: str
    latent_geometry: Callable[[Path], LatentGeometry]
    pipelines: dict[str, tuple[PipelineEntry, ...]] = field(default_factory=dict)
    component_classes: dict[str, ComponentClass] = field(default_factory=dict)
    known_repos: dict[str, tuple[type[PipelineConfig], type[SamplingParam]]] = field(default_factory=dict)


FAMILIES: dict[str, Family] = {}
# Checkpoint class name (model_index.json / config.json) -> our implementation (every family's).
COMPONENT_CLASSES: dict[str, ComponentClass] = {}
# model_index.json _class_name -> the entries of every family that uses that name, in registration order.
PIPELINES: dict[str, tuple[PipelineEntry, ...]] = {}
# Presets of known hub repos where the folder alone does not tell (resolution, shift).
KNOWN_REPOS: dict[str, tuple[type[PipelineConfig], type[SamplingParam]]] = {}


def register_family(family: Family) -> None:
    """Add a family's pipelines, component classes and known repos to the tables.

    A component class another family already registered must be the same implementation (two families
    may share a checkpoint class, e.g. the T5 text encoder)."""
    if family.name in FAMILIES:
        raise ValueError(f"model family {family.name!r} is registered twice")
    for name, cc in family.component_classes.items():
        if COMPONENT_CLASSES.get(name, cc) != cc:
            raise ValueError(f"family {family.name!r}: component class {name!r} is already registered as "
                             f"{COMPONENT_CLASSES[name]}")
    FAMILIES[family.name] = family
    COMPONENT_CLASSES.update(family.component_classes)
    for name, entries in family.pipelines.items():
        # Entries with a ``match`` go before the catch-all ones of other families.
        merged = [*PIPELINES.get(name, ()), *entries]
        PIPELINES[name] = tuple(sorted(merged, key=lambda e: e.match is None))
    KNOWN_REPOS.update(family.known_repos)


def pipeline_entry(class_name: str, index: dict[str, Any]) -> PipelineEntry | None:
    """The registered entry describing a folder of this ``_class_name`` and ``model_index.json``."""
    for entry in PIPELINES.get(class_name, ()):
        if entry.match is None or entry.match(index):
            return entry
    return None


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
    entry: PipelineEntry | None = None

    @property
    def task(self) -> str:
        return self.tasks[0]

    @property
    def experts(self) -> tuple[str, ...]:
        """The denoiser components of this folder, high noise first (``transformer``, ``transformer_2``...)."""
        experts = self.entry.experts if self.entry is not None else ("transformer",)
        return tuple(e for e in experts if e in self.components)

    def geometry(self) -> LatentGeometry:
        """The latent geometry, read by the family from this folder's configs (torch-free)."""
        return FAMILIES[self.family].latent_geometry(self.path)

    def pipeline_class(self, task: str):
        if task not in self.tasks:
            raise ModelNotFoundError(f"{self.path}: this {self.pipeline_name} model does {', '.join(self.tasks)}, "
                                     f"not {task}")
        entry = self.entry or pipeline_entry(self.pipeline_name, self.model_index)
        return import_string(entry.pipelines)[task]

    def weight_components(self) -> list[str]:
        """The components that hold weights (classes of kind ``module``): the denoisers first, then the rest in
        ``model_index.json`` order."""
        out = []
        for name in [*self.experts, *(c for c in self.components if c not in self.experts)]:
            try:
                if self.component_class(name).kind == "module":
                    out.append(name)
            except ModelNotFoundError:
                continue  # a class fastvideo does not implement: nothing of ours to map it onto
        return out

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
    entry = pipeline_entry(pipeline_name, index) if isinstance(pipeline_name, str) else None
    if entry is None:
        raise ModelNotFoundError(
            f"{index_path}: unknown pipeline _class_name {pipeline_name!r}; fastvideo knows "
            f"{', '.join(sorted(PIPELINES))}"
        )
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
    return ModelInfo(folder, pipeline_name, entry.family, entry.tasks, components, cfg_cls, sp_cls, repo_id, index,
                     entry)


def _repo_id_from_name(folder: Path) -> str | None:
    name = folder.name
    for rid in KNOWN_REPOS:
        if rid.split("/")[-1] == name:
            return rid
    return None


# Every family registers itself on import (fastvideo/configs/families/__init__.py lists them).
import fastvideo.configs.families  # noqa: E402, F401

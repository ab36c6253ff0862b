"""Mapping reports for the inspector (CLI ``inspect-mapping`` and the studio).

Only headers are read: source keys from the checkpoint files, target keys and
shapes from a meta-device instance of the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastvideo.configs.registry import resolve_model
from fastvideo.mapping.rules import MappingReport, build_report
from fastvideo.models.loader.checkpoint import read_headers, weight_files
from fastvideo.models.loader.component_loader import build_empty, read_arch_config


def mapping_inputs(model_path: str, component: str):
    """(source infos, target infos, default rules) for a component of a model folder."""
    from fastvideo.models.loader.weights import target_infos

    info = resolve_model(model_path)
    cc = info.component_class(component)
    if cc.kind != "module":
        raise ValueError(f"component {component!r} has no weights to map (it is a {cc.kind})")
    folder = info.path / component
    arch_config = read_arch_config(folder, cc)
    module = build_empty(cc, arch_config)
    return read_headers(weight_files(folder)), target_infos(module), dict(arch_config.param_names_mapping)


def inspect_mapping(model_path: str, component: str, rules: dict[str, Any] | None = None) -> MappingReport:
    source, target, default_rules = mapping_inputs(model_path, component)
    return build_report(source, target, default_rules if rules is None else rules, component)


def load_rules_file(path: str | Path) -> dict[str, Any]:
    """Rules from a JSON file ({pattern: replacement | [target, index, count]}) or a Python dict literal.

    Any problem raises ``RulesFileError`` (a ValueError) with the file and line: see ``rules_file``.
    """
    from fastvideo.mapping.rules_file import load_rules_file as load

    return load(path)

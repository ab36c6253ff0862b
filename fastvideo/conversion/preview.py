"""What ``fastvideo convert`` will do, as mapping inputs for the weight-mapping inspector (headers only).

For an official Wan2.1 / Wan2.2 folder (see :mod:`fastvideo.conversion.wan`; an LTX-2 single file: its own
module) the inspector shows the official
checkpoint keys mapped through the converter's rules (``official_param_names_mapping`` and friends) onto
the Diffusers names the converter writes; the targets are our model's parameters under those names (each
model key inverted through the model's own ``param_names_mapping``; a fused parameter becomes its parts).
``build_report(source, target, rules)`` on these inputs is the check the converter does before it writes
anything.  Any other folder goes to :func:`fastvideo.models.loader.inspect.mapping_inputs` unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastvideo.conversion.official import describe_official
from fastvideo.mapping.rules import MappingReport, TargetInfo, build_report, compile_rules, invert_name, rules_list

#: the components of an official folder that the converter maps (the CLIP file is not converted;
#: transformer_2 only for Wan2.2 A14B's low_noise_model/)
OFFICIAL_COMPONENTS = ("transformer", "transformer_2", "vae", "text_encoder")


def is_official_folder(path: str | os.PathLike) -> bool:
    """An official checkpoint folder (Wan or LTX-2): see :func:`fastvideo.conversion.official.describe_official`."""
    return describe_official(path) is not None


def output_targets(targets: dict[str, TargetInfo], output_to_model: Any) -> dict[str, TargetInfo]:
    """Our parameters under the output (Diffusers) names the model's ``param_names_mapping`` reads."""
    rules = compile_rules(rules_list(output_to_model))

    def names(key: str) -> list[tuple[str, int, int]]:
        try:
            return invert_name(key, rules)
        except ValueError:
            return [(key, 0, 1)]

    out: dict[str, TargetInfo] = {}
    for key, info in targets.items():
        aliases = tuple(names(a)[0][0] for a in info.aliases)
        for name, _index, count in names(key):
            shape = tuple(info.shape)
            if count > 1 and shape and shape[0] % count == 0:
                shape = (shape[0] // count, *shape[1:])  # a fused parameter: its parts stack on dim 0
            out[name] = TargetInfo(shape, aliases if count == 1 else ())
    return out


def official_mapping_inputs(source: str | os.PathLike, component: str):
    """(official checkpoint headers, targets under the Diffusers names, the converter's rules in order)."""
    from fastvideo.conversion import wan
    from fastvideo.conversion.base import read_source_headers
    from fastvideo.conversion.wan_sizes import umt5_config_from_weights, vae_config_from_weights

    source = Path(source)
    experts = dict(wan.expert_folders(source))
    if component in experts:
        folder = experts[component]
        config_path = folder / "config.json"
        config = wan._read_json(config_path)
        model_type = wan.detect_model_type(config, config_path, None)
        headers = read_source_headers(wan.dit_files(folder))
        arch, targets = wan._model_targets("WanTransformer3DModel",
                                           wan.transformer_config(config, model_type, headers))
        rules = type(arch).official_param_names_mapping
    elif component == "vae":
        vae_file = source / (wan.VAE22_FILE if (source / wan.VAE22_FILE).is_file() else wan.VAE_FILE)
        headers = read_source_headers([vae_file])
        arch, targets = wan._model_targets("AutoencoderKLWan", vae_config_from_weights(headers, vae_file.name))
        rules = arch.official_mapping()
    elif component == "text_encoder":
        from fastvideo.configs.models.encoders.t5 import OFFICIAL_UMT5_MAPPING

        headers = read_source_headers([source / wan.T5_FILE])
        arch, targets = wan._model_targets("UMT5EncoderModel", umt5_config_from_weights(headers, wan.T5_FILE))
        rules = OFFICIAL_UMT5_MAPPING
    else:
        raise ValueError(f"{source}: an official folder converts {', '.join([*experts, 'vae', 'text_encoder'])}; "
                         f"{component!r} is not one of them")
    return headers, output_targets(targets, arch.param_names_mapping), rules_list(rules)


def mapping_inputs(model_path: str, component: str):
    """The inspector's inputs: an official folder's conversion preview, or a Diffusers folder's own mapping."""
    if is_official_folder(model_path):
        from fastvideo.conversion.ltx2 import is_official_ltx2
        from fastvideo.conversion.ltx2 import official_mapping_inputs as ltx2_inputs

        if is_official_ltx2(model_path):
            return ltx2_inputs(model_path, component)
        return official_mapping_inputs(model_path, component)
    from fastvideo.models.loader.inspect import mapping_inputs as diffusers_inputs

    return diffusers_inputs(model_path, component)


def inspect_mapping(model_path: str, component: str, rules: Any = None) -> MappingReport:
    source, target, default_rules = mapping_inputs(model_path, component)
    return build_report(source, target, default_rules if rules is None else rules, component)

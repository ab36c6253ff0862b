"""Loading a DiT straight into fp8 storage: each block Linear's weight quantised as it is read.

``weight_storage="fp8"`` keeps the 14B model's blocks at about 14 GB; loading the bf16 checkpoint whole first
would need its 28 GB of host RAM on top of the rest.  :func:`load_fp8_module` reads the checkpoint tensor by
tensor (``iter_tensors``), maps each name through the config's ``param_names_mapping`` (fused targets once all
their parts are read), quantises every weight of an ``nn.Linear`` under ``blocks.`` to e4m3 with per-channel
scales right away (:func:`fastvideo.layers.quant.quantize_fp8`), and materialises the module: the host peak is
the fp8 model plus one tensor (and the parts of one fused target).  The checks are those of every load: the
mapping report on the headers first, strict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from fastvideo.layers.quant import FP8Linear, quantize_fp8


def _fp8_layers(module: nn.Module, prefix: str = "blocks.") -> set[str]:
    """Swap each ``nn.Linear`` under ``prefix`` for a meta FP8Linear; returns their names."""
    names = set()
    for name, mod in list(module.named_modules()):
        for child_name, child in list(mod.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if type(child) is nn.Linear and full.startswith(prefix):
                with torch.device("meta"):
                    layer = FP8Linear(child.in_features, child.out_features, child.bias is not None)
                setattr(mod, child_name, layer)
                names.add(full)
    return names


def load_fp8_module(folder: Path, cc: Any, dtype: torch.dtype) -> nn.Module:
    """The component in ``folder`` (a DiT) with its block Linears in fp8, on the CPU."""
    from fastvideo.mapping.rules import build_report, compile_rules, map_name
    from fastvideo.models.loader.checkpoint import iter_tensors, read_headers, weight_files
    from fastvideo.models.loader.component_loader import build_empty, read_arch_config
    from fastvideo.models.loader.weights import WeightLoadError, materialize, target_infos

    arch = read_arch_config(folder, cc)
    module = build_empty(cc, arch)
    rules = compile_rules(arch.param_names_mapping)
    files = weight_files(folder)
    report = build_report(read_headers(files), target_infos(module), rules, str(folder))
    if not report.ok:
        raise WeightLoadError(f"{folder}: checkpoint does not fit the model\n{report.summary()}", report)
    fp8 = _fp8_layers(module)
    wanted = {r.source for r in report.rows if r.source and r.status in ("mapped", "merged")}
    state: dict[str, torch.Tensor] = {}
    parts: dict[str, dict[int, torch.Tensor]] = {}
    for name, tensor in iter_tensors(files, wanted):
        target, rule = map_name(name, rules)
        if rule is not None and rule.is_merge:
            got = parts.setdefault(target, {})
            got[rule.merge_index] = tensor
            if len(got) < rule.merge_count:
                continue
            tensor = torch.cat([got[i] for i in range(rule.merge_count)], dim=0)
            del parts[target]
        owner, _, attr = target.rpartition(".")
        if owner in fp8 and attr == "weight":
            w8, scale = quantize_fp8(tensor)
            state[f"{owner}.weight_fp8"] = w8.view(torch.uint8)  # not floating: materialize leaves it as is
            state[f"{owner}.weight_scale"] = scale
        else:
            state[target] = tensor
    keep = list(arch.keep_fp32_modules) + [r"\.weight_scale$"]
    materialize(module, state, dtype=dtype, keep_fp32=keep, device="cpu")
    for name in fp8:
        layer = module.get_submodule(name)
        layer.weight_fp8 = layer.weight_fp8.view(torch.float8_e4m3fn)
        layer.compute_dtype = dtype
    module.arch_config = arch
    module.eval()
    module.requires_grad_(False)
    return module

"""``load_component``: one ready component of a Diffusers-layout model folder.

Modules (DiT, VAE, encoders) are built on the meta device from their arch
config, checked against the checkpoint headers through the config's
``param_names_mapping`` (strict: any problem raises, listing the keys), then
materialised tensor by tensor.  Tokenizers, image processors and schedulers are
read from their config files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastvideo.configs.models.base import ArchConfig
from fastvideo.configs.registry import ComponentClass, import_string, resolve_model
from fastvideo.errors import ModelNotFoundError
from fastvideo.hub.names import check_component_folder, child
from fastvideo.models.loader.checkpoint import weight_files


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelNotFoundError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelNotFoundError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelNotFoundError(f"{path}: expected a JSON object")
    return data


def read_arch_config(folder: Path, cc: ComponentClass) -> ArchConfig:
    cfg_cls = import_string(cc.arch_config)
    return cfg_cls.from_dict(read_json(folder / "config.json"))


def build_empty(cc: ComponentClass, arch_config: ArchConfig):
    """The component's module with parameters on the meta device (no memory, no init)."""
    from fastvideo.models.loader.weights import empty_init

    model_cls = import_string(cc.model)
    with empty_init():
        if hasattr(model_cls, "from_arch_config"):
            return model_cls.from_arch_config(arch_config)
        return model_cls(arch_config)


def load_module(folder: Path, cc: ComponentClass, *, component: str, device="cpu", dtype=None, rules=None):
    """Build + check + load one module from a component folder. Returns (module, arch_config, report)."""
    from fastvideo.models.loader.weights import load_mapped_weights

    arch_config = read_arch_config(folder, cc)
    module = build_empty(cc, arch_config)
    mapping = arch_config.param_names_mapping if rules is None else rules
    keep_fp32 = arch_config.keep_fp32_modules
    only_for = getattr(arch_config, "keep_fp32_for_dtypes", None)  # e.g. UMT5 keeps wo in fp32 only for fp16
    if only_for is not None and (dtype is None or str(dtype).replace("torch.", "") not in only_for):
        keep_fp32 = []
    report, reverse = load_mapped_weights(
        module, weight_files(folder), mapping, component=f"{folder}", dtype=dtype, keep_fp32=keep_fp32, device=device,
    )
    arch_config.reverse_param_names_mapping = reverse
    module.arch_config = arch_config
    module.eval()
    module.requires_grad_(False)
    return module, arch_config, report


def load_component(model_path: str, component_name: str, device: Any = "cpu", dtype: Any = None):
    """Load ``transformer``, ``vae``, ``text_encoder``, ``tokenizer``, ``scheduler``,
    ``image_encoder`` or ``image_processor`` of a model folder (or downloaded repo id)."""
    info = resolve_model(model_path)
    cc = info.component_class(component_name)
    folder = child(info.path, component_name, "component", info.path / "model_index.json")
    # resolve_model already checked every component folder; checked again right before transformers
    # reads it (no custom code can run and transformers never asks on stdin).
    check_component_folder(folder)
    if cc.kind == "tokenizer":
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False, local_files_only=True)
    if cc.kind == "image_processor":
        return import_string(cc.model).from_pretrained(str(folder), trust_remote_code=False, local_files_only=True)
    if cc.kind == "scheduler":
        cfg = read_json(folder / "scheduler_config.json")
        schedulers = import_string(cc.model)
        cls_name = info.components[component_name][1]
        return schedulers[cls_name].from_config(cfg)
    module, _, _ = load_module(folder, cc, component=component_name, device=device, dtype=dtype)
    return module

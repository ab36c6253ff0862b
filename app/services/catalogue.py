"""What a local model folder holds: the one place the studio reads ``model_index.json``.

Torch-free (JSON only).  Every panel that needs a folder's layout or components asks
:func:`describe_local`; whether a Diffusers folder really loads is the registry's answer
(``fastvideo.configs.registry.describe_folder``), asked by the Models scan.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MODEL_INDEX = "model_index.json"
OFFICIAL_CONFIG = "config.json"


def describe_local(path: str | os.PathLike) -> dict[str, Any]:
    """A model folder as the studio sees it, without importing any model code.

    Returns ``{"path", "layout", "index", "components", "present", "config", "official", "error"}``:
    ``layout`` is ``"Diffusers"`` (a ``model_index.json``), ``"official"`` (an official checkpoint the engine
    converts: Wan's ``config.json`` folders, LTX-2's single file) or ``"unknown"``; ``components`` the index's
    component names (entries ``[library, class]``, in order), ``present`` those that have their folder;
    ``config`` an official Wan folder's ``config.json`` (``None`` without one); ``official`` the engine's
    torch-free description of an official folder (``fastvideo.conversion.preview.describe_official``:
    family, task and the components the conversion writes); ``error`` why a file could not be read.
    """
    folder = Path(path)
    info: dict[str, Any] = {"path": folder, "layout": "unknown", "index": {}, "components": [], "present": [],
                            "config": None, "official": None, "error": ""}
    index_path = folder / MODEL_INDEX
    if index_path.is_file():
        info["layout"] = "Diffusers"
        try:
            index = json.loads(index_path.read_text())
        except (OSError, ValueError) as exc:
            info["error"] = f"{MODEL_INDEX}: {exc}"
            return info
        if isinstance(index, dict):
            info["index"] = index
            # ([None, None] entries, e.g. transformer_2 of a one-expert Wan folder, name no component)
            info["components"] = [k for k, v in index.items() if not k.startswith("_") and isinstance(v, list)
                                  and any(x is not None for x in v)]
            info["present"] = [c for c in info["components"] if (folder / c).is_dir()]
        return info
    config_path = folder / OFFICIAL_CONFIG
    if not config_path.is_file() and (folder / "high_noise_model" / OFFICIAL_CONFIG).is_file():
        config_path = folder / "high_noise_model" / OFFICIAL_CONFIG  # Wan2.2 A14B: one config per expert folder
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text())
        except (OSError, ValueError) as exc:
            config = {}
            info["error"] = f"{OFFICIAL_CONFIG}: {exc}"
        info["config"] = config if isinstance(config, dict) else {}
    from fastvideo.conversion.official import describe_official  # no model code: JSON and safetensors headers

    info["official"] = describe_official(folder)
    if info["official"] is not None:
        info["layout"] = "official"
    return info


def has_model_index(path: str | os.PathLike) -> bool:
    """A Diffusers-layout folder (it has ``model_index.json``), without reading it."""
    return (Path(path) / MODEL_INDEX).is_file()


#: parts of a model folder that hold no weights (used only when the registry cannot read the folder)
NON_WEIGHT_COMPONENTS = ("tokenizer", "tokenizer_2", "scheduler", "image_processor", "feature_extractor")


def weight_components(path: str | os.PathLike) -> list[str]:
    """The components of a Diffusers folder that hold weights, in ``model_index.json`` order: the registry's
    answer (``ModelInfo.weight_components``: the family's component classes, torch-free), so a new family's
    components (LTX-2's ``audio_vae``, ``vocoder``, ``connectors``) need no list here.  A folder the
    registry cannot read falls back to its listed components minus tokenizers, schedulers and processors
    (the engine then says what is wrong with the one chosen)."""
    from fastvideo.configs.registry import describe_folder

    try:
        return describe_folder(Path(path)).weight_components()
    except Exception:  # noqa: BLE001 - an unreadable folder: fall back to its file listing
        return [c for c in describe_local(path)["components"] if c not in NON_WEIGHT_COMPONENTS]

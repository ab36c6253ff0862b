"""What a model folder may name, and what it may not ask for.

A model folder is data, never code and never a map of the disk:

* Every name a model folder uses to reach another file -- the component keys of
  ``model_index.json``, the shard names in a ``*.safetensors.index.json``
  ``weight_map``, the file names in a ``tokenizer_config.json`` -- must be a *plain
  name*: one path segment of letters, digits, ``_``, ``-`` and ``.``, not ``.`` or
  ``..`` (so no ``/``, ``\\``, drive letter, NUL or absolute path).  :func:`safe_name`
  is the one check; it looks at the name only, so symlinks inside a folder (the
  Hugging Face cache links every file to a blob elsewhere) keep working.
* A folder that asks to run its own Python (``auto_map`` in ``config.json``,
  ``tokenizer_config.json``, ``preprocessor_config.json`` ...; a ``model_index.json``
  entry whose library is not diffusers/transformers; a ``tokenizer_class`` that is not
  one we know) is refused with :class:`CustomCodeError` before transformers is called,
  so transformers never prompts "run the custom code? [y/N]" on stdin.

Pure Python (no torch, no transformers): the registry and the studio use it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastvideo.errors import ModelNotFoundError


class UnsafeModelFolderError(ModelNotFoundError):
    """A model folder names a file or folder outside itself (or by a name that is not plain)."""

    def __init__(self, message: str, name: Any = None, source: str | None = None):
        super().__init__(message)
        self.name = name
        self.source = source


class CustomCodeError(UnsafeModelFolderError):
    """A model folder that would need its own Python code to load; never run."""


_PLAIN = re.compile(r"[A-Za-z0-9_.\-]+")
_DRIVE = re.compile(r"^[A-Za-z]:")
_WINDOWS_DEVICES = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)),
                              *(f"LPT{i}" for i in range(10))})

# Libraries a model_index.json entry may name; anything else is a module file in the folder.
KNOWN_LIBRARIES = frozenset({"diffusers", "transformers", "fastvideo"})
# Diffusers pipeline sub-packages (``diffusers.pipelines.<name>``) that a registered family's folders name as a
# component's library: Diffusers writes e.g. ``["ltx2", "LTX2Vocoder"]`` for classes defined next to a pipeline.
# These are Diffusers' own modules, not code from the folder (and we never import them: class names are only
# looked up in the registry).  Families add theirs with :func:`allow_pipeline_module_library`.
PIPELINE_MODULE_LIBRARIES: set[str] = set()


def allow_pipeline_module_library(name: str) -> None:
    """Accept ``name`` (a Diffusers pipeline sub-package, a plain identifier) as a model_index.json library."""
    if not (isinstance(name, str) and name.isidentifier() and name.islower()):
        raise ValueError(f"not a Diffusers pipeline module name: {name!r}")
    PIPELINE_MODULE_LIBRARIES.add(name)

# Config files in which transformers reads ``auto_map`` (a class to import from the folder).
CODE_CONFIG_FILES = ("config.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json",
                     "video_preprocessor_config.json", "feature_extractor_config.json", "image_processor_config.json")

# ``tokenizer_class`` values a tokenizer_config.json may name (transformers resolves any other name
# by a lookup that ends in ``getattr(transformers, name)``).  Add to it when a family needs another.
TOKENIZER_CLASSES = frozenset({"T5Tokenizer", "T5TokenizerFast", "PreTrainedTokenizerFast", "TokenizersBackend",
                               "GemmaTokenizer", "GemmaTokenizerFast"})

WEIGHT_INDEX_GLOBS = ("*.safetensors.index.json", "*.bin.index.json")

_FIX = ("names in a model folder must be plain names (one path segment of letters, digits, '_', '-', '.'; "
        "not '.' or '..'); fix or remove this entry, or download/convert the model again from a trusted source")


def name_problem(name: Any) -> str | None:
    """Why ``name`` is not a plain single-segment name, or None when it is."""
    if not isinstance(name, str):
        return f"is a {type(name).__name__}, not a name"
    if not name:
        return "is empty"
    if "\x00" in name:
        return "contains a NUL byte"
    if name.startswith(("/", "\\")):
        return "is an absolute path"
    if _DRIVE.match(name):
        return "starts with a drive letter (an absolute Windows path)"
    if "/" in name or "\\" in name:
        return "is a path with several parts, not a plain name"
    if name in (".", ".."):
        return "names the folder itself or its parent" if name == "." else "leads outside the folder ('..')"
    if not _PLAIN.fullmatch(name):
        return "contains characters other than letters, digits, '_', '-' and '.'"
    if name.split(".")[0].upper() in _WINDOWS_DEVICES:
        return "is a reserved device name on Windows"
    return None


def safe_name(name: Any, what: str, source: str | os.PathLike) -> str:
    """Return ``name`` if it is a plain name; else raise :class:`UnsafeModelFolderError`.

    ``what`` says what the name is for ("component", "shard file" ...); ``source`` is the
    file it was read from, named in the message.
    """
    problem = name_problem(name)
    if problem:
        raise UnsafeModelFolderError(f"{source}: {what} {name!r} {problem}; refused before loading anything. "
                                     f"{_FIX[0].upper()}{_FIX[1:]}.", name=name, source=str(source))
    return name


def child(folder: str | os.PathLike, name: Any, what: str, source: str | os.PathLike) -> Path:
    """``folder / name`` after :func:`safe_name`."""
    return Path(folder) / safe_name(name, what, source)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelNotFoundError(f"{path}: not valid JSON ({exc})") from None


def custom_code_error(source: str | os.PathLike, why: str) -> CustomCodeError:
    return CustomCodeError(
        f"{source}: this model needs custom code ({why}); running code from a model folder is not supported. "
        "fastvideo loads only the classes it implements; use a model in the Diffusers layout with standard "
        "classes (or convert the original checkpoint with `fastvideo convert`)", source=str(source))


def check_index_entry(name: str, entry: Any, source: str | os.PathLike) -> None:
    """A ``model_index.json`` component entry ``[library, class]``: the name is plain and the library
    is one we know (diffusers would import any other library as a module file from the folder)."""
    safe_name(name, "component", source)
    library, cls_name = entry
    if library is not None and library not in KNOWN_LIBRARIES and library not in PIPELINE_MODULE_LIBRARIES:
        known = sorted(KNOWN_LIBRARIES | PIPELINE_MODULE_LIBRARIES)
        raise custom_code_error(source, f"component {name!r} comes from library {library!r}, a Python module "
                                f"of the model folder, not one of {', '.join(known)}")
    if not isinstance(cls_name, str):
        raise UnsafeModelFolderError(f"{source}: component {name!r} has class {cls_name!r}, not a class name; "
                                     "expected [library, ClassName]", name=name, source=str(source))


def shard_names(index: str | os.PathLike) -> list[str]:
    """The shard files of a ``*.safetensors.index.json`` (``weight_map`` values, in order, once each);
    each must be a plain file name in the index's own folder."""
    index = Path(index)
    data = _read_json(index)
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict):
        raise ModelNotFoundError(f"{index}: not a valid shard index (no 'weight_map' object)")
    return [safe_name(shard, "shard file", index) for shard in dict.fromkeys(weight_map.values())]


def check_no_custom_code(folder: str | os.PathLike) -> None:
    """Refuse a component folder whose config files carry ``auto_map`` (code to import from the folder)."""
    folder = Path(folder)
    for fname in CODE_CONFIG_FILES:
        path = folder / fname
        if not path.is_file():
            continue
        data = _read_json(path)
        if isinstance(data, dict) and data.get("auto_map"):
            auto_map = data["auto_map"]
            what = ", ".join(f"{k} -> {v}" for k, v in auto_map.items()) if isinstance(auto_map, dict) else auto_map
            raise custom_code_error(path, f"auto_map in {fname}: {what}")


def check_tokenizer_files(folder: str | os.PathLike, classes: Iterable[str] = TOKENIZER_CLASSES) -> None:
    """``tokenizer_config.json``: the tokenizer class is one we know and every file it names is plain."""
    path = Path(folder) / "tokenizer_config.json"
    if not path.is_file():
        return
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ModelNotFoundError(f"{path}: expected a JSON object")
    cls_name = data.get("tokenizer_class")
    allowed = frozenset(classes)
    if cls_name is not None and cls_name not in allowed:
        raise UnsafeModelFolderError(
            f"{path}: tokenizer_class {cls_name!r} is not a tokenizer class fastvideo loads (it loads "
            f"{', '.join(sorted(allowed))}); a class named by a model folder is looked up only in that list "
            "(fastvideo/hub/names.py TOKENIZER_CLASSES)", name=cls_name, source=str(path))
    for key, value in data.items():
        if key.endswith("_file") and value is not None:
            safe_name(value, f"{key}", path)
    files = data.get("fast_tokenizer_files")
    if files is not None:
        for value in files if isinstance(files, list) else [files]:
            safe_name(value, "fast_tokenizer_files entry", path)


def check_component_folder(folder: str | os.PathLike, tokenizer_classes: Iterable[str] = TOKENIZER_CLASSES) -> None:
    """Every check on one component folder, reading only small JSON files: no custom code, plain
    shard names in weight maps, plain tokenizer file names.  Raises before any weights are read."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    check_no_custom_code(folder)
    for pattern in WEIGHT_INDEX_GLOBS:
        for index in sorted(folder.glob(pattern)):
            shard_names(index)
    check_tokenizer_files(folder, tokenizer_classes)

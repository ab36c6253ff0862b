"""Architecture configs: the data that describes one model component.

An arch config says three things about a component:

* its hyper-parameters (read from the checkpoint's ``config.json``),
* how checkpoint names map onto our module names (``param_names_mapping``), and
* which parts the reference keeps in fp32 when the rest runs in bf16/fp16.

``param_names_mapping`` is an *ordered* dict ``{regex: replacement}``.  For every
source name the first regex that matches (``re.match``) wins; its replacement is
applied with ``re.sub`` semantics (``\\1`` back-references).  A name that no rule
matches passes through unchanged.  A replacement may also be a tuple
``(target, index, count)``: the source tensor becomes part ``index`` of ``count``
parts that are concatenated along dim 0 into one fused target (for example
separate q, k and v projections merged into one ``to_qkv``).

``reverse_param_names_mapping`` is filled while loading: target name ->
``(source name, index, count)`` so weights can be written back under the names
they came from.  ``lora_param_names_mapping`` maps LoRA adapter names the same
way as ``param_names_mapping`` maps base weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

MappingValue = str | tuple


@dataclass
class ArchConfig:
    """Base of every component arch config.

    Subclasses add hyper-parameter fields with defaults and override the
    mapping dicts with ``field(default_factory=...)``.
    """

    # Name of the class in the checkpoint's config.json (``_class_name``).
    checkpoint_class_names: ClassVar[tuple[str, ...]] = ()

    param_names_mapping: dict[str, MappingValue] = field(default_factory=dict)
    reverse_param_names_mapping: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    lora_param_names_mapping: dict[str, MappingValue] = field(default_factory=dict)
    # Regexes (re.search) of parameter names kept in fp32 when loading in lower precision.
    keep_fp32_modules: list[str] = field(default_factory=list)
    # config.json entries this config has no field for (kept so a save round-trips).
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    # config.json keys that are not hyper-parameters and are ignored when reading.
    _ignored_keys: ClassVar[frozenset[str]] = frozenset(
        {"_class_name", "_diffusers_version", "_name_or_path", "_use_default_values", "architectures",
         "transformers_version"}
    )

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, strict: bool = False) -> ArchConfig:
        """Build from a ``config.json`` dict.

        Keys the config does not know are kept in ``extra`` (strict=False) or
        rejected with an error naming them (strict=True).
        """
        known = cls.field_names()
        kwargs: dict[str, Any] = {}
        unknown: list[str] = []
        for key, value in data.items():
            if key in cls._ignored_keys or key.startswith("_"):
                continue
            if key in known and not key.endswith("mapping") and key != "extra":
                kwargs[key] = value
            else:
                unknown.append(key)
        if strict and unknown:
            raise ValueError(f"{cls.__name__}: unknown config keys {sorted(unknown)}")
        cfg = cls(**kwargs)
        cfg.extra = {k: data[k] for k in unknown}
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """Hyper-parameters only (no mappings), as written to config.json."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name.endswith("mapping") or f.name in ("keep_fp32_modules", "extra"):
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


"""Arch config of LTX-2's text encoder: the text part of Gemma 3 (``Gemma3ForConditionalGeneration``).

LTX-2 reads the hidden states of *every* Gemma layer (embeddings included) of a prompt, so only the
language model is needed; the vision tower, the multimodal projector and the LM head of the
released folder are not loaded (ignore rules).  As for UMT5 (Wan), our module *is* the transformers
class (``Gemma3TextModel``, subclassed): transformers' Gemma 3 is the reference implementation, the
engine only adds loading through the mapping.  ``config.json`` is the composite ``Gemma3Config``;
``text_config`` builds the model, the rest is kept in ``extra`` so a save round-trips.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from fastvideo.configs.models.base import ArchConfig, MappingValue


def _gemma3_mapping() -> dict[str, MappingValue]:
    return {
        r"^model\.language_model\.": "",  # transformers >= 4.52 layout
        r"^language_model\.model\.": "",  # the layout of Google's released files
        r"^(?:model\.)?vision_tower\.": None,
        r"^(?:model\.)?multi_modal_projector\.": None,
        r"^(?:language_model\.)?lm_head\.": None,
    }


@dataclass
class Gemma3TextEncoderConfig(ArchConfig):
    checkpoint_class_names: ClassVar[tuple[str, ...]] = ("Gemma3ForConditionalGeneration",)

    text_config: dict[str, Any] = field(default_factory=dict)
    vision_config: dict[str, Any] | None = None

    param_names_mapping: dict[str, MappingValue] = field(default_factory=_gemma3_mapping)

    def __post_init__(self) -> None:
        if not isinstance(self.text_config, dict):
            raise ValueError("Gemma3TextEncoderConfig: config.json needs a text_config object (a Gemma3Config)")

    def hf_text_config(self) -> dict[str, Any]:
        return {k: v for k, v in self.text_config.items() if not k.startswith("_")}

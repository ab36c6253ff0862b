"""Prompt cleaning, as Diffusers' Wan pipelines do before tokenizing.

``prompt_clean(text)`` = fix mojibake with ``ftfy`` (when installed), unescape
HTML entities twice, strip, then collapse every run of whitespace to one space.
"""

from __future__ import annotations

import html
import re

try:  # optional, as in the reference
    import ftfy
except ImportError:  # pragma: no cover - depends on the environment
    ftfy = None

_WHITESPACE = re.compile(r"\s+")


def basic_clean(text: str) -> str:
    if ftfy is not None:
        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text))
    return text.strip()


def whitespace_clean(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def prompt_clean(text: str) -> str:
    return whitespace_clean(basic_clean(text))

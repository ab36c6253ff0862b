"""What the tiny-model writers share: a folder written next to its final place and renamed there whole, and the
tiny tokenizer every family's text encoder is sized from."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

LAYOUTS = ("diffusers", "official")


def write_tiny_folder(out_dir: str | os.PathLike, layout: str, overwrite: bool,
                      write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp)`` on a temporary folder beside ``out_dir`` and rename it to ``out_dir`` when it is complete
    (an existing non-empty ``out_dir`` only with ``overwrite``); on any error nothing is left behind."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'diffusers' or 'official', got {layout!r}")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty (pass overwrite=True / --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def tiny_tokenizer(folder: Path, seed: int) -> int:
    """Write the tiny T5-style tokenizer into ``folder``; returns its vocabulary size (as transformers reads it)."""
    from transformers import AutoTokenizer

    from fastvideo.testing.tokenizer import make_tiny_t5_tokenizer

    make_tiny_t5_tokenizer(folder, seed=seed)
    return len(AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False, local_files_only=True))

"""LoRAs for the studio, without Qt or torch: the files of the LoRA folder, the (path, strength) pairs a job
stores (``params["loras"]``, the engine's ``SamplingParam.loras``), and the short summary of the engine's
per-key LoRA reports that the history keeps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: files the engine reads as LoRAs (fastvideo.lora.merge.read_lora_file)
LORA_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
MAX_DEPTH = 3
MAX_FILES = 2000


def list_lora_files(folder: str | Path | None) -> list[Path]:
    """The LoRA files under ``folder`` (sub-folders too, up to :data:`MAX_DEPTH` deep), sorted by their path
    relative to it; [] for no folder or one that does not exist. Hidden files and folders are skipped."""
    if not folder:
        return []
    root = Path(folder).expanduser()
    if not root.is_dir():
        return []
    out: list[Path] = []

    def walk(d: Path, depth: int) -> None:
        try:
            entries = sorted(d.iterdir(), key=lambda p: p.name.lower())
        except OSError:
            return
        for p in entries:
            if p.name.startswith(".") or len(out) >= MAX_FILES:
                continue
            if p.is_dir() and depth < MAX_DEPTH:
                walk(p, depth + 1)
            elif p.is_file() and p.suffix.lower() in LORA_SUFFIXES:
                out.append(p)

    walk(root, 1)
    return sorted(out, key=lambda p: str(p.relative_to(root)).lower())


def lora_specs(value: Any) -> list[tuple[str, float]]:
    """A job's or an MP4's ``loras`` as (path, strength) pairs: pairs, ``PATH[:STRENGTH]`` strings or
    ``{"path", "strength"}`` dicts (what the engine accepts); a malformed entry is skipped."""
    from fastvideo.lora.formats import LoraError, normalize_loras  # torch-free

    out: list[tuple[str, float]] = []
    for item in value or ():
        try:
            out += normalize_loras([item])
        except LoraError:
            continue
    return out


def loras_param(loras: list[tuple[str, float]]) -> list[list[Any]]:
    """(path, strength) pairs as the JSON a job stores and sends: ``[[path, strength], ...]``."""
    return [[str(path), round(float(strength), 4)] for path, strength in loras]


def job_loras_text(params: dict) -> str:
    """A job's LoRAs in one line; a two-expert job's second-expert LoRAs marked as such ("" when none)."""
    first, second = loras_text(params.get("loras")), loras_text(params.get("loras_2"))
    if second:
        return "; ".join(x for x in (first and f"{first} (high noise)", f"{second} (low noise)") if x)
    return first


def loras_text(value: Any) -> str:
    """``style.safetensors × 0.8, speed.safetensors × 1`` ('' without LoRAs)."""
    return ", ".join(f"{Path(p).name} × {s:g}" for p, s in lora_specs(value))


def missing_lora(loras: list[tuple[str, float]]) -> str | None:
    """Why the LoRAs cannot be sent (a file that is not there), None when they can."""
    for path, _strength in loras:
        p = Path(path).expanduser()
        if not p.is_file():
            return f"LoRA file not found: {path}" + (" (it is a folder)" if p.is_dir() else "")
    return None


def summarize_reports(result: dict[str, Any]) -> dict[str, Any]:
    """A job result with its ``loras`` reports cut to what the history shows (path, format, strength, counts, expert,
    ok): the per-key rows of a large LoRA would make every history entry hundreds of kB."""
    reports = result.get("loras")
    if not isinstance(reports, list):
        return result
    short = [{k: r.get(k) for k in ("path", "format", "strength", "strict", "ok", "counts", "component")}
             for r in reports if isinstance(r, dict)]
    return {**result, "loras": short}

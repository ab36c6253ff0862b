"""Generic parts of checkpoint conversion: plan on headers, then stream tensors.

A conversion has two phases:

1. **Plan** (headers only, nothing written): read the source headers, rename
   every key with the family's rules through the mapping engine, and check the
   renamed keys against the target model (built on the meta device).  Any
   problem -- unreadable file, key no rule maps, missing or wrongly shaped
   tensor -- raises :class:`ConversionError` listing the problems.
2. **Write**: tensors are read one at a time (``iter_tensors``) and written with
   :class:`SafetensorsWriter` (header known up front), so at most one tensor is
   in memory.  Everything goes into a temporary folder next to the output, which
   is renamed into place only when complete; on any error it is deleted.  The
   source is only ever read.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastvideo.mapping.rules import (
    MappingReport,
    TargetInfo,
    TensorInfo,
    build_report,
    compile_rules,
    map_name,
)
from fastvideo.models.loader.checkpoint import (
    SAFETENSORS_DTYPES,
    CheckpointError,
    SafetensorsWriter,
    iter_tensors,
    read_headers,
)
from fastvideo.utils.staging import STAGING_MARKER, clean_stale_staging, staging_folder  # noqa: F401 - re-exported

ProgressFn = Callable[[dict[str, Any]], None]
# Diffusers' default ``max_shard_size`` ("10GB").
DEFAULT_MAX_SHARD_BYTES = 10 * 10**9


class ConversionError(ValueError):
    """A conversion that cannot be done; the message names the file and the problem."""


@dataclass
class TensorPlan:
    """One output weights file set (possibly sharded) and where each tensor comes from."""

    component: str  # output sub-folder, e.g. "transformer"
    stem: str  # "diffusion_pytorch_model" or "model"
    source_files: list[Path]
    # output name -> (source name, info); insertion order = write order
    tensors: dict[str, tuple[str, TensorInfo]] = field(default_factory=dict)
    report: MappingReport | None = None

    @property
    def total_bytes(self) -> int:
        return sum(_nbytes(info) for _, info in self.tensors.values())


def _nbytes(info: TensorInfo) -> int:
    n = SAFETENSORS_DTYPES[info.dtype]
    for d in info.shape:
        n *= d
    return n


def read_source_headers(files: list[Path]) -> dict[str, TensorInfo]:
    """Headers of the source files; unreadable / truncated files raise ConversionError naming the file."""
    try:
        return read_headers(files)
    except CheckpointError as exc:
        raise ConversionError(str(exc)) from None


def plan_component(
    component: str,
    stem: str,
    source_files: list[Path],
    source_infos: dict[str, TensorInfo],
    to_output: dict[str, Any],
    output_to_model: dict[str, Any],
    model_targets: dict[str, TargetInfo],
) -> TensorPlan:
    """Rename source keys to output (e.g. Diffusers) names and check them against the model.

    ``to_output``: rules source name -> output name (plain renames only; the
    output format stores tensors as they are).  ``output_to_model``: the model's
    own ``param_names_mapping`` (output name -> module name, may fuse), used only
    to check that the output names load into the model with the right shapes.
    """
    rules = compile_rules(to_output)
    plan = TensorPlan(component, stem, list(source_files))
    problems: list[str] = []
    output_infos: dict[str, TensorInfo] = {}
    for name, info in source_infos.items():
        out, rule = map_name(name, rules)
        if rule is not None and rule.is_merge:
            problems.append(f"{name}: rule {rule.describe()} fuses tensors; conversion writes tensors one to one")
            continue
        if out in plan.tensors:
            problems.append(f"{name} and {plan.tensors[out][0]} both map to {out}")
            continue
        plan.tensors[out] = (name, info)
        output_infos[out] = info
    report = build_report(output_infos, model_targets, output_to_model, component)
    plan.report = report
    if not report.ok:
        back = {out: src for out, (src, _) in plan.tensors.items()}
        lines = []
        for row in report.rows:
            if row.status in ("mapped", "merged"):
                continue
            src = back.get(row.source or "", None)
            where = f"source key {src!r} (renamed {row.source!r})" if src else f"model key {row.target!r}"
            lines.append(f"  {row.status}: {where}"
                         + (f" checkpoint {row.source_shape} vs model {row.target_shape}"
                            if row.status == "shape_mismatch" else "")
                         + (f" -- {row.detail}" if row.detail else ""))
        problems.extend(lines)
    if problems:
        shown = problems[:20]
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        files = ", ".join(str(p) for p in source_files)
        raise ConversionError(
            f"{component}: the checkpoint does not convert cleanly ({files}); nothing was written. "
            f"{len(problems)} problem(s):\n" + "\n".join(s if s.startswith("  ") else "  " + s for s in shown) + more
        )
    return plan


def shard_names(plan: TensorPlan, max_shard_bytes: int) -> list[list[str]]:
    """Split output names into shards of at most ``max_shard_bytes`` (a bigger tensor gets its own)."""
    shards: list[list[str]] = [[]]
    size = 0
    for out, (_, info) in plan.tensors.items():
        n = _nbytes(info)
        if shards[-1] and size + n > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(out)
        size += n
    return shards


def write_plan(
    plan: TensorPlan,
    root: Path,
    *,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    metadata: dict[str, str] | None = None,
    on_file: Callable[[str, int], None] | None = None,
) -> list[Path]:
    """Stream the plan's tensors from the source files into ``root/component/``.

    Returns the written files.  ``on_file(relative_path, bytes)`` is called after
    each file is complete.
    """
    folder = root / plan.component
    folder.mkdir(parents=True, exist_ok=True)
    shards = shard_names(plan, max_shard_bytes)
    if len(shards) == 1:
        names = [f"{plan.stem}.safetensors"]
    else:
        names = [f"{plan.stem}-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    writers: list[SafetensorsWriter] = []
    where: dict[str, int] = {}
    by_source: dict[str, str] = {}
    try:
        for i, (fname, shard) in enumerate(zip(names, shards)):
            infos = {out: plan.tensors[out][1] for out in shard}
            writers.append(SafetensorsWriter(folder / fname, infos, metadata or {"format": "pt"}))
            for out in shard:
                where[out] = i
                by_source[plan.tensors[out][0]] = out
        remaining = [len(s) for s in shards]
        written: list[Path] = []
        try:
            for src, tensor in iter_tensors(plan.source_files, set(by_source)):
                out = by_source[src]
                i = where[out]
                writers[i].write(out, tensor)
                del tensor
                remaining[i] -= 1
                if remaining[i] == 0:
                    writers[i].close()
                    written.append(writers[i].path)
                    if on_file:
                        on_file(f"{plan.component}/{names[i]}", writers[i].path.stat().st_size)
        except CheckpointError as exc:
            raise ConversionError(str(exc)) from None
        except (RuntimeError, OSError, EOFError) as exc:
            raise ConversionError(
                f"{plan.component}: reading {', '.join(map(str, plan.source_files))} failed ({exc})"
            ) from None
        if any(remaining):
            missing = [out for out, i in where.items() if remaining[i]]
            raise ConversionError(f"{plan.component}: tensors never read from the source, e.g. {missing[:3]}")
    except BaseException:
        for w in writers:
            if not w._f.closed:
                w.abort()
        raise
    if len(shards) > 1:
        index = {"metadata": {"total_size": plan.total_bytes},
                 "weight_map": {out: names[where[out]] for out in sorted(where)}}
        idx = folder / f"{plan.stem}.safetensors.index.json"
        write_json(idx, index)
        written.append(idx)
        if on_file:
            on_file(f"{plan.component}/{idx.name}", idx.stat().st_size)
    return written


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def copy_files(src_folder: Path, dst_folder: Path, on_file: Callable[[str, int], None] | None = None,
               label: str | None = None) -> list[Path]:
    """Copy the plain files of a folder (recursively), reporting each."""
    out = []
    for p in sorted(src_folder.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(src_folder)
        dst = dst_folder / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dst)
        out.append(dst)
        if on_file:
            on_file(f"{label or dst_folder.name}/{rel.as_posix()}", dst.stat().st_size)
    return out


MODEL_MARKER = "model_index.json"  # a model folder (every output of ours has one: it is written last)


def check_output(source: Path, output: Path, overwrite: bool) -> None:
    """Refuse an output that would touch the source, or an existing one that may not be replaced.

    Without ``overwrite`` only a missing or empty folder is used.  With it, an existing folder is
    replaced only if it is a model folder (has ``model_index.json``, as every output of ours has);
    any other non-empty folder is refused and left untouched.
    """
    src, out = source.resolve(), output.resolve()
    if out == src or src in out.parents or out in src.parents:
        raise ConversionError(f"{output}: the output must not be the source folder, inside it, or contain it")
    if out.exists():
        if not out.is_dir():
            raise ConversionError(f"{output}: exists and is not a folder")
        entries = sorted(p.name for p in out.iterdir())
        if not entries:
            return
        if not overwrite:
            raise ConversionError(
                f"{output}: exists and is not empty (pass --overwrite / overwrite=True to replace it)"
            )
        if not (out / MODEL_MARKER).is_file():
            shown = ", ".join(entries[:5]) + (f", ... ({len(entries)} entries)" if len(entries) > 5 else "")
            raise ConversionError(
                f"{output}: refusing to overwrite: it is not a model folder (no {MODEL_MARKER}) and not empty "
                f"(contains {shown}); --overwrite only replaces an empty folder or a model folder. "
                f"Nothing was changed: choose another output folder, or empty this one yourself"
            )


class Progress:
    """Counts output files and forwards ``{file, done, total, bytes}`` events."""

    def __init__(self, total: int, callback: ProgressFn | None):
        self.total = total
        self.done = 0
        self.callback = callback
        self.bytes = 0

    def __call__(self, file: str, nbytes: int) -> None:
        self.done += 1
        self.bytes += nbytes
        if self.callback is not None:
            self.callback({"file": file, "done": self.done, "total": max(self.total, self.done), "bytes": nbytes})

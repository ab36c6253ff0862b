"""Planning a LoRA without touching a model: every key parsed, mapped through the rule chain onto our
parameters (with the row slice of a fused one), checked against the parameter shapes, and reported
(:class:`~fastvideo.lora.report.LoraReport`); the additions to make are returned as :class:`LoraOp`.

Torch-free: the tensors only need ``shape`` and ``ndim``, so the same code plans real tensors
(:func:`fastvideo.lora.merge.plan_lora`, which then merges) and a safetensors *header*
(:func:`read_lora_header`: the studio's weight-mapping inspector shows its report).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastvideo.lora.formats import (
    LORA_KINDS,
    LoraError,
    LoraFile,
    LoraFileNotFound,
    block_count,
    describe_size,
    detect_format,
    format_stages,
    map_through,
    other_architecture,
    peft_alpha,
    prod,
    split_key,
)
from fastvideo.lora.report import (
    APPLIED,
    INCOMPLETE,
    NOT_LORA,
    SHAPE_MISMATCH,
    UNMATCHED,
    UNSUPPORTED,
    LoraKeyRow,
    LoraReport,
)
from fastvideo.mapping.rules import near_misses
from fastvideo.mapping.safetensors_header import (
    CheckpointError,
    SafetensorsEntry,
    read_safetensors_header,
    read_small_values,
)


@dataclass(frozen=True)
class HeaderTensor:
    """A tensor known from a safetensors header: its shape and dtype, its data left in the file."""

    shape: tuple[int, ...]
    dtype: str
    entry: SafetensorsEntry | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)


def header_scalar(t: Any) -> float | None:
    """The first value of a header tensor (an ``alpha``), read from the file; None when it has none."""
    if isinstance(t, HeaderTensor) and t.entry is not None and prod(t.shape) >= 1:
        try:
            values = read_small_values(t.entry)
        except CheckpointError:
            return None
        return values[0] if values else None
    return None


def read_lora_header(path: str | os.PathLike) -> LoraFile:
    """A ``.safetensors`` LoRA's keys as :class:`HeaderTensor` (no tensor data read; ``alpha`` scalars on
    demand) and its metadata; :class:`LoraError` for a missing or unreadable file."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise LoraFileNotFound(f"LoRA file not found: {p}" + (" (it is a folder)" if p.is_dir() else ""))
    if p.suffix != ".safetensors":
        raise LoraError(f"{p}: only .safetensors LoRAs can be inspected without loading them "
                        "(a .pt/.pth/.bin LoRA is a pickle: convert it to safetensors)")
    try:
        entries, meta = read_safetensors_header(p)
    except CheckpointError as exc:
        raise LoraError(f"{p}: cannot read the LoRA file: {exc}") from None
    if not entries:
        raise LoraError(f"{p}: the file holds no tensors, not a LoRA")
    tensors = {k: HeaderTensor(tuple(e.info.shape), e.info.dtype, e) for k, e in entries.items()}
    return LoraFile(p, tensors, dict(meta))


@dataclass
class LoraOp:
    """One addition to one parameter (rows ``r0:r1`` of a fused parameter, or all of it)."""

    param: str
    rows: tuple[int, int] | None
    factor: float
    delta: Any = None  # a full-rank delta (diff, diff_b, lora_B.bias)
    down: Any = None  # lora A [rank, ...]
    up: Any = None  # lora B [out, rank, ...]


@dataclass
class LoraPlan:
    report: LoraReport
    ops: list[LoraOp]


def _slice(shape: tuple[int, ...], merge_index: int | None, merge_count: int | None):
    """(rows, shape of the slice) of a fused part; (None, shape) for a whole parameter."""
    if merge_count is None or merge_count == 1:
        return None, tuple(shape)
    n = shape[0]
    if n % merge_count:
        return "bad", tuple(shape)
    size = n // merge_count
    return (merge_index * size, (merge_index + 1) * size), (size,) + tuple(shape[1:])


def _target_text(name: str, rows) -> str:
    return f"{name}[{rows[0]}:{rows[1]}]" if isinstance(rows, tuple) else name


def plan_entries(lf: LoraFile, strength: float, params: dict[str, tuple[tuple[int, ...], Any]], arch_config: Any,
                 *, strict: bool = True, scalar: Callable[[Any], float | None] | None = None,
                 non_finite: Callable[[dict[str, Any]], list[str]] | None = None) -> LoraPlan:
    """Map and check one LoRA's tensors (``lf.tensors``: anything with ``shape`` / ``ndim``: real tensors or
    :class:`HeaderTensor`) against parameter shapes (``name -> (shape, dtype)``); no weight changes.

    ``scalar(t)`` gives an ``alpha`` tensor's value (default :func:`header_scalar`); ``non_finite(tensors)``
    the keys holding NaN/Inf (not checked when None: a header has no values).  Raises :class:`LoraError` for
    input that is not a usable LoRA (not a LoRA, another architecture or size, non-finite values) and, when
    ``strict``, for any key that cannot be applied."""
    scalar = scalar or header_scalar
    where = str(lf.path)
    rows: list[LoraKeyRow] = []
    groups: dict[str, dict[str, tuple[str, Any]]] = {}
    for key, tensor in lf.tensors.items():
        parsed = split_key(key)
        if parsed is None:
            rows.append(LoraKeyRow(key, "?", key, None, None, NOT_LORA, list(tensor.shape),
                                   detail="not a LoRA key (no lora_A/lora_B/lora_down/lora_up/alpha/diff suffix)"))
            continue
        module, kind = parsed
        groups.setdefault(module, {})[kind] = (key, tensor)
    if not any(kind in LORA_KINDS for g in groups.values() for kind in g):
        sample = ", ".join(list(lf.tensors)[:3])
        raise LoraError(f"{where}: not a LoRA: none of its {len(lf.tensors)} tensors is a lora_A / lora_B / "
                        f"lora_down / lora_up / diff / diff_b key (e.g. {sample}); a full checkpoint?")
    modules = list(groups)
    other = other_architecture(modules)
    if other is not None:
        raise LoraError(f"{where}: this LoRA does not fit the Wan DiT: it looks like {other} "
                        f"(e.g. {', '.join(modules[:3])})")
    bad = non_finite(lf.tensors) if non_finite is not None else []
    if bad:
        raise LoraError(f"{where}: non-finite values (NaN or Inf) in {len(bad)} tensor(s): {', '.join(bad[:8])}"
                        + (" ..." if len(bad) > 8 else ""))

    fmt = detect_format(modules)
    stages = format_stages(fmt, arch_config)
    peft_config = lf.peft_config() if fmt == "diffusers" else {}
    names = list(params)

    # Another size of the architecture? (hidden size from the self-attention in-features, block count)
    mapped_w = {m: map_through(m + ".weight", stages) for m in modules}
    lora_hidden = Counter(int(g["A"][1].shape[1]) for m, g in groups.items()
                          if "A" in g and g["A"][1].ndim >= 2 and ".self_attn." in mapped_w[m].target).most_common(1)
    lora_blocks = block_count([mw.target for mw in mapped_w.values()])
    model_blocks = block_count(names)
    model_hidden = getattr(arch_config, "hidden_size", None)
    hidden = lora_hidden[0][0] if lora_hidden else None
    if (hidden is not None and model_hidden is not None and hidden != model_hidden) or (
            lora_blocks is not None and model_blocks is not None and lora_blocks > model_blocks):
        raise LoraError(f"{where}: this LoRA is for another model size: {describe_size(hidden, lora_blocks)}; "
                        f"this model has {describe_size(model_hidden, model_blocks)}")

    ops: list[LoraOp] = []

    def suggestions(target: str) -> list[str]:
        return [n for n, score in near_misses(target, names, limit=3) if score >= 0.5]

    def place(module: str, suffix: str, want_weight_param: bool = False):
        """-> (Mapped, rows, slice shape) or (Mapped, None, None) when it maps onto no parameter."""
        candidates = [module + suffix] + ([module] if want_weight_param else [])
        first = None
        for cand in candidates:
            m = map_through(cand, stages)
            first = first or m
            if m.target in params:
                rows_, shape_ = _slice(params[m.target][0], m.merge_index, m.merge_count)
                return m, rows_, shape_
        return first, None, None

    for module, g in groups.items():
        a = g.get("A")
        b = g.get("B")
        alpha_t = g.get("alpha")
        alpha = scalar(alpha_t[1]) if alpha_t is not None else None
        if alpha is None:
            alpha = peft_alpha(peft_config, module)
        rank = int(a[1].shape[0]) if a is not None and a[1].ndim >= 1 else None
        scale = (alpha / rank) if (alpha is not None and rank) else 1.0
        group_rows: list[LoraKeyRow] = []

        def row(kind: str, status: str, target=None, rule=None, detail="", sugg=None, with_rank=True,
                g=g, module=module, rank=rank, alpha=alpha, scale=scale, group_rows=group_rows):
            key, t = g[kind]
            r = LoraKeyRow(key, kind, module, target, rule, status, list(t.shape),
                           rank=rank if with_rank else None, alpha=alpha if with_rank else None,
                           scale=scale if with_rank else None, detail=detail, suggestions=sugg or [])
            group_rows.append(r)
            return r

        if "dora" in g:
            for kind in g:
                row(kind, UNSUPPORTED, detail="DoRA (magnitude vectors) is not supported")
            rows += group_rows
            continue

        # Low-rank pair (A, B) and its bias (B_bias), all scaled by strength * alpha / rank.
        if a is not None or b is not None:
            m, rows_, shape = place(module, ".weight")
            if a is None or b is None:
                for kind in ("A", "B"):
                    if kind in g:
                        row(kind, INCOMPLETE, m.target, m.rule_text,
                            detail=f"lora_{'B' if kind == 'A' else 'A'} (up/down partner) is missing")
            elif shape is None:
                sugg = suggestions(m.target)
                for kind in ("A", "B"):
                    row(kind, UNMATCHED, m.target, m.rule_text, detail="no parameter of this name", sugg=sugg)
            else:
                A, B = a[1], b[1]
                target = _target_text(m.target, rows_)
                problem = ""
                if rows_ == "bad":
                    problem = f"cannot split {list(params[m.target][0])} into {m.merge_count} parts"
                elif A.ndim < 2 or B.ndim < 2 or B.shape[1] != A.shape[0]:
                    problem = f"lora_A {list(A.shape)} and lora_B {list(B.shape)} do not share a rank"
                elif any(int(d) != 1 for d in B.shape[2:]):
                    problem = f"lora_B {list(B.shape)}: only 1x1 kernels are supported for lora_B"
                elif B.shape[0] != shape[0] or prod(A.shape[1:]) != prod(shape[1:]) or len(shape) < 2:
                    problem = (f"B @ A is [{B.shape[0]}, {list(A.shape[1:])}], the parameter"
                               f"{' slice' if rows_ else ''} is {list(shape)}")
                if problem:
                    for kind in ("A", "B"):
                        row(kind, SHAPE_MISMATCH, target, m.rule_text, detail=problem)
                else:
                    ops.append(LoraOp(m.target, rows_, strength * scale, down=A, up=B))
                    for kind in ("A", "B"):
                        row(kind, APPLIED, target, m.rule_text)
        # Bias deltas: lora_B.bias (scaled like the pair) and diff_b (strength only).
        for kind in ("B_bias", "diff_b"):
            if kind not in g:
                continue
            m, rows_, shape = place(module, ".bias")
            t = g[kind][1]
            factor = strength * scale if kind == "B_bias" else strength
            if shape is None:
                row(kind, UNMATCHED, m.target, m.rule_text, detail="no parameter of this name",
                    sugg=suggestions(m.target), with_rank=kind == "B_bias")
            elif rows_ == "bad" or tuple(t.shape) != tuple(shape):
                row(kind, SHAPE_MISMATCH, _target_text(m.target, rows_), m.rule_text,
                    detail=f"delta {list(t.shape)}, parameter{' slice' if rows_ else ''} {list(shape)}",
                    with_rank=kind == "B_bias")
            else:
                ops.append(LoraOp(m.target, rows_, factor, delta=t))
                row(kind, APPLIED, _target_text(m.target, rows_), m.rule_text, with_rank=kind == "B_bias")
        # Full-rank weight patch.
        if "diff" in g:
            m, rows_, shape = place(module, ".weight", want_weight_param=True)
            t = g["diff"][1]
            if shape is None:
                row("diff", UNMATCHED, m.target, m.rule_text, detail="no parameter of this name",
                    sugg=suggestions(m.target), with_rank=False)
            elif rows_ == "bad" or tuple(t.shape) != tuple(shape):
                row("diff", SHAPE_MISMATCH, _target_text(m.target, rows_), m.rule_text,
                    detail=f"delta {list(t.shape)}, parameter{' slice' if rows_ else ''} {list(shape)}",
                    with_rank=False)
            else:
                ops.append(LoraOp(m.target, rows_, strength, delta=t))
                row("diff", APPLIED, _target_text(m.target, rows_), m.rule_text, with_rank=False)
        if "alpha" in g:
            partner = next((r for r in group_rows if r.kind in ("A", "B")), None)
            if partner is None:
                row("alpha", INCOMPLETE, detail="an alpha without lora_A / lora_B")
            else:
                row("alpha", partner.status if partner.status == APPLIED else partner.status, partner.target,
                    partner.rule, detail="" if partner.status == APPLIED else "its LoRA pair was not applied")
        rows += group_rows

    report = LoraReport(where, fmt, strength, rows, strict=strict)
    if strict and not report.ok:
        raise LoraError(f"{where} ({fmt} format): cannot apply every key (strict; pass strict=False to apply the "
                        f"rest):\n{report.summary()}", report)
    if not ops:
        raise LoraError(f"{where} ({fmt} format): none of its {len(rows)} keys applies to this model:\n"
                        f"{report.summary()}", report)
    return LoraPlan(report, ops)



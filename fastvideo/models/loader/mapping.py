"""The mapping engine: checkpoint names -> model names, with a report per key.

Pure Python on purpose (no torch import): it works on *headers* (name -> shape,
dtype) so the studio can re-run it on every rule edit without loading tensors.

Rules are an ordered ``{regex: replacement}`` dict (see
``fastvideo.configs.models.base``).  First match wins; unmatched names pass
through.  A tuple replacement ``(target, index, count)`` merges ``count`` source
tensors (concatenated on dim 0, in ``index`` order) into one fused target.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("mapped", "merged", "missing", "unexpected", "shape_mismatch")


class RuleError(ValueError):
    """A mapping rule that cannot be used (bad regex or bad merge tuple)."""

    def __init__(self, index: int, pattern: str, message: str):
        super().__init__(f"rule {index} ({pattern!r}): {message}")
        self.index = index
        self.pattern = pattern
        self.message = message


@dataclass(frozen=True)
class Rule:
    index: int
    pattern: str
    replacement: str
    merge_index: int | None = None
    merge_count: int | None = None
    regex: re.Pattern = field(compare=False, repr=False, default=None)  # type: ignore[assignment]

    @property
    def is_merge(self) -> bool:
        return self.merge_count is not None

    def describe(self) -> str:
        if self.is_merge:
            return f"#{self.index} {self.pattern} -> {self.replacement} [part {self.merge_index}/{self.merge_count}]"
        return f"#{self.index} {self.pattern} -> {self.replacement}"


def compile_rules(mapping: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> list[Rule]:
    """Validate and compile rules; raises :class:`RuleError` naming the bad rule."""
    items = list(mapping.items()) if isinstance(mapping, Mapping) else list(mapping)
    rules = []
    for i, (pattern, value) in enumerate(items):
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise RuleError(i, pattern, f"invalid regex: {exc}") from None
        if isinstance(value, str):
            replacement, m_idx, m_cnt = value, None, None
        elif isinstance(value, (tuple, list)) and len(value) == 3:
            replacement, m_idx, m_cnt = value
            if not isinstance(replacement, str) or not isinstance(m_idx, int) or not isinstance(m_cnt, int):
                raise RuleError(i, pattern, "merge value must be (target: str, index: int, count: int)")
            if not (m_cnt >= 1 and 0 <= m_idx < m_cnt):
                raise RuleError(i, pattern, f"merge index {m_idx} out of range for count {m_cnt}")
        else:
            raise RuleError(i, pattern, "replacement must be a string or (target, index, count)")
        for num, named in re.findall(r"\\(\d+)|\\g<(\w+)>", replacement):
            ref = num or named
            bad = (int(ref) > regex.groups) if ref.isdigit() else (ref not in regex.groupindex)
            if bad:
                raise RuleError(i, pattern, f"replacement refers to group {ref}, which the pattern does not have")
        rules.append(Rule(i, pattern, replacement, m_idx, m_cnt, regex))
    return rules


def map_name(name: str, rules: list[Rule]) -> tuple[str, Rule | None]:
    """Apply the first matching rule; unmatched names pass through."""
    for rule in rules:
        m = rule.regex.match(name)
        if m is not None:
            return m.expand(rule.replacement) + name[m.end():], rule
    return name, None


@dataclass(frozen=True)
class TensorInfo:
    """What a header tells about one tensor (no data)."""

    shape: tuple[int, ...]
    dtype: str  # safetensors-style code: F32, BF16, ...


@dataclass
class MappingRow:
    source: str | None
    target: str | None
    rule: int | None
    pattern: str | None
    status: str
    source_shape: list[int] | None
    target_shape: list[int] | None
    dtype: str | None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "rule": self.rule,
            "pattern": self.pattern,
            "status": self.status,
            "source_shape": self.source_shape,
            "target_shape": self.target_shape,
            "dtype": self.dtype,
            "detail": self.detail,
        }


@dataclass
class MappingReport:
    component: str
    rows: list[MappingRow]

    @property
    def counts(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for row in self.rows:
            counts[row.status] += 1
        return counts

    @property
    def ok(self) -> bool:
        c = self.counts
        return c["missing"] == 0 and c["unexpected"] == 0 and c["shape_mismatch"] == 0

    def problems(self, status: str) -> list[MappingRow]:
        return [r for r in self.rows if r.status == status]

    def summary(self, limit: int = 5) -> str:
        """Human-readable list of problems: first few of each kind plus counts."""
        parts = []
        for status, label in (("missing", "missing"), ("unexpected", "unexpected"), ("shape_mismatch", "wrong shape")):
            rows = self.problems(status)
            if not rows:
                continue
            shown = []
            for r in rows[:limit]:
                if status == "missing":
                    shown.append(f"{r.target} {r.target_shape}" + (f" ({r.detail})" if r.detail else ""))
                elif status == "unexpected":
                    shown.append(f"{r.source}" + (f" -> {r.target}" if r.target != r.source else ""))
                else:
                    shown.append(f"{r.source} -> {r.target}: checkpoint {r.source_shape}, model {r.target_shape}")
            more = f" ... and {len(rows) - limit} more" if len(rows) > limit else ""
            parts.append(f"{len(rows)} {label}: " + "; ".join(shown) + more)
        return "\n".join(parts) if parts else "all keys mapped"

    def to_json(self) -> dict[str, Any]:
        return {"component": self.component, "counts": self.counts, "rows": [r.to_json() for r in self.rows]}


@dataclass(frozen=True)
class TargetInfo:
    shape: tuple[int, ...]
    aliases: tuple[str, ...] = ()  # other names of the same (tied) parameter


def build_report(
    source: Mapping[str, TensorInfo],
    target: Mapping[str, TargetInfo | tuple[int, ...]],
    rules: list[Rule] | Mapping[str, Any],
    component: str = "",
) -> MappingReport:
    """One row per source key, plus one row per model key nothing maps to."""
    if not isinstance(rules, list):
        rules = compile_rules(rules)
    targets: dict[str, TargetInfo] = {
        k: (v if isinstance(v, TargetInfo) else TargetInfo(tuple(v))) for k, v in target.items()
    }
    alias_of = {a: k for k, t in targets.items() for a in t.aliases}

    rows: list[MappingRow] = []
    covered: dict[str, str] = {}  # target -> first source
    merge_groups: dict[str, dict[int, tuple[int, MappingRow]]] = {}
    merge_counts: dict[str, int] = {}

    for name, info in source.items():
        tgt, rule = map_name(name, rules)
        tgt = alias_of.get(tgt, tgt)
        row = MappingRow(
            source=name,
            target=tgt,
            rule=rule.index if rule else None,
            pattern=rule.pattern if rule else None,
            status="mapped",
            source_shape=list(info.shape),
            target_shape=list(targets[tgt].shape) if tgt in targets else None,
            dtype=info.dtype,
        )
        rows.append(row)
        if tgt not in targets:
            row.status = "unexpected"
            row.detail = "no model parameter of this name"
            continue
        if rule is not None and rule.is_merge:
            row.status = "merged"
            merge_counts[tgt] = rule.merge_count  # type: ignore[assignment]
            group = merge_groups.setdefault(tgt, {})
            if rule.merge_index in group:
                row.status = "unexpected"
                row.detail = f"part {rule.merge_index} of {tgt} already provided by {group[rule.merge_index][1].source}"
                continue
            group[rule.merge_index] = (len(rows) - 1, row)  # type: ignore[index]
            continue
        if tgt in covered:
            row.status = "unexpected"
            row.detail = f"{tgt} already provided by {covered[tgt]}"
            continue
        covered[tgt] = name
        if tuple(info.shape) != targets[tgt].shape:
            row.status = "shape_mismatch"

    # Fused targets: all parts present and concatenated shape right?
    for tgt, group in merge_groups.items():
        count = merge_counts[tgt]
        if tgt in covered:
            for _, row in group.values():
                row.status = "unexpected"
                row.detail = f"{tgt} already provided by {covered[tgt]}"
            continue
        covered[tgt] = group[min(group)][1].source  # type: ignore[assignment]
        absent = sorted(set(range(count)) - set(group))
        if absent:
            rows.append(
                MappingRow(None, tgt, None, None, "missing", None, list(targets[tgt].shape), None,
                           detail=f"fused from {count} parts; part(s) {absent} absent")
            )
            continue
        parts = [group[i][1] for i in range(count)]
        shapes = [tuple(p.source_shape or ()) for p in parts]
        fused = _concat_shape(shapes)
        if fused != targets[tgt].shape:
            for p in parts:
                p.status = "shape_mismatch"
                p.detail = f"parts concatenate to {list(fused) if fused else 'incompatible shapes'}"
        else:
            for i, p in enumerate(parts):
                p.detail = f"part {i + 1} of {count} of {tgt}"

    for tgt, info in targets.items():
        if tgt not in covered:
            rows.append(MappingRow(None, tgt, None, None, "missing", None, list(info.shape), None))
    return MappingReport(component, rows)


def _concat_shape(shapes: list[tuple[int, ...]]) -> tuple[int, ...] | None:
    if not shapes or any(len(s) != len(shapes[0]) or len(s) == 0 for s in shapes):
        return None
    if any(s[1:] != shapes[0][1:] for s in shapes):
        return None
    return (sum(s[0] for s in shapes),) + shapes[0][1:]


def near_misses(missing: str, candidates: Iterable[str], limit: int = 5) -> list[tuple[str, float]]:
    """Closest candidate names to a missing key (token-aware similarity, best first)."""
    import difflib

    def tokens(s: str) -> list[str]:
        return re.split(r"[._]", s)

    want = tokens(missing)
    scored = []
    for cand in candidates:
        ratio = difflib.SequenceMatcher(None, want, tokens(cand)).ratio()
        char = difflib.SequenceMatcher(None, missing, cand).ratio()
        scored.append((cand, round(0.5 * ratio + 0.5 * char, 4)))
    scored.sort(key=lambda x: -x[1])
    return scored[:limit]


def rules_to_python(mapping: Mapping[str, Any]) -> str:
    """The rules as a Python dict literal, ready to paste into an arch config."""
    lines = ["{"]
    for pattern, value in mapping.items():
        if isinstance(value, str):
            lines.append(f"    {_literal(pattern)}: {_literal(value)},")
        else:
            tgt, idx, cnt = value
            lines.append(f"    {_literal(pattern)}: ({_literal(tgt)}, {idx}, {cnt}),")
    lines.append("}")
    return "\n".join(lines)


def _literal(s: str) -> str:
    # A raw literal reads best for regexes; it cannot hold a quote or end in a backslash.
    if '"' not in s and not s.endswith("\\") and "\n" not in s:
        return f'r"{s}"'
    return repr(s)


def rules_from_python(text: str) -> dict[str, Any]:
    """Parse a dict literal written by :func:`rules_to_python` (no code is run)."""
    import ast

    value = ast.literal_eval(text.strip())
    if not isinstance(value, dict):
        raise ValueError("expected a dict literal of {pattern: replacement}")
    return {str(k): (tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in value.items()}


# --- Inverting rules --------------------------------------------------------------
# Rules in arch configs are simple: literals, escaped characters and capture groups.
# For those the inverse is computable, which gives "save under the checkpoint's own
# names" for models that were never loaded from a checkpoint (tiny models, training).

_TOKEN = re.compile(r"\\(.)|(\((?:[^()\\]|\\.)*\))|([\^$])|(.)", re.S)
_META = set(".*+?[]{}|")


def _pattern_template(pattern: str) -> list[str | int] | None:
    """``^a\\.(\\d+)\\.b$`` -> ["a.", 1, ".b"]; None when the pattern is not that simple."""
    out: list[str | int] = []
    group = 0
    tokens = list(_TOKEN.finditer(pattern))
    for i, m in enumerate(tokens):
        esc, grp, anchor, char = m.groups()
        if grp is not None and grp.startswith("(?:") and i + 1 < len(tokens) and tokens[i + 1].group(4) == "?":
            continue  # optional non-capturing part, e.g. a ComfyUI prefix: the inverse omits it
        if char == "?" and i and tokens[i - 1].group(2) is not None and tokens[i - 1].group(2).startswith("(?:"):
            continue
        if esc is not None:
            if esc.isalnum():
                return None  # \d, \w ... outside a group
            out.append(esc)
        elif grp is not None:
            if grp.startswith("(?"):
                return None
            group += 1
            out.append(group)
        elif anchor is not None:
            continue
        elif char in _META:
            return None
        else:
            out.append(char)
    return out


def _replacement_regex(replacement: str) -> tuple[re.Pattern, list[int]] | None:
    parts = re.split(r"\\(\d+)|\\g<(\d+)>", replacement)
    regex, order = "", []
    for i, part in enumerate(parts):
        if part is None:
            continue
        if i % 3 == 0:
            regex += re.escape(part)
        else:
            regex += "(.+?)"
            order.append(int(part))
    return re.compile(regex), order


def invert_name(target: str, rules: list[Rule]) -> list[tuple[str, int, int]]:
    """Checkpoint name(s) that the rules map onto ``target``.

    Returns ``[(source, merge_index, merge_count)]`` -- one entry for a rename (or
    pass-through), ``count`` entries for a fused target.  Each candidate is checked
    by mapping it forward again; raises ValueError when no rule inverts cleanly.
    """
    found: dict[int, str] = {}
    count = 1
    for rule in rules:
        if not rule.replacement:
            continue  # a prefix-stripping rule: the plain name (pass-through) is the inverse to prefer
        template = _pattern_template(rule.pattern)
        inv = _replacement_regex(rule.replacement)
        if template is None or inv is None:
            continue
        regex, order = inv
        m = regex.fullmatch(target) or regex.match(target)  # a rule keeps the unmatched tail
        if m is None:
            continue
        values = dict(zip(order, m.groups()))
        if any(isinstance(t, int) and t not in values for t in template):
            continue
        source = "".join(values[t] if isinstance(t, int) else t for t in template) + target[m.end():]
        mapped, fired = map_name(source, rules)
        if mapped != target or fired is not rule:
            continue
        if rule.is_merge:
            found.setdefault(rule.merge_index, source)  # type: ignore[arg-type]
            count = rule.merge_count  # type: ignore[assignment]
        else:
            return [(source, 0, 1)]
    if found:
        if len(found) != count:
            raise ValueError(f"{target}: rules give only parts {sorted(found)} of {count}")
        return [(found[i], i, count) for i in range(count)]
    mapped, fired = map_name(target, rules)
    if fired is None:
        return [(target, 0, 1)]
    raise ValueError(f"{target}: no rule maps a checkpoint name onto it (rule #{fired.index} renames it)")

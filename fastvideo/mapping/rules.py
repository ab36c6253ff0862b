"""The mapping engine: checkpoint names -> model names, with a report per key.

Pure Python on purpose (no torch import): it works on *headers* (name -> shape,
dtype) so the studio can re-run it on every rule edit without loading tensors.

Rules are ordered data: a ``{regex: replacement}`` dict (see
``fastvideo.configs.models.base``) or a list of ``(regex, replacement)`` pairs --
the studio, rule files and protocol messages carry the list form, which keeps the
order whatever the transport does with maps.  First match wins; unmatched names
pass through.  A tuple replacement ``(target, index, count)`` merges ``count``
source tensors (concatenated on dim 0, in ``index`` order) into one fused target.
A replacement of ``None`` (JSON ``null``) is an *ignore* rule: the matching
checkpoint keys are truly extra and are dropped (status ``ignored``, never read).

Two checkpoint keys mapped onto one model key are never resolved silently: both
get the status ``duplicate_target`` and the report is not ok.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("mapped", "merged", "missing", "unexpected", "shape_mismatch", "duplicate_target", "ignored")
#: statuses always present in :attr:`MappingReport.counts` (the others appear when some row has them)
CORE_STATUSES = STATUSES[:5]
#: statuses that make a report not ok (loading refuses, ``inspect-mapping`` exits 1)
PROBLEM_STATUSES = ("missing", "unexpected", "shape_mismatch", "duplicate_target")


def rules_list(rules: Mapping[str, Any] | Iterable[Any] | None) -> list[tuple[str, Any]]:
    """Rules as an ordered list of ``(pattern, value)`` pairs, from a dict or from a list of pairs
    (JSON form: ``[[pattern, replacement | [target, index, count] | null], ...]``)."""
    if rules is None:
        return []
    items = list(rules.items()) if isinstance(rules, Mapping) else list(rules)
    out = []
    for item in items:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise ValueError(f"a rule must be a [pattern, replacement] pair, got {item!r}")
        pattern, value = item
        out.append((str(pattern), tuple(value) if isinstance(value, list) else value))
    return out


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
    replacement: str | None  # None: an ignore rule (the key is dropped)
    merge_index: int | None = None
    merge_count: int | None = None
    regex: re.Pattern = field(compare=False, repr=False, default=None)  # type: ignore[assignment]

    @property
    def is_merge(self) -> bool:
        return self.merge_count is not None

    @property
    def is_ignore(self) -> bool:
        return self.replacement is None

    def describe(self) -> str:
        if self.is_ignore:
            return f"#{self.index} {self.pattern} -> (ignore)"
        if self.is_merge:
            return f"#{self.index} {self.pattern} -> {self.replacement} [part {self.merge_index}/{self.merge_count}]"
        return f"#{self.index} {self.pattern} -> {self.replacement}"


def compile_rules(mapping: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> list[Rule]:
    """Validate and compile rules; raises :class:`RuleError` naming the bad rule."""
    items = list(mapping.items()) if isinstance(mapping, Mapping) else list(mapping)
    rules = []
    for i, (pattern, value) in enumerate(items):
        if not isinstance(pattern, str):
            raise RuleError(i, str(pattern), "pattern must be a string")
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise RuleError(i, pattern, f"invalid regex: {exc}") from None
        if value is None:  # ignore rule
            rules.append(Rule(i, pattern, None, None, None, regex))
            continue
        if isinstance(value, str):
            replacement, m_idx, m_cnt = value, None, None
        elif isinstance(value, (tuple, list)) and len(value) == 3:
            replacement, m_idx, m_cnt = value
            if not isinstance(replacement, str) or not isinstance(m_idx, int) or not isinstance(m_cnt, int):
                raise RuleError(i, pattern, "merge value must be (target: str, index: int, count: int)")
            if not (m_cnt >= 1 and 0 <= m_idx < m_cnt):
                raise RuleError(i, pattern, f"merge index {m_idx} out of range for count {m_cnt}")
        else:
            raise RuleError(i, pattern, "replacement must be a string, (target, index, count) or None (ignore)")
        for num, named in re.findall(r"\\(\d+)|\\g<(\w+)>", replacement):
            ref = num or named
            bad = (int(ref) > regex.groups) if ref.isdigit() else (ref not in regex.groupindex)
            if bad:
                raise RuleError(i, pattern, f"replacement refers to group {ref}, which the pattern does not have")
        rules.append(Rule(i, pattern, replacement, m_idx, m_cnt, regex))
    return rules


def map_name(name: str, rules: list[Rule]) -> tuple[str, Rule | None]:
    """Apply the first matching rule; unmatched names pass through (an ignore rule keeps the name)."""
    for rule in rules:
        m = rule.regex.match(name)
        if m is not None:
            if rule.replacement is None:
                return name, rule
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
        """Rows per status: the five core statuses always, ``duplicate_target`` / ``ignored`` when present."""
        counts = self.all_counts
        return {s: n for s, n in counts.items() if s in CORE_STATUSES or n}

    @property
    def all_counts(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for row in self.rows:
            counts[row.status] += 1
        return counts

    @property
    def ok(self) -> bool:
        c = self.all_counts
        return not any(c[s] for s in PROBLEM_STATUSES)

    def problems(self, status: str) -> list[MappingRow]:
        return [r for r in self.rows if r.status == status]

    def summary(self, limit: int = 5) -> str:
        """Human-readable list of problems: first few of each kind plus counts."""
        parts = []
        for status, label in (("duplicate_target", "mapped onto a model key that another key also maps onto"),
                              ("missing", "missing"), ("unexpected", "unexpected"), ("shape_mismatch", "wrong shape")):
            rows = self.problems(status)
            if not rows:
                continue
            shown = []
            for r in rows[:limit]:
                if status == "duplicate_target":
                    shown.append(f"{r.source} {r.source_shape} -> {r.target} {r.target_shape}")
                elif status == "missing":
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
    if not (isinstance(rules, list) and all(isinstance(r, Rule) for r in rules)):
        rules = compile_rules(rules)  # a dict or a list of (pattern, value) pairs
    targets: dict[str, TargetInfo] = {
        k: (v if isinstance(v, TargetInfo) else TargetInfo(tuple(v))) for k, v in target.items()
    }
    alias_of = {a: k for k, t in targets.items() for a in t.aliases}

    rows: list[MappingRow] = []
    plain: dict[str, list[MappingRow]] = {}  # target -> rows of plain renames onto it
    merge_groups: dict[str, dict[int, list[MappingRow]]] = {}  # target -> part -> rows
    merge_counts: dict[str, int] = {}

    for name, info in source.items():
        tgt, rule = map_name(name, rules)
        if rule is not None and rule.is_ignore:
            rows.append(MappingRow(name, None, rule.index, rule.pattern, "ignored", list(info.shape), None, info.dtype,
                                   detail="dropped by an ignore rule (never read)"))
            continue
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
            merge_groups.setdefault(tgt, {}).setdefault(rule.merge_index, []).append(row)  # type: ignore[arg-type]
            continue
        plain.setdefault(tgt, []).append(row)

    def duplicates(tgt: str, group: list[MappingRow], what: str) -> None:
        for r in group:
            others = [f"{o.source} {_shape_str(o.source_shape)}" for o in group if o is not r]
            r.status = "duplicate_target"
            r.detail = f"{what} is also mapped from {', '.join(others)}: only one key may provide it"

    covered: set[str] = set()
    for tgt, group in plain.items():
        covered.add(tgt)
        parts = [r for rs in merge_groups.get(tgt, {}).values() for r in rs]
        if len(group) > 1 or parts:
            duplicates(tgt, group + parts, tgt)
            continue
        row = group[0]
        if tuple(row.source_shape or ()) != targets[tgt].shape:
            row.status = "shape_mismatch"

    # Fused targets: all parts present, each once, and concatenated shape right?
    for tgt, group in merge_groups.items():
        if tgt in plain:
            continue  # reported above as duplicate targets
        covered.add(tgt)
        count = merge_counts[tgt]
        dup = {i: rs for i, rs in group.items() if len(rs) > 1}
        for i, rs in dup.items():
            duplicates(tgt, rs, f"part {i} of {tgt}")
        if dup:
            continue
        absent = sorted(set(range(count)) - set(group))
        if absent:
            rows.append(
                MappingRow(None, tgt, None, None, "missing", None, list(targets[tgt].shape), None,
                           detail=f"fused from {count} parts; part(s) {absent} absent")
            )
            continue
        parts = [group[i][0] for i in range(count)]
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


def _shape_str(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]" if shape is not None else "[?]"


def _concat_shape(shapes: list[tuple[int, ...]]) -> tuple[int, ...] | None:
    if not shapes or any(len(s) != len(shapes[0]) or len(s) == 0 for s in shapes):
        return None
    if any(s[1:] != shapes[0][1:] for s in shapes):
        return None
    return (sum(s[0] for s in shapes),) + shapes[0][1:]


def near_misses(missing: str, candidates: Iterable[str], limit: int = 5) -> list[tuple[str, float]]:
    """Closest candidate names to a missing key (token-aware similarity, best first). Names only:
    :func:`suggest` ranks by name *and* shape."""
    scored = [(cand, name_similarity(missing, cand)) for cand in candidates]
    scored.sort(key=lambda x: -x[1])
    return scored[:limit]


def name_similarity(a: str, b: str) -> float:
    import difflib

    def tokens(s: str) -> list[str]:
        return re.split(r"[._]", s)

    ratio = difflib.SequenceMatcher(None, tokens(a), tokens(b)).ratio()
    char = difflib.SequenceMatcher(None, a, b).ratio()
    return round(0.5 * ratio + 0.5 * char, 4)


def shape_fit(want: Iterable[int] | None, have: Iterable[int] | None) -> str:
    """How a tensor of shape ``have`` could fill a parameter of shape ``want``: ``same``, ``part``
    (one of 2-4 fused parts: equal trailing dims, dim 0 divides), ``unknown`` or ``impossible``."""
    if want is None or have is None:
        return "unknown"
    want, have = tuple(want), tuple(have)
    if want == have:
        return "same"
    if (want and have and len(want) == len(have) and want[1:] == have[1:] and have[0]
            and want[0] % have[0] == 0 and 2 <= want[0] // have[0] <= 4):  # q/k/v, k/v, gate/up ...
        return "part"
    return "impossible"


@dataclass
class Suggestion:
    """A near-miss candidate: the row on the other side, its name score and whether its shape can fit."""

    name: str
    source: str | None
    target: str | None
    name_score: float
    score: float
    fit: str  # same | part | unknown | impossible
    shape: list[int] | None

    @property
    def possible(self) -> bool:
        return self.fit != "impossible"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "target": self.target, "score": self.score,
                "name_score": self.name_score, "fit": self.fit, "possible": self.possible, "shape": self.shape}


_FIT_BONUS = {"same": 0.2, "part": 0.1, "unknown": 0.0, "impossible": -0.5}


def suggest(row: MappingRow, report: MappingReport, limit: int = 5) -> list[Suggestion]:
    """Near misses for a ``missing`` row (unexpected checkpoint keys) or an ``unexpected`` row (missing
    model keys), ranked by name *and* shape: a candidate whose shape cannot fit is marked impossible and
    always ranks after every possible one."""
    if row.status == "missing":
        pool = [r for r in report.rows if r.status == "unexpected" and r.source]
        want = row.target or ""
        want_shape, cand_shape = row.target_shape, (lambda r: r.source_shape)
        names = lambda r: [n for n in dict.fromkeys([r.source, r.target]) if n]  # noqa: E731
        shown = lambda r: r.source  # noqa: E731
    elif row.status == "unexpected":
        pool = [r for r in report.rows if r.status == "missing" and r.target]
        want = row.target or row.source or ""
        want_shape, cand_shape = row.source_shape, (lambda r: r.target_shape)
        names = lambda r: [r.target]  # noqa: E731
        shown = lambda r: r.target  # noqa: E731
    else:
        return []
    out = []
    for r in pool:
        name_score = max(name_similarity(want, n) for n in names(r))
        if row.status == "missing":
            fit = shape_fit(want_shape, cand_shape(r))
        else:
            fit = shape_fit(cand_shape(r), want_shape)
        score = round(0.8 * name_score + _FIT_BONUS[fit], 4)
        out.append(Suggestion(shown(r), r.source, r.target, name_score, score, fit, cand_shape(r)))
    out.sort(key=lambda s: (not s.possible, -s.score))
    return out[:limit]


def report_suggestions(report: MappingReport, limit: int = 5) -> list[dict[str, Any]]:
    """Near misses of every missing and unexpected row (what the studio's inspector shows), JSON-ready."""
    out = []
    for row in report.rows:
        if row.status not in ("missing", "unexpected"):
            continue
        sugg = suggest(row, report, limit)
        if sugg:
            out.append({"status": row.status, "source": row.source, "target": row.target,
                        "suggestions": [s.to_json() for s in sugg]})
    return out


def rules_to_python(mapping: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> str:
    """The rules as a Python dict literal, ready to paste into an arch config (in order; ``None`` = ignore)."""
    lines = ["{"]
    for pattern, value in rules_list(mapping):
        if value is None:
            lines.append(f"    {_literal(pattern)}: None,")
        elif isinstance(value, str):
            lines.append(f"    {_literal(pattern)}: {_literal(value)},")
        else:
            tgt, idx, cnt = value
            lines.append(f"    {_literal(pattern)}: ({_literal(tgt)}, {idx}, {cnt}),")
    lines.append("}")
    return "\n".join(lines)


def rules_to_arch_config(mapping: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> str:
    """A ready-to-paste ``param_names_mapping`` field (class-body indented) for an arch config dataclass,
    rules in order."""
    body = rules_to_python(mapping).splitlines()
    inner = "\n".join("    " + line for line in body[1:-1])
    return ("    param_names_mapping: dict[str, MappingValue] = field(default_factory=lambda: {\n"
            + (inner + "\n" if inner else "") + "    })")


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

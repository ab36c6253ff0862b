"""What happened to every key of a LoRA (the studio shows this table)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: statuses of a LoRA key
APPLIED, UNMATCHED, SHAPE_MISMATCH, INCOMPLETE, UNSUPPORTED, NOT_LORA = (
    "applied", "unmatched", "shape_mismatch", "incomplete", "unsupported", "not_lora")
PROBLEMS = (UNMATCHED, SHAPE_MISMATCH, INCOMPLETE, UNSUPPORTED, NOT_LORA)


@dataclass
class LoraKeyRow:
    key: str  # the key in the LoRA file
    kind: str  # A | B | B_bias | alpha | diff | diff_b | dora | ?
    module: str  # the LoRA's module name (the key without its kind suffix)
    # our parameter, with the row slice of a fused one: "blocks.0.self_attn.to_qkv.weight[0:32]"
    target: str | None
    rule: str | None  # the rule chain that mapped it
    status: str
    shape: list[int]
    rank: int | None = None
    alpha: float | None = None
    scale: float | None = None  # alpha / rank (1.0 without alpha)
    detail: str = ""
    suggestions: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class LoraReport:
    path: str
    format: str
    strength: float
    rows: list[LoraKeyRow]
    strict: bool = True
    component: str = "transformer"  # the model component merged into (transformer_2: Wan2.2's second expert)

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    @property
    def ok(self) -> bool:
        return not any(r.status in PROBLEMS for r in self.rows)

    @property
    def applied(self) -> list[LoraKeyRow]:
        return [r for r in self.rows if r.status == APPLIED]

    @property
    def skipped(self) -> list[LoraKeyRow]:
        return [r for r in self.rows if r.status in PROBLEMS]

    @property
    def targets(self) -> list[str]:
        return sorted({r.target.split("[")[0] for r in self.applied if r.target})

    def summary(self, limit: int = 8) -> str:
        """The problems, first few of each status, with near-miss suggestions."""
        parts = []
        labels = {UNMATCHED: "map to no parameter of this model", SHAPE_MISMATCH: "have the wrong shape",
                  INCOMPLETE: "are incomplete", UNSUPPORTED: "are not supported", NOT_LORA: "are not LoRA keys"}
        for status in PROBLEMS:
            rows = [r for r in self.rows if r.status == status]
            if not rows:
                continue
            shown = []
            for r in rows[:limit]:
                text = r.key + (f" -> {r.target}" if r.target else "")
                if r.detail:
                    text += f" ({r.detail})"
                if r.suggestions:
                    text += f"; did you mean {' or '.join(r.suggestions[:3])}?"
                shown.append(text)
            more = f"\n    ... and {len(rows) - limit} more" if len(rows) > limit else ""
            parts.append(f"{len(rows)} key(s) {labels[status]}:\n    " + "\n    ".join(shown) + more)
        return "\n".join(parts) if parts else f"all {len(self.rows)} keys applied"

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "strength": self.strength, "strict": self.strict,
                "component": self.component,
                "ok": self.ok, "counts": self.counts, "rows": [r.to_json() for r in self.rows]}

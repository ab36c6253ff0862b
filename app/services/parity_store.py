"""Parity runs kept in the studio's database (table ``parity_runs``, schema v2 of jobs_db).

Each run stores what was compared (model, component, reference, dtype, seed, the
exact rules -- an ordered ``[[pattern, replacement], ...]`` list, column ``rules``,
added to older databases on open -- and their label), the verdict, the versions reported by the inference process and the whole
JSON result, so history can be listed, compared and exported (CSV, JSON).
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.services.jobs_db import JobsDB, loads_json


@dataclass
class ParityRun:
    id: int
    created_at: float
    model_path: str
    component: str
    reference: str
    dtype: str
    seed: int
    rules_label: str
    passed: bool | None
    duration: float | None
    versions: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: the exact rules ours was loaded with, in order ([[pattern, replacement], ...]); None: the arch config's
    rules: list[list[Any]] | None = None

    @property
    def verdict(self) -> str:
        if self.error:
            return "error"
        return "pass" if self.passed else "fail"

    @property
    def worst_rel_l2(self) -> float | None:
        vals = [o.get("rel_l2") for o in self.result.get("outputs", []) if o.get("rel_l2") is not None]
        return max(vals) if vals else None

    @property
    def worst_max_abs(self) -> float | None:
        vals = [o.get("max_abs") for o in self.result.get("outputs", []) if o.get("max_abs") is not None]
        return max(vals) if vals else None

    @property
    def first_divergent(self) -> str | None:
        fd = self.result.get("first_divergent")
        return fd.get("module") if isinstance(fd, dict) else None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "created_at": self.created_at, "model_path": self.model_path,
                "component": self.component, "reference": self.reference, "dtype": self.dtype, "seed": self.seed,
                "rules_label": self.rules_label, "rules": self.rules, "passed": self.passed, "duration": self.duration,
                "versions": self.versions, "error": self.error, "result": self.result}


CSV_COLUMNS = ("id", "time", "model_path", "component", "reference", "dtype", "seed", "rules", "verdict",
               "output", "max_abs", "mean_abs", "rel_l2", "atol", "rtol", "rel_l2_tol", "output_passed",
               "first_divergent", "fastvideo", "torch", "diffusers", "transformers", "duration_s", "error")


class ParityStore:
    def __init__(self, db: JobsDB):
        self.db = db
        with self.db._lock, self.db._tx() as c:
            cols = {r[1] for r in c.execute("PRAGMA table_info(parity_runs)").fetchall()}
            if "rules" not in cols:  # databases written before the exact rules were kept
                c.execute("ALTER TABLE parity_runs ADD COLUMN rules TEXT")

    def add(self, *, model_path: str, component: str, reference: str, dtype: str, seed: int,
            result: dict[str, Any] | None = None, error: str | None = None, rules_label: str = "",
            duration: float | None = None, created_at: float | None = None,
            rules: list[Any] | dict[str, Any] | None = None) -> int:
        """Store a run; ``rules`` are the exact rules ours was loaded with (ordered pairs; None: arch config)."""
        result = result or {}
        if rules is not None:
            items = list(rules.items()) if isinstance(rules, dict) else list(rules)
            rules = [[str(p), list(v) if isinstance(v, tuple) else v] for p, v in items]
        passed = None if error else bool(result.get("passed"))
        with self.db._lock, self.db._tx() as c:
            cur = c.execute(
                "INSERT INTO parity_runs (created_at, model_path, component, reference, dtype, seed, rules_label, "
                "passed, duration, versions, result, error, rules) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (created_at or time.time(), model_path, component, reference, result.get("dtype", dtype),
                 int(seed), rules_label, None if passed is None else int(passed), duration,
                 json.dumps(result.get("versions") or {}), json.dumps(result), error,
                 None if rules is None else json.dumps(rules)))
            return int(cur.lastrowid)

    def _row(self, r) -> ParityRun:
        return ParityRun(id=r["id"], created_at=r["created_at"], model_path=r["model_path"],
                         component=r["component"], reference=r["reference"], dtype=r["dtype"], seed=r["seed"],
                         rules_label=r["rules_label"], passed=None if r["passed"] is None else bool(r["passed"]),
                         duration=r["duration"], versions=loads_json(r["versions"], {}), result=loads_json(r["result"], {}),
                         error=r["error"], rules=loads_json(r["rules"], None) if "rules" in r.keys() else None)

    def get(self, run_id: int) -> ParityRun | None:
        with self.db._lock:
            r = self.db._conn.execute("SELECT * FROM parity_runs WHERE id = ?", (run_id,)).fetchone()
        return self._row(r) if r else None

    def runs(self, limit: int = 1000) -> list[ParityRun]:
        with self.db._lock:
            rows = self.db._conn.execute("SELECT * FROM parity_runs ORDER BY created_at DESC, id DESC LIMIT ?",
                                         (int(limit),)).fetchall()
        return [self._row(r) for r in rows]

    def delete(self, run_ids: list[int]) -> int:
        if not run_ids:
            return 0
        with self.db._lock, self.db._tx() as c:
            return c.execute(f"DELETE FROM parity_runs WHERE id IN ({','.join('?' * len(run_ids))})",
                             [int(i) for i in run_ids]).rowcount

    # ------------------------------------------------------------------ export
    @staticmethod
    def export_json(runs: list[ParityRun], path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps({"parity_runs": [r.to_json() for r in runs]}, indent=2))
        return path

    @staticmethod
    def export_csv(runs: list[ParityRun], path: str | Path) -> Path:
        """One line per (run, output); a run without outputs (an error) gets one line."""
        path = Path(path)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(CSV_COLUMNS)
            for r in runs:
                base = [r.id, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created_at)), r.model_path,
                        r.component, r.reference, r.dtype, r.seed, r.rules_label, r.verdict]
                tail = [r.first_divergent or "", r.versions.get("fastvideo", ""), r.versions.get("torch", ""),
                        r.versions.get("diffusers", ""), r.versions.get("transformers", ""),
                        "" if r.duration is None else f"{r.duration:.3f}", r.error or ""]
                outputs = r.result.get("outputs") or []
                if not outputs:
                    w.writerow(base + [""] * 8 + tail)
                for o in outputs:
                    w.writerow(base + [o.get("name"), _num(o.get("max_abs")), _num(o.get("mean_abs")),
                                       _num(o.get("rel_l2")), _num(o.get("atol")), _num(o.get("rtol")),
                                       _num(o.get("rel_l2_tol")), "pass" if o.get("passed") else "fail"] + tail)
        return path


def _num(v: Any) -> str:
    return "" if v is None else repr(float(v))


def compare_runs(a: ParityRun, b: ParityRun) -> list[dict[str, Any]]:
    """Per output name: both runs' numbers side by side (an output only one run has gets None for the other)."""
    out_a = {o["name"]: o for o in a.result.get("outputs", [])}
    out_b = {o["name"]: o for o in b.result.get("outputs", [])}
    names = list(dict.fromkeys([*out_a, *out_b]))
    rows = []
    for n in names:
        oa, ob = out_a.get(n, {}), out_b.get(n, {})
        rows.append({"name": n, "a_max_abs": oa.get("max_abs"), "b_max_abs": ob.get("max_abs"),
                     "a_rel_l2": oa.get("rel_l2"), "b_rel_l2": ob.get("rel_l2"),
                     "a_passed": oa.get("passed"), "b_passed": ob.get("passed")})
    return rows

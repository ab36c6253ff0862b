"""The job store: every generation the studio queued, ran, finished or lost.

SQLite (stdlib) in the studio's data folder.  The schema is versioned through
``PRAGMA user_version`` and migrated forward on open.  State changes are single
``UPDATE ... WHERE state IN (...)`` statements, so a job never moves from a
state it is not in (a cancelled job cannot become done, a finished job cannot be
started again).  On open, a job still marked ``running`` -- the studio was
killed while it ran -- is marked ``interrupted``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2

QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED = (
    "queued", "running", "done", "failed", "cancelled", "interrupted")
STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED)
FINISHED_STATES = (DONE, FAILED, CANCELLED, INTERRUPTED)

INTERRUPTED_REASON = "The studio was closed or stopped while this job was running."

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    state TEXT NOT NULL CHECK (state IN ('queued','running','done','failed','cancelled','interrupted')),
    position REAL NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    task TEXT NOT NULL DEFAULT 't2v',
    prompt TEXT NOT NULL DEFAULT '',
    model_path TEXT NOT NULL,
    num_gpus INTEGER NOT NULL DEFAULT 1,
    pipeline_options TEXT NOT NULL DEFAULT '{}',
    params TEXT NOT NULL DEFAULT '{}',
    output_path TEXT,
    seed INTEGER,
    generation_time REAL,
    result TEXT,
    error TEXT,
    error_field TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state_position ON jobs (state, position);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# v2: parity runs of the Parity panel (app/services/parity_store.py).
_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS parity_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    model_path TEXT NOT NULL,
    component TEXT NOT NULL,
    reference TEXT NOT NULL DEFAULT 'diffusers',
    dtype TEXT NOT NULL DEFAULT 'fp32',
    seed INTEGER NOT NULL DEFAULT 0,
    rules_label TEXT NOT NULL DEFAULT '',
    passed INTEGER,
    duration REAL,
    versions TEXT NOT NULL DEFAULT '{}',
    result TEXT NOT NULL DEFAULT '{}',
    error TEXT
);
CREATE INDEX IF NOT EXISTS parity_runs_created ON parity_runs (created_at);
"""


class TransitionError(RuntimeError):
    """A state change from a state the job is not in."""


@dataclass
class Job:
    id: int
    state: str
    position: float
    created_at: float
    task: str
    prompt: str
    model_path: str
    num_gpus: int
    pipeline_options: dict[str, Any]
    params: dict[str, Any]
    started_at: float | None = None
    finished_at: float | None = None
    output_path: str | None = None
    seed: int | None = None
    generation_time: float | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_field: str | None = None

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STATES

    def settings(self) -> dict[str, Any]:
        """Everything needed to set up the generate panel like this job was."""
        params = dict(self.params)
        params["prompt"] = self.prompt
        if self.seed is not None and self.state == DONE:
            params["seed"] = self.seed
        return {"task": self.task, "model_path": self.model_path, "num_gpus": self.num_gpus,
                "pipeline_options": dict(self.pipeline_options), "params": params}

    @property
    def size_text(self) -> str:
        p = self.params
        if p.get("width") and p.get("height"):
            return f"{p['width']}×{p['height']}"
        return ""


def loads_json(text: str | None, default: Any) -> Any:
    """A JSON column's value, or ``default`` when it is empty or not valid JSON."""
    if not text:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return default


def _row_to_job(row: sqlite3.Row) -> Job:
    j = loads_json
    return Job(
        id=row["id"], state=row["state"], position=row["position"], created_at=row["created_at"],
        task=row["task"], prompt=row["prompt"], model_path=row["model_path"], num_gpus=row["num_gpus"],
        pipeline_options=j(row["pipeline_options"], {}), params=j(row["params"], {}),
        started_at=row["started_at"], finished_at=row["finished_at"], output_path=row["output_path"],
        seed=row["seed"], generation_time=row["generation_time"], result=j(row["result"], {}),
        error=row["error"], error_field=row["error_field"],
    )


class JobsDB:
    """Thread-safe (one connection behind a lock); every write is one transaction."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(self.path), timeout=10.0, isolation_level=None,
                                     check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()
        self.interrupted_on_open = self._recover()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------ schema
    def _migrate(self) -> None:
        with self._lock:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path}: the job database is from a newer studio (schema {version}, this one knows "
                    f"{SCHEMA_VERSION}); update the studio or use another --data-dir")
            for target, schema in ((1, _SCHEMA_V1), (2, _SCHEMA_V2)):
                if version >= target:
                    continue
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for stmt in schema.strip().split(";"):
                        if stmt.strip():
                            self._conn.execute(stmt)
                    self._conn.execute(f"PRAGMA user_version = {target}")
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                version = target

    def _recover(self) -> list[int]:
        with self._lock, self._tx():
            ids = [r[0] for r in self._conn.execute("SELECT id FROM jobs WHERE state = ?", (RUNNING,))]
            if ids:
                self._conn.execute(
                    "UPDATE jobs SET state = ?, finished_at = ?, error = ? WHERE state = ?",
                    (INTERRUPTED, time.time(), INTERRUPTED_REASON, RUNNING))
            return ids

    class _Tx:
        def __init__(self, conn: sqlite3.Connection):
            self.conn = conn

        def __enter__(self):
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type, exc, tb):
            self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
            return False

    def _tx(self) -> JobsDB._Tx:
        return JobsDB._Tx(self._conn)

    # ------------------------------------------------------------------ writes
    def add(self, *, prompt: str, model_path: str, params: dict[str, Any], task: str = "t2v",
            num_gpus: int = 1, pipeline_options: dict[str, Any] | None = None) -> int:
        now = time.time()
        with self._lock, self._tx() as c:
            pos = c.execute("SELECT COALESCE(MAX(position), 0) + 1 FROM jobs WHERE state = ?",
                            (QUEUED,)).fetchone()[0]
            cur = c.execute(
                "INSERT INTO jobs (state, position, created_at, task, prompt, model_path, num_gpus, "
                "pipeline_options, params) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (QUEUED, pos, now, task, prompt, model_path, int(num_gpus),
                 json.dumps(pipeline_options or {}), json.dumps(params)))
            return int(cur.lastrowid)

    def _transition(self, job_id: int, from_states: Iterable[str], to_state: str, **columns: Any) -> bool:
        from_states = tuple(from_states)
        sets = ["state = ?"] + [f"{k} = ?" for k in columns]
        values = [to_state, *[json.dumps(v) if isinstance(v, (dict, list)) else v for v in columns.values()]]
        q = (f"UPDATE jobs SET {', '.join(sets)} WHERE id = ? AND state IN ({','.join('?' * len(from_states))})")
        with self._lock, self._tx() as c:
            return c.execute(q, (*values, job_id, *from_states)).rowcount == 1

    def start(self, job_id: int) -> bool:
        """queued -> running; False if the job is not queued (removed, cancelled)."""
        return self._transition(job_id, (QUEUED,), RUNNING, started_at=time.time())

    def finish_done(self, job_id: int, result: dict[str, Any]) -> bool:
        return self._transition(
            job_id, (RUNNING,), DONE, finished_at=time.time(), output_path=result.get("video_path"),
            seed=result.get("seed"), generation_time=result.get("generation_time"), result=result, error=None)

    def finish_failed(self, job_id: int, error: str, field: str | None = None) -> bool:
        return self._transition(job_id, (RUNNING, QUEUED), FAILED, finished_at=time.time(), error=error,
                                error_field=field)

    def finish_cancelled(self, job_id: int, note: str | None = None) -> bool:
        return self._transition(job_id, (RUNNING, QUEUED), CANCELLED, finished_at=time.time(), error=note)

    def remove(self, job_id: int) -> bool:
        """Delete a job that is not running (a queued one, or a history entry)."""
        with self._lock, self._tx() as c:
            return c.execute("DELETE FROM jobs WHERE id = ? AND state != ?", (job_id, RUNNING)).rowcount == 1

    def move(self, job_id: int, new_index: int) -> bool:
        """Move a queued job to ``new_index`` in the queue order (clamped)."""
        with self._lock, self._tx() as c:
            ids = [r[0] for r in c.execute("SELECT id FROM jobs WHERE state = ? ORDER BY position, id", (QUEUED,))]
            if job_id not in ids:
                return False
            ids.remove(job_id)
            ids.insert(max(0, min(new_index, len(ids))), job_id)
            c.executemany("UPDATE jobs SET position = ? WHERE id = ?", [(i + 1, jid) for i, jid in enumerate(ids)])
            return True

    def set_meta(self, key: str, value: Any) -> None:
        with self._lock, self._tx() as c:
            c.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                      (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            return default
        try:
            return json.loads(row[0])
        except json.JSONDecodeError:
            return default

    @property
    def paused(self) -> bool:
        return bool(self.get_meta("queue_paused", False))

    @paused.setter
    def paused(self, value: bool) -> None:
        self.set_meta("queue_paused", bool(value))

    # ------------------------------------------------------------------ reads
    def get(self, job_id: int) -> Job | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row_to_job(row) if row else None

    def queue(self) -> list[Job]:
        """The running job (if any) then queued jobs in order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM jobs WHERE state IN (?, ?) ORDER BY state = ? DESC, position, id",
                (RUNNING, QUEUED, RUNNING)).fetchall()
        return [_row_to_job(r) for r in rows]

    def next_queued(self) -> Job | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM jobs WHERE state = ? ORDER BY position, id LIMIT 1",
                                     (QUEUED,)).fetchone()
        return _row_to_job(row) if row else None

    def history(self, search: str = "", states: Iterable[str] = FINISHED_STATES, limit: int = 500) -> list[Job]:
        states = tuple(states)
        q = f"SELECT * FROM jobs WHERE state IN ({','.join('?' * len(states))})"
        args: list[Any] = list(states)
        for word in search.split():
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            q += " AND prompt LIKE ? ESCAPE '\\'"
            args.append(f"%{escaped}%")
        q += " ORDER BY COALESCE(finished_at, created_at) DESC, id DESC LIMIT ?"
        args.append(int(limit))
        with self._lock:
            rows = self._conn.execute(q, args).fetchall()
        return [_row_to_job(r) for r in rows]

    def recent_prompts(self, search: str = "", limit: int = 200) -> list[str]:
        """Distinct prompts of every job, the most recently used first; with ``search``, those containing
        each of its words (case-insensitive). The Generate panel's prompt history."""
        q = "SELECT prompt FROM jobs WHERE prompt != ''"
        args: list[Any] = []
        for word in search.split():
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            q += " AND prompt LIKE ? ESCAPE '\\'"
            args.append(f"%{escaped}%")
        q += " GROUP BY prompt ORDER BY MAX(created_at) DESC, MAX(id) DESC LIMIT ?"
        args.append(int(limit))
        with self._lock:
            return [r[0] for r in self._conn.execute(q, args).fetchall()]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {s: 0 for s in STATES} | {r[0]: r[1] for r in rows}

"""The job database: states, atomic transitions, order, search, recovery, schema."""

from __future__ import annotations

import sqlite3

import pytest

from app.services.jobs_db import INTERRUPTED_REASON, SCHEMA_VERSION, JobsDB


def add(db, prompt="a fox", **kw):
    return db.add(prompt=prompt, model_path="/models/m", params={"width": 64, "height": 48, "seed": 3, **kw})


def test_lifecycle_and_atomic_transitions(tmp_path):
    db = JobsDB(tmp_path / "jobs.sqlite3")
    a = add(db)
    assert db.get(a).state == "queued"
    assert db.start(a) and db.get(a).state == "running"
    assert not db.start(a)  # not queued any more
    assert db.finish_done(a, {"video_path": "/out/a.mp4", "seed": 3, "generation_time": 1.5, "timings": {"x": 1}})
    job = db.get(a)
    assert job.state == "done" and job.output_path == "/out/a.mp4" and job.result["timings"] == {"x": 1}
    assert not db.finish_failed(a, "late error")  # a finished job stays finished
    assert not db.finish_cancelled(a)
    b = add(db)
    assert db.finish_cancelled(b, "removed")
    assert not db.start(b) and not db.finish_done(b, {})
    c = add(db)
    db.start(c)
    assert db.finish_failed(c, "CUDA out of memory", field="height")
    assert db.get(c).error == "CUDA out of memory" and db.get(c).error_field == "height"
    assert not db.remove(-1)
    d = add(db)
    db.start(d)
    assert not db.remove(d)  # a running job cannot be deleted
    db.close()


def test_queue_order_move_remove(tmp_path):
    db = JobsDB(tmp_path / "jobs.sqlite3")
    ids = [add(db, f"p{i}") for i in range(4)]
    assert [j.id for j in db.queue()] == ids
    assert db.move(ids[3], 0)
    assert [j.id for j in db.queue()] == [ids[3], ids[0], ids[1], ids[2]]
    assert db.move(ids[3], 99)
    assert [j.id for j in db.queue()] == ids
    assert db.remove(ids[1])
    assert [j.id for j in db.queue()] == [ids[0], ids[2], ids[3]]
    db.start(ids[2])
    assert db.queue()[0].id == ids[2]  # the running job first
    assert db.next_queued().id == ids[0]
    assert not db.move(ids[2], 0)  # running jobs do not move
    db.close()


def test_history_search_and_settings(tmp_path):
    db = JobsDB(tmp_path / "jobs.sqlite3")
    for p in ("a red fox in snow", "a blue whale", "red_car 100%"):
        j = add(db, p)
        db.start(j)
        db.finish_done(j, {"video_path": f"/o/{j}.mp4", "seed": 7})
    assert [j.prompt for j in db.history("red")] == ["red_car 100%", "a red fox in snow"]
    assert [j.prompt for j in db.history("fox snow")] == ["a red fox in snow"]
    assert [j.prompt for j in db.history("100%")] == ["red_car 100%"]  # LIKE wildcards are literal
    assert db.history("_") and db.history("x_y") == []
    s = db.history("whale")[0].settings()
    assert s["params"]["prompt"] == "a blue whale" and s["params"]["seed"] == 7 and s["model_path"] == "/models/m"
    db.close()


def test_running_job_is_interrupted_on_reopen_and_queue_persists(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    db = JobsDB(path)
    a, b, c = add(db, "one"), add(db, "two"), add(db, "three")
    db.move(c, 0)
    db.start(c)
    db.paused = True
    db.close()  # the studio is killed: c stays "running" on disk
    db2 = JobsDB(path)
    assert db2.interrupted_on_open == [c]
    assert db2.get(c).state == "interrupted" and db2.get(c).error == INTERRUPTED_REASON
    assert [j.id for j in db2.queue()] == [a, b]
    assert db2.paused is True
    assert db2.counts()["interrupted"] == 1
    db2.close()


def test_schema_is_versioned(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    JobsDB(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match="newer studio"):
        JobsDB(path)

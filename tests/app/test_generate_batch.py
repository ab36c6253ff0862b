"""Batches (issue 24): a count of videos per click, a new seed each; a prompt list, one job per line."""

from __future__ import annotations

import random

from app.panels.generate_batch import MAX_JOBS, batch_problem, batch_prompts, expand_batch


def test_expand_batch():
    spec = {"prompt": "a\n\n  b  \n", "model_path": "m", "task": "t2v", "num_gpus": 1, "pipeline_options": {},
            "params": {"seed": 7, "num_frames": 9}}
    one = expand_batch({**spec, "prompt": "a cat"}, 3, False, random.Random(0))
    assert [j["params"]["seed"] for j in one][0] == 7 and len({j["params"]["seed"] for j in one}) == 3
    assert all(j["prompt"] == "a cat" and j["params"]["num_frames"] == 9 for j in one)
    assert spec["params"]["seed"] == 7  # the form's spec is not changed
    jobs = expand_batch(spec, 2, True, random.Random(0))
    assert [j["prompt"] for j in jobs] == ["a", "a", "b", "b"]
    assert [j["params"]["seed"] for j in jobs[:2]] == [j["params"]["seed"] for j in jobs[2:]]  # equal seeds per prompt
    assert batch_prompts("x\ny", False) == ["x\ny"]
    assert "empty" in batch_problem(" \n ", 1, True)
    assert str(MAX_JOBS) in batch_problem("a\nb\nc\nd\ne\nf", 100, True)
    assert batch_problem("a\nb", 3, True) is None


def test_batch_in_the_panel(make_studio, make_window, fake_model):
    studio = make_studio(engine=None)
    studio.db.paused = True
    win = make_window(studio)
    g = win.generate
    g.set_model(str(fake_model))
    g.prompt.setPlainText("a lighthouse")
    g.seed.setValue(1234)
    g.batch.count.setValue(3)
    assert g.batch.summary.text() == "→ 3 jobs"
    first = g.generate()
    jobs = [studio.db.get(first + i) for i in range(3)]
    assert [j.prompt for j in jobs] == ["a lighthouse"] * 3
    seeds = [j.params["seed"] for j in jobs]
    assert seeds[0] == 1234 and len(set(seeds)) == 3
    assert studio.db.counts()["queued"] == 3
    # A prompt list: one job per line (times the count).
    g.batch.count.setValue(2)
    g.batch.prompt_list.setChecked(True)
    g.prompt.setPlainText("a red circle\n\na blue square\n")
    assert g.batch.summary.text() == "→ 4 jobs (2 prompts × 2)"
    first = g.generate()
    assert [studio.db.get(first + i).prompt for i in range(4)] == ["a red circle"] * 2 + ["a blue square"] * 2
    assert studio.db.counts()["queued"] == 7
    # Too many jobs for one click: said at the batch row, nothing queued.
    g.batch.count.setValue(100)
    g.prompt.setPlainText("\n".join(f"prompt {i}" for i in range(6)))
    assert g.generate() is None and "at most" in g.field_error("batch")
    assert studio.db.counts()["queued"] == 7
    g.batch.count.setValue(1)
    assert g.field_error("batch") == ""

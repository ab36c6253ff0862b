"""Batches in the Generate panel: a count of videos per click (a new seed each) and a prompt list (one prompt a
line, one job each). :func:`expand_batch` (Qt-free) turns the form's one job spec into the jobs to queue;
:class:`BatchControls` is the form row."""

from __future__ import annotations

import random
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSpinBox, QWidget

from app.panels.generate_form import SEED_MAX

MAX_COUNT = 100
MAX_JOBS = 500


def batch_prompts(text: str, prompt_list: bool) -> list[str]:
    """The prompts of a click: every non-empty line of ``text`` with ``prompt_list``, else the whole text."""
    if not prompt_list:
        return [text.strip()]
    return [line.strip() for line in text.splitlines() if line.strip()]


def batch_seeds(first: int, count: int, rng: random.Random | None = None) -> list[int]:
    """``count`` seeds: ``first`` (the form's), then new random ones, all different."""
    rng = rng or random.Random()
    seeds = [int(first)]
    while len(seeds) < count:
        s = rng.randint(0, SEED_MAX)
        if s not in seeds:
            seeds.append(s)
    return seeds


def expand_batch(spec: dict[str, Any], count: int = 1, prompt_list: bool = False,
                 rng: random.Random | None = None) -> list[dict[str, Any]]:
    """The job specs of one click: for each prompt (each line of the prompt with ``prompt_list``) ``count``
    jobs, the k-th of every prompt with the same seed (the form's for the first, new random ones after), so
    a prompt list compares prompts on equal seeds. Order: prompt by prompt."""
    prompts = batch_prompts(spec["prompt"], prompt_list)
    seeds = batch_seeds(spec["params"]["seed"], max(1, int(count)), rng)
    out = []
    for prompt in prompts:
        for seed in seeds:
            out.append({**spec, "prompt": prompt, "params": {**spec["params"], "seed": seed}})
    return out


def batch_problem(prompt: str, count: int, prompt_list: bool) -> str | None:
    """Why a batch cannot be queued (shown at the prompt or the batch row), None when it can."""
    prompts = batch_prompts(prompt, prompt_list)
    if prompt_list and not prompts:
        return "The prompt list is empty: write one prompt a line"
    if len(prompts) * count > MAX_JOBS:
        return f"{len(prompts)} prompts × {count} videos is {len(prompts) * count} jobs; at most {MAX_JOBS} a click"
    return None


class BatchControls(QWidget):
    """``Videos per click`` and ``One job per prompt line``, with the number of jobs a click queues."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.count = QSpinBox()
        self.count.setRange(1, MAX_COUNT)
        self.count.setSuffix(" per click")
        self.count.setFixedWidth(120)
        self.count.setToolTip("How many videos each Generate queues: the form's seed first, then a new random "
                              "seed for each further video")
        self.prompt_list = QCheckBox("One job per prompt line")
        self.prompt_list.setToolTip("Each non-empty line of the prompt becomes its own job (with the same seeds)")
        self.summary = QLabel()
        self.summary.setObjectName("dimLabel")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.count)
        lay.addWidget(self.prompt_list)
        lay.addWidget(self.summary, 1)
        self.count.valueChanged.connect(lambda _v: self.changed.emit())
        self.prompt_list.toggled.connect(lambda _c: self.changed.emit())

    def update_summary(self, prompt: str) -> None:
        n = len(batch_prompts(prompt, self.prompt_list.isChecked())) if self.prompt_list.isChecked() else 1
        jobs = n * self.count.value()
        self.summary.setText("" if jobs == 1 else f"→ {jobs} jobs" + (f" ({n} prompts × {self.count.value()})"
                                                                        if self.prompt_list.isChecked() else ""))

    def problem(self, prompt: str) -> str | None:
        return batch_problem(prompt, self.count.value(), self.prompt_list.isChecked())

    def specs(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        return expand_batch(spec, self.count.value(), self.prompt_list.isChecked())

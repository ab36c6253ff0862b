"""Fixtures for the fault suite (tests/faults/): each file reproduces one class of bad input or failure."""

from __future__ import annotations

import pytest


@pytest.fixture
def fake_model(tmp_path):
    """A model folder for the torch-free fake engine (tests/serve/fake_engine.py)."""
    d = tmp_path / "fake-model"
    d.mkdir()
    (d / "model_index.json").write_text('{"_class_name": "FakePipeline"}')
    return d

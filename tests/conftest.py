import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_collection_modifyitems(config, items):
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_t2v(tmp_path_factory):
    """A tiny random-weight Wan T2V model in the Diffusers layout (shared by the session)."""
    from fastvideo.testing.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-t2v", task="t2v", seed=0)


@pytest.fixture(scope="session")
def tiny_i2v(tmp_path_factory):
    from fastvideo.testing.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-i2v", task="i2v", seed=0)


@pytest.fixture(scope="session")
def t2v_generator(tiny_t2v):
    from fastvideo import VideoGenerator

    gen = VideoGenerator.from_pretrained(str(tiny_t2v))
    yield gen
    gen.shutdown()


@pytest.fixture
def no_ambient_hub_config(monkeypatch, tmp_path):
    """No token, endpoint or offline flag from the developer's environment."""
    import huggingface_hub.constants as c

    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(c, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(c, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"), raising=False)


@pytest.fixture
def fake_model(tmp_path) -> Path:
    """A folder whose model_index.json names a pipeline only the fake engine knows."""
    d = tmp_path / "fake-model"
    d.mkdir()
    (d / "model_index.json").write_text('{"_class_name": "FakePipeline"}')
    return d

import os

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

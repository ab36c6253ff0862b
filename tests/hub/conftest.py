import pytest

from fastvideo.testing.hub_server import LocalHub

REPO = "fastvideo-test/tiny-t2v"


@pytest.fixture(autouse=True)
def _no_ambient_hub_config(no_ambient_hub_config):
    """No token, endpoint or offline flag from the developer's environment (tests/conftest.py)."""


@pytest.fixture
def hub(tiny_t2v):
    with LocalHub(max_lifetime=120) as h:
        h.add_repo(REPO, tiny_t2v)
        yield h


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.relative_to(folder).as_posix().startswith(".fastvideo")}


@pytest.fixture
def tree():
    """folder -> {relative path: bytes} of its files (download bookkeeping excluded)."""
    return _tree
